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

"""Independent check of wallets rebuilt by the beneficiary plugin.

Reads a JSON list of wallets on stdin ({coin, secret_key, public_key,
address, legacy_address?, wif?}) and checks, with implementations that share
no code with Milagro, that each secret key maps to exactly that public key
and those addresses: PyPI `coincurve` (libsecp256k1) for the key, PyPI
`bech32` (the BIP-173 reference code) for P2WPKH, `pycryptodome` for
Ethereum's keccak-256; Base58Check, EIP-55 and WIF written here from their
specifications. Prints the number of wallets checked; exits 1 with the
first mismatch, 77 if a dependency is missing.
"""

import hashlib
import json
import sys

try:
    import bech32
    from coincurve import PrivateKey
    from Crypto.Hash import keccak
except ImportError as exc:
    print(f"missing dependency: {exc} (pip install coincurve bech32 pycryptodome)", file=sys.stderr)
    sys.exit(77)

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58check(payload):
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def hash160(b):
    return hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest()


def eip55(addr20):
    plain = addr20.hex()
    k = keccak.new(digest_bits=256, data=plain.encode()).hexdigest()
    return "0x" + "".join(c.upper() if int(k[i], 16) >= 8 else c for i, c in enumerate(plain))


def expected(coin, secret):
    key = PrivateKey(secret)
    pub = key.public_key.format(compressed=True)
    if coin == "eth":
        uncompressed = key.public_key.format(compressed=False)
        addr = keccak.new(digest_bits=256, data=uncompressed[1:]).digest()[-20:]
        return {"public_key": pub.hex(), "address": eip55(addr)}
    hrp, p2pkh_version, wif_version = {
        "btc": ("bc", b"\x00", b"\x80"),
        "btc-testnet": ("tb", b"\x6f", b"\xef"),
    }[coin]
    return {
        "public_key": pub.hex(),
        "address": bech32.encode(hrp, 0, hash160(pub)),
        "legacy_address": b58check(p2pkh_version + hash160(pub)),
        "wif": b58check(wif_version + secret + b"\x01"),
    }


def main():
    wallets = json.load(sys.stdin)
    for w in wallets:
        want = expected(w["coin"], bytes.fromhex(w["secret_key"]))
        for field, value in want.items():
            if w.get(field) is not None and w[field] != value:
                print(f"{w.get('reference')}: {field} is {w[field]}, expected {value}", file=sys.stderr)
                sys.exit(1)
            if field in ("public_key", "address") and w.get(field) is None:
                print(f"{w.get('reference')}: no {field}", file=sys.stderr)
                sys.exit(1)
    print(len(wallets))


main()
