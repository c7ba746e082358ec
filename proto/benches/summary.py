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

"""Summarise the criterion results of benches/proto.rs: seal + open of N
recipients against the sum of the primitives they are made of.

    cargo bench -p milagro-proto --bench proto -- --warm-up-time 1 --measurement-time 3
    python3 proto/benches/summary.py [CRITERION_DIR]   (default $CARGO_TARGET_DIR/criterion)
"""

import json
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")


def t(name):
    with open(os.path.join(d, name, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"] / 1000.0  # µs


p = {n: t("prim_" + n) for n in [
    "ecdsa_sign", "ecdsa_verify", "ecdh", "ecdh_ephemeral", "mlkem768_encaps",
    "mlkem768_decaps", "hkdf_kek", "aes256gcm_seal_1k", "aes256gcm_open_1k",
    "aes256gcm_wrap_32", "sha256_2600"]}
print("| primitive | mean (µs) |\n| --- | ---: |")
for k, v in p.items():
    print(f"| {k} | {v:.2f} |")
print(f"| identity verify (decode + checks + self-signature) | {t('identity_verify'):.1f} |")
print()
print("| recipients | seal (µs) | open (µs) | seal + open | sum of primitives | ratio |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
per_recipient = p["ecdh_ephemeral"] + p["mlkem768_encaps"] + p["hkdf_kek"] + p["aes256gcm_wrap_32"]
for n in [1, 2, 5, 20]:
    seal, opn = t(f"envelope_seal_{n}"), t(f"envelope_open_{n}")
    # seal = sign + verify of its own signature (guards against a faulty
    # signing backend) + body encryption + per recipient (ephemeral ECDH,
    # ML-KEM encaps, HKDF, key wrap); open = verify + ECDH + decaps + HKDF +
    # unwrap + body decryption.
    prim = (p["ecdsa_sign"] + p["ecdsa_verify"] + p["aes256gcm_seal_1k"] + n * per_recipient
            + p["ecdsa_verify"] + p["ecdh"] + p["mlkem768_decaps"] + p["hkdf_kek"]
            + p["aes256gcm_wrap_32"] + p["aes256gcm_open_1k"])
    print(f"| {n} | {seal:.0f} | {opn:.0f} | {seal + opn:.0f} | {prim:.0f} | {(seal + opn) / prim:.2f} |")
