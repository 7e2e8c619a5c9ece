#!/usr/bin/env python3
"""Write a tempest.conf for the identity, image and volume tests against a running `strata up`.

usage: gen-tempest-conf.py --data-dir DIR --lock-path DIR [--out FILE] [--cloud strata]

Reads DIR/clouds.yaml (written by `strata up`) for the admin credentials, the auth URL and the
region. The PCI-DSS values ([identity] user_lockout_* etc.) are taken from the same
STRATA_SECURITY_COMPLIANCE__* environment variables the server was started with, so the two
cannot drift apart. See ../shared/conformance/README.md §2 for the knobs.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
import urllib.request

import yaml

# tempest's defaults for these, which are also what scripts/tempest-identity.sh starts strata with
SECURITY = {
    "user_lockout_failure_attempts": ("LOCKOUT_FAILURE_ATTEMPTS", "2"),
    "user_lockout_duration": ("LOCKOUT_DURATION", "5"),
    "user_unique_last_password_count": ("UNIQUE_LAST_PASSWORD_COUNT", "2"),
    "user_minimum_password_age": ("MINIMUM_PASSWORD_AGE", "0"),
}


def admin_session(auth: dict, uri_v3: str) -> tuple[str, list]:
    """An admin project token and the catalog."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": auth.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth.get("project_domain_name", "Default")}}}}}
    req = urllib.request.Request(uri_v3 + "/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers["X-Subject-Token"], json.load(r)["token"]["catalog"]


def endpoint(catalog: list, kind: str) -> str:
    return next(e["url"] for s in catalog if s["type"] == kind
                for e in s["endpoints"] if e["interface"] == "public").rstrip("/")


def network_extensions(auth: dict, uri_v3: str) -> tuple[list[str], str | None]:
    """The aliases the network service reports, and the id of the `public` external network
    (None when there is none), so the configuration names exactly what is served."""
    token, catalog = admin_session(auth, uri_v3)
    url = endpoint(catalog, "network")
    req = urllib.request.Request(url + "/v2.0/extensions", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=30) as r:
        aliases = [e["alias"] for e in json.load(r)["extensions"]]
    req = urllib.request.Request(url + "/v2.0/networks?router:external=True&name=public",
                                 headers={"X-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=30) as r:
        nets = json.load(r)["networks"]
    return aliases, (nets[0]["id"] if nets else None)


def upload_image(auth: dict, uri_v3: str, path: str, name: str = "strata-tempest-qcow2") -> str:
    """Creates a public qcow2 image as the admin, uploads `path` into it; returns its id."""
    token, catalog = admin_session(auth, uri_v3)
    image_url = next(e["url"] for s in catalog if s["type"] == "image"
                     for e in s["endpoints"] if e["interface"] == "public").rstrip("/")
    spec = {"name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "public"}
    req = urllib.request.Request(image_url + "/v2/images", data=json.dumps(spec).encode(),
                                 headers={"Content-Type": "application/json",
                                          "X-Auth-Token": token}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        image_id = json.load(r)["id"]
    with open(path, "rb") as f:
        data = f.read()
    req = urllib.request.Request(f"{image_url}/v2/images/{image_id}/file", data=data,
                                 headers={"Content-Type": "application/octet-stream",
                                          "X-Auth-Token": token}, method="PUT")
    with urllib.request.urlopen(req, timeout=60):
        pass
    return image_id


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="the strata data dir (holds clouds.yaml)")
    ap.add_argument("--cloud", default="strata", help="the admin cloud in clouds.yaml")
    ap.add_argument("--lock-path", required=True, help="[oslo_concurrency] lock_path")
    ap.add_argument("--out", default="-", help="where to write tempest.conf (default stdout)")
    ap.add_argument("--image-file", help="a qcow2 file to upload as a public image, written as "
                    "[compute] image_ref (the volume-from-image tests read it)")
    args = ap.parse_args()

    with open(os.path.join(args.data_dir, "clouds.yaml")) as f:
        cloud = yaml.safe_load(f)["clouds"][args.cloud]
    auth = cloud["auth"]
    auth_url = auth["auth_url"].rstrip("/")
    uri_v3 = auth_url if auth_url.endswith("/v3") else auth_url + "/v3"
    region = cloud.get("region_name", "RegionOne")

    image_ref = upload_image(auth, uri_v3, args.image_file) if args.image_file else None
    # A second image, so that the tests filtering or rebuilding by image_ref_alt run.
    image_ref_alt = (upload_image(auth, uri_v3, args.image_file, "strata-tempest-qcow2-alt")
                     if args.image_file else None)

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
        "cinder": "true",
        "neutron": "true",
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
    # Cinder v3 (crates/volume); catalog types block-storage and volumev3 both point at
    # /volume/v3/$(project_id)s. No max_microversion: the interop tests run at 3.0.
    c["volume"] = {
        "catalog_type": "block-storage",
        "region": region,
        "endpoint_type": "publicURL",
        "volume_size": "1",
        "build_interval": "1",
        "build_timeout": "60",
        "availability_zone": "nova",
    }
    c["volume-feature-enabled"] = {
        "snapshot": "true",
        "clone": "true",
        "backup": "false",
        "api_extensions": "all",
        "api_v3": "true",                    # only read by older tempest releases
        "manage_volume": "false",
        "manage_snapshot": "false",
        "extend_attached_volume": "false",
        "volume_revert": "false",
    }
    if image_ref:
        # Only the image is needed: nova stays unavailable.
        c["compute"] = {"image_ref": image_ref, "image_ref_alt": image_ref_alt}
    # Neutron v2.0 (crates/network). No network is created for dynamic credentials
    # ([auth] create_isolated_networks = false); the tests make their own.
    c["network"] = {
        "catalog_type": "network",
        "region": region,
        "project_network_cidr": "10.100.0.0/16",
        "project_network_mask_bits": "28",
        "project_network_v6_cidr": "2001:db8::/48",
        "project_network_v6_mask_bits": "64",
        "shared_physical_network": "false",
    }
    aliases, public_net = network_extensions(auth, uri_v3)
    if public_net:
        c["network"]["public_network_id"] = public_net
        c["network"]["floating_network_name"] = "public"
    c["network-feature-enabled"] = {
        "ipv6": "true",
        "ipv6_subnet_attributes": "true",
        # exactly what the server reports: Tempest skips what needs the others
        "api_extensions": ",".join(aliases),
        "floating_ips": "true" if "router" in aliases else "false",
    }
    c["enforce_scope"] = {"keystone": "false", "glance": "false", "cinder": "false",
                          "neutron": "false"}
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
