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

"""Independent check of Taproot wallets and their threshold signatures.

Reads JSON on stdin: {"address", "signatures": [{"message", "signature"}],
"secret_key"?} (hex) and checks, with code that shares none with Milagro:
the address decodes with PyPI `bech32m` (Pieter Wuille's BIP-350 reference
code, packaged; PyPI `bech32` 1.2.0 predates bech32m) as a segwit v1 program; every signature verifies as BIP340 under that
program with PyPI `coincurve` (libsecp256k1); and where the wallet's secret
(internal) key is known, the BIP86 output key computed here from it (BIP341
tagged hash, written here from the spec) is that program. The BIP86 code
here is first checked against BIP86's own test vector. Prints the number of
signatures checked; exits 1 with the first mismatch, 77 if a dependency is
missing.
"""

import hashlib
import json
import sys

try:
    import bech32m
    from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
except ImportError as exc:
    print(f"missing dependency: {exc} (pip install coincurve bech32m==1.0.0)", file=sys.stderr)
    sys.exit(77)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def tagged_hash(tag, data):
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


def bip86_output_key(internal_x):
    """x(Q), Q = lift_x(internal) + int(hash_TapTweak(x))·G."""
    t = int.from_bytes(tagged_hash("TapTweak", internal_x), "big")
    if t >= N:
        raise ValueError("tweak out of range")
    q = PublicKey.combine_keys([PublicKey(b"\x02" + internal_x), PrivateKey(t.to_bytes(32, "big")).public_key])
    return q.format(compressed=True)[1:]


def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)


# BIP86, account 0, first receiving address.
vector = bytes.fromhex("cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115")
if bech32m.encode("bc", 1, bip86_output_key(vector)) != "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr":
    fail("the BIP86 code here fails BIP86's test vector")

wallet = json.load(sys.stdin)
address = wallet["address"]
hrp = address[: address.rindex("1")]
if hrp not in ("bc", "tb"):
    fail(f"{address}: not a Bitcoin address")
try:
    version, program = bech32m.decode(hrp, address)
except bech32m.DecodeError:
    fail(f"{address}: not a valid segwit address")
if version != 1 or len(program) != 32:
    fail(f"{address}: not a segwit v1 (taproot) address")
program = bytes(program)
key = PublicKeyXOnly(program)
for s in wallet["signatures"]:
    if not key.verify(bytes.fromhex(s["signature"]), bytes.fromhex(s["message"])):
        fail(f"signature of {s['message']} does not verify under {program.hex()}")
if wallet.get("secret_key"):
    internal = PrivateKey(bytes.fromhex(wallet["secret_key"])).public_key.format(compressed=True)[1:]
    if bip86_output_key(internal) != program:
        fail(f"{address} is not the BIP86 output of the wallet's key")
    if bech32m.encode(hrp, 1, bip86_output_key(internal)) != address:
        fail(f"{address} is not the bech32m encoding of the BIP86 output key")
print(len(wallet["signatures"]))
