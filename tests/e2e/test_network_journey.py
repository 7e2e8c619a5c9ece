"""Networking with the real `openstack` CLI against `strata up` (issue 4): networks, subnets
(v4 and v6), subnet pools, ports, security groups and rules, quotas; and the bad input Neutron
refuses, answered with Neutron's errors."""

from __future__ import annotations

import requests

from harness import HTTP_TIMEOUT_S, Api


def neutron(server, token: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{server.base_url}/network/v2.0{path}",
                            headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT_S, **kw)


def neutron_error(r: requests.Response, status: int) -> str:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    err = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    return err["type"]


def test_up_bootstraps_a_devstack_like_topology(osc):
    public = osc.json("network", "show", "public")
    assert public["router:external"] in (True, "External"), public
    demo_nets = {n["Name"] for n in osc.json("network", "list", cloud="strata-demo")}
    assert {"public", "private"} <= demo_nets, demo_nets
    router = osc.json("router", "show", "router1", cloud="strata-demo")
    assert router["external_gateway_info"]["network_id"] == public["id"], router
    ports = osc.json("port", "list", "--router", "router1", cloud="strata-demo")
    assert ports, "router1 has no interface"


def test_network_journey(osc, name):
    net = osc.json("network", "create", "--description", "e2e", name("net"))
    assert net["status"] == "ACTIVE" and net["mtu"] > 0, net
    v4 = osc.json("subnet", "create", "--network", net["id"], "--subnet-range", "10.20.0.0/24",
                  "--allocation-pool", "start=10.20.0.10,end=10.20.0.20",
                  "--dns-nameserver", "192.0.2.53", name("v4"))
    assert v4["gateway_ip"] == "10.20.0.1"
    assert v4["allocation_pools"] == [{"start": "10.20.0.10", "end": "10.20.0.20"}]
    v6 = osc.json("subnet", "create", "--network", net["id"], "--ip-version", "6",
                  "--ipv6-ra-mode", "slaac", "--ipv6-address-mode", "slaac",
                  "--subnet-range", "fd00:20::/64", name("v6"))
    assert v6["ipv6_address_mode"] == "slaac"
    assert {s["Name"] for s in osc.json("subnet", "list", "--network", net["id"])} == \
        {v4["name"], v6["name"]}

    sg = osc.json("security", "group", "create", name("sg"))
    rule = osc.json("security", "group", "rule", "create", "--protocol", "tcp",
                    "--dst-port", "22", "--remote-ip", "198.51.100.0/24", sg["id"])
    assert rule["port_range_min"] == 22 and rule["remote_ip_prefix"] == "198.51.100.0/24"
    dup = osc.fails("security", "group", "rule", "create", "--protocol", "tcp",
                    "--dst-port", "22", "--remote-ip", "198.51.100.0/24", sg["id"])
    assert "409" in dup.output or "exists" in dup.output.lower(), dup.output

    port = osc.json("port", "create", "--network", net["id"], "--fixed-ip",
                    f"subnet={v4['id']},ip-address=10.20.0.15", "--security-group", sg["id"],
                    name("port"))
    ips = {f["ip_address"] for f in port["fixed_ips"]}
    assert "10.20.0.15" in ips, port
    assert port["mac_address"].startswith("fa:16:3e:")
    # Without fixed IPs: the first free address of the pool and the SLAAC address from the MAC.
    auto = osc.json("port", "create", "--network", net["id"], name("auto"))
    ips = {f["ip_address"] for f in auto["fixed_ips"]}
    assert "10.20.0.10" in ips, auto
    assert any(ip.startswith("fd00:20::") for ip in ips), auto
    listed = osc.json("port", "list", "--fixed-ip", "ip-address=10.20.0.15")
    assert [p["ID"] for p in listed] == [port["id"]]
    osc.run("port", "set", "--name", name("renamed"), "--no-security-group", port["id"])
    assert osc.json("port", "show", port["id"])["security_group_ids"] == []

    # A router between the network and the bootstrapped external `public` network, and a
    # floating IP on the port.
    router = osc.json("router", "create", name("router"))
    osc.run("router", "set", "--external-gateway", "public", router["id"])
    osc.run("router", "add", "subnet", router["id"], v4["id"])
    gw = osc.json("router", "show", router["id"])["external_gateway_info"]
    assert gw["network_id"] == osc.json("network", "show", "public")["id"], gw
    fip = osc.json("floating", "ip", "create", "public")
    assert fip["status"] == "DOWN" and fip["floating_ip_address"].startswith("172.24.4."), fip
    osc.run("floating", "ip", "set", "--port", port["id"], fip["id"])
    shown = osc.json("floating", "ip", "show", fip["id"])
    assert shown["port_id"] == port["id"] and shown["fixed_ip_address"] == "10.20.0.15", shown
    assert shown["router_id"] == router["id"], shown
    in_use = osc.fails("router", "remove", "subnet", router["id"], v4["id"])
    assert "409" in in_use.output or "floating" in in_use.output.lower(), in_use.output
    osc.run("floating", "ip", "unset", "--port", fip["id"])
    osc.run("floating", "ip", "delete", fip["id"])
    osc.run("router", "remove", "subnet", router["id"], v4["id"])
    osc.run("router", "delete", router["id"])

    busy = osc.fails("network", "delete", net["id"])
    assert "409" in busy.output or "in use" in busy.output.lower(), busy.output

    pool = osc.json("subnet", "pool", "create", "--pool-prefix", "10.30.0.0/16",
                    "--default-prefix-length", "26", name("pool"))
    pooled = osc.json("subnet", "create", "--network", net["id"], "--subnet-pool", pool["id"],
                      name("pooled"))
    assert pooled["cidr"] == "10.30.0.0/26", pooled

    project = osc.json("project", "show", "demo")["id"]
    osc.run("quota", "set", "--networks", "7", project)
    shown = osc.json("quota", "show", "--network", project)
    # OSC 10 prints a list of {Resource, Limit} rows.
    rows = {r["Resource"]: r["Limit"] for r in shown} if isinstance(shown, list) else shown
    assert rows.get("networks", rows.get("network")) == 7, shown

    osc.run("port", "delete", port["id"], auto["id"])
    osc.run("subnet", "delete", pooled["id"])
    osc.run("subnet", "pool", "delete", pool["id"])
    osc.run("security", "group", "delete", sg["id"])
    osc.run("network", "delete", net["id"])
    assert net["id"] not in [n["ID"] for n in osc.json("network", "list")]


