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

"""Independent cross-check of milagro-custody (run by tests/cross_check.rs).

Reads a JSON file of inputs written by the Rust test and prints, on stdout,
the values this script derives with independent implementations:

- secp256k1 arithmetic: PyPI `coincurve` (libsecp256k1);
- bech32 / segwit addresses: PyPI `bech32` (the BIP-173 reference code);
- keccak256: PyPI `pycryptodome`;
- SHA-256, RIPEMD-160 (with a pure-Python fallback), Base58Check, EIP-55,
  WIF, Lagrange interpolation and the proof-of-knowledge challenge: written
  here from the specifications, sharing no code with the Rust crate.

Exit status 77 means a dependency is missing (the Rust test then skips,
unless MILAGRO_CROSS_CHECK_REQUIRED=1).
"""

import hashlib
import json
import sys

try:
    import bech32
    from coincurve import PrivateKey, PublicKey
    from Crypto.Hash import keccak
except ImportError as exc:  # pragma: no cover
    print(f"missing dependency: {exc}", file=sys.stderr)
    sys.exit(77)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
POK_DST = b"milagro/custody/pok/v1"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def sha256(b):
    return hashlib.sha256(b).digest()


def ripemd160(b):
    try:
        h = hashlib.new("ripemd160")
        h.update(b)
        return h.digest()
    except ValueError:
        from Crypto.Hash import RIPEMD160

        return RIPEMD160.new(b).digest()


def hash160(b):
    return ripemd160(sha256(b))


def b58check(payload):
    data = payload + sha256(sha256(payload))[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def keccak256(b):
    return keccak.new(digest_bits=256, data=b).digest()


def eip55(addr20):
    lower = addr20.hex()
    h = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h[i], 16) >= 8 else c for i, c in enumerate(lower))


def describe(secret_hex):
    sk = PrivateKey(bytes.fromhex(secret_hex))
    comp = sk.public_key.format(compressed=True)
    unc = sk.public_key.format(compressed=False)
    h = hash160(comp)
    raw = bytes.fromhex(secret_hex)
    return {
        "public": comp.hex(),
        "p2wpkh": bech32.encode("bc", 0, h),
        "p2wpkh_test": bech32.encode("tb", 0, h),
        "p2pkh": b58check(b"\x00" + h),
        "p2pkh_test": b58check(b"\x6f" + h),
        "eth": eip55(keccak256(unc[1:])[12:]),
        "wif": b58check(b"\x80" + raw + b"\x01"),
        "wif_test": b58check(b"\xef" + raw + b"\x01"),
    }


def wallet(case):
    secrets = [case["b"]] + case["k"]
    x = sum(int(s, 16) for s in secrets) % N
    pub = PublicKey.combine_keys([PrivateKey(bytes.fromhex(s)).public_key for s in secrets])
    xg = PrivateKey(x.to_bytes(32, "big")).public_key
    assert xg.format() == pub.format(), "x*G != B + sum K_i in Python"
    return {"x": x.to_bytes(32, "big").hex(), "public": pub.format().hex()}


def interpolate(shares):
    xs = [i for i, _ in shares]
    acc = 0
    for i, v in shares:
        num, den = 1, 1
        for m in xs:
            if m != i:
                num = num * m % N
                den = den * (m - i) % N
        acc = (acc + int(v, 16) * num * pow(den, -1, N)) % N
    return acc.to_bytes(32, "big").hex()


def check_proof(p):
    public = bytes.fromhex(p["public"])
    proof = bytes.fromhex(p["proof"])
    cid = bytes.fromhex(p["order_cid"])
    fid = p["fiduciary"].encode()
    r, s = proof[:33], int.from_bytes(proof[33:], "big")
    if s >= N or s == 0:
        return False
    try:
        r_pt = PublicKey(r)
        k_pt = PublicKey(public)
    except Exception:
        return False
    data = (
        len(POK_DST).to_bytes(2, "big")
        + POK_DST
        + public
        + r
        + len(cid).to_bytes(4, "big")
        + cid
        + len(fid).to_bytes(4, "big")
        + fid
    )
    c = int.from_bytes(sha256(data), "big") % N
    lhs = PrivateKey(s.to_bytes(32, "big")).public_key
    rhs = PublicKey.combine_keys([r_pt, k_pt.multiply(c.to_bytes(32, "big"))])
    return lhs.format() == rhs.format()


def main():
    with open(sys.argv[1]) as f:
        inp = json.load(f)
    out = {
        "keys": [describe(k) for k in inp["keys"]],
        "wallets": [wallet(w) for w in inp["wallets"]],
        "threshold": [interpolate(t["shares"]) for t in inp["threshold"]],
        "proofs": [check_proof(p) for p in inp["proofs"]],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
