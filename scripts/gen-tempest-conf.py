#!/usr/bin/env python3
"""Write a tempest.conf for the identity and image tests against a running `strata up`.

usage: gen-tempest-conf.py --data-dir DIR --lock-path DIR [--out FILE] [--cloud strata]

Reads DIR/clouds.yaml (written by `strata up`) for the admin credentials, the auth URL and the
region. The PCI-DSS values ([identity] user_lockout_* etc.) are taken from the same
STRATA_SECURITY_COMPLIANCE__* environment variables the server was started with, so the two
cannot drift apart. See ../shared/conformance/README.md §2 for the knobs.
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys

import yaml

# tempest's defaults for these, which are also what scripts/tempest-identity.sh starts strata with
SECURITY = {
    "user_lockout_failure_attempts": ("LOCKOUT_FAILURE_ATTEMPTS", "2"),
    "user_lockout_duration": ("LOCKOUT_DURATION", "5"),
    "user_unique_last_password_count": ("UNIQUE_LAST_PASSWORD_COUNT", "2"),
    "user_minimum_password_age": ("MINIMUM_PASSWORD_AGE", "0"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="the strata data dir (holds clouds.yaml)")
    ap.add_argument("--cloud", default="strata", help="the admin cloud in clouds.yaml")
    ap.add_argument("--lock-path", required=True, help="[oslo_concurrency] lock_path")
    ap.add_argument("--out", default="-", help="where to write tempest.conf (default stdout)")
    args = ap.parse_args()

    with open(os.path.join(args.data_dir, "clouds.yaml")) as f:
        cloud = yaml.safe_load(f)["clouds"][args.cloud]
    auth = cloud["auth"]
    auth_url = auth["auth_url"].rstrip("/")
    uri_v3 = auth_url if auth_url.endswith("/v3") else auth_url + "/v3"
    region = cloud.get("region_name", "RegionOne")

    c = configparser.ConfigParser(interpolation=None)
    c.optionxform = str  # keep key case
    c["DEFAULT"] = {"debug": "true", "use_stderr": "false", "log_file": "tempest.log"}
    c["auth"] = {
        "use_dynamic_credentials": "true",
        "admin_username": auth["username"],
        "admin_password": auth["password"],
        "admin_project_name": auth["project_name"],
        "admin_domain_name": auth.get("user_domain_name", "Default"),
        "admin_user_domain_name": auth.get("user_domain_name", "Default"),
        "admin_project_domain_name": auth.get("project_domain_name", "Default"),
        "default_credentials_domain_name": "Default",
        "create_isolated_networks": "false",
    }
    identity = {
        "auth_version": "v3",
        "uri_v3": uri_v3,
        "v3_endpoint_type": "public",
        "region": region,
        "catalog_type": "identity",
        "admin_role": "admin",
        "default_domain_id": "default",
    }
    for key, (env, default) in SECURITY.items():
        identity[key] = os.environ.get(f"STRATA_SECURITY_COMPLIANCE__{env}", default)
    c["identity"] = identity
    c["identity-feature-enabled"] = {
        "api_v2": "false",
        "api_v2_admin": "false",
        "api_v3": "true",
        "security_compliance": "true",
        "application_credentials": "true",   # only read by older tempest releases
        "access_rules": "true",
        "trust": "true",
        "domain_specific_drivers": "false",
        "immutable_user_source": "false",
        "project_tags": "true",              # only read by older tempest releases
        "api_extensions": "all",
    }
    c["service_available"] = {
        "keystone": "true",                  # not a tempest option; documents the intent
        "nova": "false",
        "glance": "true",
        "cinder": "false",
        "neutron": "false",
        "swift": "false",
        "horizon": "false",
    }
    # Glance v2 (crates/image); tempest finds the endpoint in the catalog (type "image").
    c["image"] = {
        "catalog_type": "image",
        "region": region,
        "endpoint_type": "publicURL",
        "container_formats": "bare,ami,ari,aki,ovf,ova",
        "disk_formats": "qcow2,raw,ami,ari,aki,vhd,vhdx,vmdk,vdi,iso,ploop",
        "image_caching_enabled": "false",
    }
    c["image-feature-enabled"] = {
        "api_v2": "true",
        "api_v1": "false",                   # only read by older tempest releases
        "import_image": "true",              # glance-direct interoperable import
        "os_glance_reserved": "true",        # os_glance_* properties are reserved (403)
        "manage_locations": "false",
        # strata does not inspect uploaded data for format conformance (Glance 2024.2+ can); with
        # true, tempest skips the classes that upload bogus bytes (ListUserImagesTest, ...)
        "image_format_enforcement": "false",
    }
    c["enforce_scope"] = {"keystone": "false", "glance": "false"}
    c["validation"] = {"run_validation": "false"}
    c["oslo_concurrency"] = {"lock_path": args.lock_path}

    if args.out == "-":
        c.write(sys.stdout)
    else:
        with open(args.out, "w") as f:
            c.write(f)
        os.chmod(args.out, 0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
