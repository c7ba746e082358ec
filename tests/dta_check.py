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

"""Independent check of the D-TA's shares, with PyPI `py_ecc` (pure Python,
no code shared with Milagro).

Reads one JSON object on stdin:

- "vectors": [{s, k, mpin_id, context_hex, public_key, share, proof}]:
  recomputes P = s*g1, H(id), C = s*H(id) and the DLEQ proof with nonce k
  from the transcript spec in docs/dta.md, and compares every byte;
- "client_shares": [{public_key, mpin_id, share, proof, context_hex}]:
  recomputes H(id) (RFC 9380 hash_to_G1, XMD:SHA-256 SSWU) and verifies the
  DLEQ proof (c, z): A1 = z*g1 + c*P, A2 = z*H + c*C, c == challenge;
- "server_shares": [{public_key, server_share}]: checks e(P, Q) == e(g1, S);
- "not_server_secret": {server_secret, candidates: [hex G2]}: checks that
  no candidate, nor the sum of all, is the server secret.

Points compressed (zcash format), scalars 32-byte big-endian hex. Prints
{"vectors": n, "client_shares": n, "server_shares": n, "candidates": n} and
exits 0, or exits 1 with the first mismatch, 77 if py_ecc is missing.
"""

import hashlib
import json
import struct
import sys

try:
    from py_ecc.bls.hash_to_curve import hash_to_G1
    from py_ecc.bls.point_compression import (
        compress_G1,
        decompress_G1,
        decompress_G2,
        compress_G2,
    )
    from py_ecc.optimized_bls12_381 import (
        G1,
        G2,
        Z2,
        add,
        curve_order,
        eq,
        is_inf,
        multiply,
        neg,
        pairing,
    )
except ImportError as e:
    print(f"dta_check.py: missing dependency: {e}", file=sys.stderr)
    sys.exit(77)

MPIN_DST = b"MILAGRO-MPIN-V1_BLS12381G1_XMD:SHA-256_SSWU_RO_"
DLEQ_DST = b"MILAGRO-MPIN-V1_DLEQ_BLS12381G1_SHA-512"


def fail(msg):
    print(f"dta_check.py: {msg}", file=sys.stderr)
    sys.exit(1)


def g1_bytes(p):
    return compress_G1(p).to_bytes(48, "big")


def g1_from_hex(h):
    b = bytes.fromhex(h)
    if len(b) != 48:
        fail(f"G1 point of {len(b)} bytes")
    p = decompress_G1(int.from_bytes(b, "big"))
    if is_inf(p) or not is_inf(multiply(p, curve_order)):
        fail("G1 point at infinity or not in the subgroup")
    return p


def g2_from_hex(h):
    b = bytes.fromhex(h)
    if len(b) != 96:
        fail(f"G2 point of {len(b)} bytes")
    p = decompress_G2((int.from_bytes(b[:48], "big"), int.from_bytes(b[48:], "big")))
    if is_inf(p) or not is_inf(multiply(p, curve_order)):
        fail("G2 point at infinity or not in the subgroup")
    return p


def g2_hex(p):
    z1, z2 = compress_G2(p)
    return (z1.to_bytes(48, "big") + z2.to_bytes(48, "big")).hex()


def lp(b):
    return struct.pack(">I", len(b)) + b


def challenge(p, h, c, a1, a2, context):
    t = lp(DLEQ_DST)
    for pt in (G1, p, h, c, a1, a2):
        t += lp(g1_bytes(pt))
    t += lp(context)
    return int.from_bytes(hashlib.sha512(t).digest(), "big") % curve_order


def scalar(h):
    b = bytes.fromhex(h)
    if len(b) != 32:
        fail("scalar not 32 bytes")
    v = int.from_bytes(b, "big")
    if v >= curve_order:
        fail("non-canonical scalar")
    return v


def hash_id(mpin_id):
    return hash_to_G1(mpin_id.encode(), MPIN_DST, hashlib.sha256)


def check_vector(v):
    s, k = scalar(v["s"]), scalar(v["k"])
    context = bytes.fromhex(v["context_hex"])
    p = multiply(G1, s)
    h = hash_id(v["mpin_id"])
    c_pt = multiply(h, s)
    c = challenge(p, h, c_pt, multiply(G1, k), multiply(h, k), context)
    z = (k - c * s) % curve_order
    proof = (c.to_bytes(32, "big") + z.to_bytes(32, "big")).hex()
    for name, got, want in (
        ("public_key", g1_bytes(p).hex(), v["public_key"]),
        ("share", g1_bytes(c_pt).hex(), v["share"]),
        ("proof", proof, v["proof"]),
    ):
        if got != want:
            fail(f"vector {name}: py_ecc gives {got}, Milagro {want}")


def check_client_share(v):
    p = g1_from_hex(v["public_key"])
    c_pt = g1_from_hex(v["share"])
    proof = bytes.fromhex(v["proof"])
    if len(proof) != 64:
        fail("proof not 64 bytes")
    c, z = scalar(proof[:32].hex()), scalar(proof[32:].hex())
    h = hash_id(v["mpin_id"])
    a1 = add(multiply(G1, z), multiply(p, c))
    a2 = add(multiply(h, z), multiply(c_pt, c))
    if challenge(p, h, c_pt, a1, a2, bytes.fromhex(v["context_hex"])) != c:
        fail(f"the DLEQ proof for {v['mpin_id']!r} does not verify")


def check_server_share(v):
    p = g1_from_hex(v["public_key"])
    s = g2_from_hex(v["server_share"])
    if pairing(G2, p) != pairing(s, G1):
        fail("e(P, Q) != e(g1, S) for a server share")


def check_not_server_secret(v):
    secret = v["server_secret"]
    total = Z2
    for h in v["candidates"]:
        if h == secret:
            fail("a visible G2 value is the server secret")
        total = add(total, g2_from_hex(h))
    if v["candidates"] and g2_hex(total) == secret:
        fail("the sum of the visible G2 values is the server secret")
    return len(v["candidates"])


def main():
    data = json.load(sys.stdin)
    for v in data.get("vectors", []):
        check_vector(v)
    for v in data.get("client_shares", []):
        check_client_share(v)
    for v in data.get("server_shares", []):
        check_server_share(v)
    n = 0
    if "not_server_secret" in data:
        n = check_not_server_secret(data["not_server_secret"])
    print(
        json.dumps(
            {
                "vectors": len(data.get("vectors", [])),
                "client_shares": len(data.get("client_shares", [])),
                "server_shares": len(data.get("server_shares", [])),
                "candidates": n,
            }
        )
    )


if __name__ == "__main__":
    main()