def test_bad_input_and_other_tenants(server, api: Api, admin_token, demo_token, name):
    r = neutron(server, admin_token, "POST", "/networks", json={"network": {"name": name("n")}})
    assert r.status_code == 201, r.text
    net = r.json()["network"]["id"]
    cases = [
        ({"cidr": "10.0.0.0/33", "ip_version": 4}, 400),
        ({"cidr": "not-a-cidr", "ip_version": 4}, 400),
        ({"cidr": "10.40.0.0/24", "ip_version": 4, "gateway_ip": "10.41.0.1"}, 400),
        ({"cidr": "10.40.0.0/24", "ip_version": 4,
          "allocation_pools": [{"start": "10.50.0.2", "end": "10.50.0.9"}]}, 400),
        ({"cidr": "fd00:40::/64", "ip_version": 6, "ipv6_ra_mode": "slaac",
          "ipv6_address_mode": "dhcpv6-stateful"}, 400),
        ({"cidr": "10.40.0.0/24", "ip_version": 6}, 400),
    ]
    for extra, status in cases:
        body = {"subnet": {"network_id": net, **extra}}
        neutron_error(neutron(server, admin_token, "POST", "/subnets", json=body), status)
    # Malformed JSON and unknown attributes.
    r = requests.post(f"{server.base_url}/network/v2.0/networks", data="{nope",
                      headers={"X-Auth-Token": admin_token,
                               "Content-Type": "application/json"}, timeout=HTTP_TIMEOUT_S)
    neutron_error(r, 400)
    neutron_error(neutron(server, admin_token, "POST", "/networks",
                          json={"network": {"bogus": 1}}), 400)
    # The admin's private network does not exist for the demo project.
    assert neutron_error(neutron(server, demo_token, "GET", f"/networks/{net}"), 404) == \
        "NetworkNotFound"
    neutron_error(neutron(server, demo_token, "DELETE", f"/networks/{net}"), 404)
    neutron_error(neutron(server, demo_token, "POST", "/ports",
                          json={"port": {"network_id": net}}), 404)
    assert net not in [n["id"] for n in
                       neutron(server, demo_token, "GET", "/networks").json()["networks"]]
    assert neutron(server, admin_token, "DELETE", f"/networks/{net}").status_code == 204
