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

"""An M-Pin client written independently of Milagro's code, with PyPI
`py_ecc` (pure Python): it makes the device token and logs in to a node's
`mpin` plugin with 2-pass M-Pin, computing every point itself.

    python3 tests/mpin_client.py --url http://127.0.0.1:7070 \
        --mpin-id alice@example.org --client-secret HEX --pin 1234 \
        [--entered-pin 1235]

- H(id): RFC 9380 hash_to_G1, suite BLS12381G1_XMD:SHA-256_SSWU_RO_, DST
  MILAGRO-MPIN-V1_BLS12381G1_XMD:SHA-256_SSWU_RO_;
- token T = C - pin*H(id) (C the combined client secret from the D-TAs);
- pass 1: x random, U = x*H(id), POST /v1/mpin/pass1 {mpin_id, u};
- pass 2: V = -(x+y)*(T + pin*H(id)), POST /v1/mpin/pass2 {session, v}.

Points compressed (zcash format, hex), y 32-byte big-endian hex. Prints
{"pass1": status, "status": status, "body": {...}} for the last request
made, and exits 0 whatever the server answered (the caller judges); 1 on a
local error, 77 if py_ecc is missing.
"""

import argparse
import hashlib
import json
import secrets
import sys
import urllib.error
import urllib.request

try:
    from py_ecc.bls.hash_to_curve import hash_to_G1
    from py_ecc.bls.point_compression import compress_G1, decompress_G1
    from py_ecc.optimized_bls12_381 import add, curve_order, multiply, neg
except ImportError as e:
    print(f"mpin_client.py: missing dependency: {e}", file=sys.stderr)
    sys.exit(77)

MPIN_DST = b"MILAGRO-MPIN-V1_BLS12381G1_XMD:SHA-256_SSWU_RO_"


def g1_hex(p):
    return compress_G1(p).to_bytes(48, "big").hex()


def g1_from_hex(h):
    return decompress_G1(int.from_bytes(bytes.fromhex(h), "big"))


def post(url, body):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mount", default="/v1/mpin")
    parser.add_argument("--mpin-id", required=True)
    parser.add_argument("--client-secret", required=True, help="C, compressed G1 hex")
    parser.add_argument("--pin", required=True, type=int, help="the PIN the token is made with")
    parser.add_argument(
        "--entered-pin", type=int, help="the PIN typed at login (default: --pin)"
    )
    args = parser.parse_args()
    entered = args.pin if args.entered_pin is None else args.entered_pin

    mpin_id = args.mpin_id.encode()
    h = hash_to_G1(mpin_id, MPIN_DST, hashlib.sha256)
    c = g1_from_hex(args.client_secret)
    # The device keeps only the token; the PIN is entered at login.
    token = add(c, neg(multiply(h, args.pin % curve_order)))

    x = 1 + secrets.randbelow(curve_order - 1)
    u = multiply(h, x)
    base = args.url.rstrip("/") + args.mount
    status, answer = post(f"{base}/pass1", {"mpin_id": args.mpin_id, "u": g1_hex(u)})
    if status != 200:
        print(json.dumps({"pass1": status, "status": status, "body": answer}))
        return
    y = int(answer["y"], 16)
    if not 0 < y < curve_order:
        print("mpin_client.py: the server's y is not a scalar", file=sys.stderr)
        sys.exit(1)
    # V = -(x+y) * (T + pin*H(id)): -(x+y)*C when the PIN is right.
    recovered = add(token, multiply(h, entered % curve_order))
    v = multiply(recovered, (-(x + y)) % curve_order)
    status, answer = post(f"{base}/pass2", {"session": answer["session"], "v": g1_hex(v)})
    print(json.dumps({"pass1": 200, "status": status, "body": answer}))


if __name__ == "__main__":
    main()
