// Licensed to the Apache Software Foundation (ASF) under one
// or more contributor license agreements.  See the NOTICE file
// distributed with this work for additional information
// regarding copyright ownership.  The ASF licenses this file
// to you under the Apache License, Version 2.0 (the
// "License"); you may not use this file except in compliance
// with the License.  You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing,
// software distributed under the License is distributed on an
// "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
// KIND, either express or implied.  See the License for the
// specific language governing permissions and limitations
// under the License.

//! Fuzz the envelope decoder, then signature verification and opening
//! against the test-vector parties (so seeds from the vectors reach `open`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use milagro_proto::block::cid_of;
use milagro_proto::{Cid, DecapsulationKey, Envelope, Limits, LocalEcdhKey, VerifiedIdentity};

struct Party {
    id: VerifiedIdentity,
    ecdh: LocalEcdhKey,
    kem: DecapsulationKey,
}

fn parties() -> &'static Vec<Party> {
    static P: OnceLock<Vec<Party>> = OnceLock::new();
    P.get_or_init(|| {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/vectors/protocol-v1.json")).unwrap();
        ["alice", "bob", "carol"]
            .iter()
            .map(|name| {
                let hex_at =
                    |a: &str, b: &str, c: &str| hex::decode(v[a][b][c].as_str().unwrap()).unwrap();
                let cid: Cid = v["identities"][name]["cid"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let bytes = hex_at("identities", name, "hex");
                let id = VerifiedIdentity::decode(&cid, &bytes, &Limits::default()).unwrap();
                let ecdh: [u8; 32] = hex_at("parties", name, "ecdh_secret").try_into().unwrap();
                let seed: [u8; 64] = hex_at("parties", name, "kem_seed").try_into().unwrap();
                Party {
                    id,
                    ecdh: LocalEcdhKey::from_bytes(&ecdh).unwrap(),
                    kem: DecapsulationKey::from_seed(&seed),
                }
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let cid = cid_of(data);
    let Ok(env) = Envelope::decode(&cid, data, &limits) else {
        return;
    };
    let Some(sender) = parties().iter().find(|p| p.id.id() == env.sender()) else {
        return;
    };
    let Ok(env) = env.verify(&sender.id) else {
        return;
    };
    assert_eq!(env.block().bytes(), data);
    for p in parties() {
        let _ = env.open(p.id.id(), &p.ecdh, &p.kem);
    }
});
