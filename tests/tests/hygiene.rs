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

//! Secrets hygiene (issue 9): after a full custody flow across four
//! processes (principal, two fiduciaries, beneficiary), every secret the
//! flow used — each fiduciary's share k_i and the beneficiary key b (read
//! back from the keystores with the host library, as only a test can), the
//! rebuilt wallet key x, each node's keystore master key and operator token
//! — is searched for, raw and in hex, in every file the nodes wrote and in
//! every log line. It may appear only encrypted in a keystore (never raw),
//! and the token and master key only in their own files.

use std::time::Duration;

use milagro_custody::{SecretScalar, keys};
use milagro_tests::{
    Node,
    custody::{Role, node_config, order_ok, peers, redeem, wait_complete},
    hygiene::{Secret, keystore_secret, leaks, node_secrets},
};

#[test]
fn no_secret_of_a_custody_flow_appears_outside_its_keystore() {
    let b = Node::start(node_config(
        "beneficiary",
        &[Role::Beneficiary],
        &[],
        20_000,
    ));
    let f1 = Node::start(node_config(
        "fiduciary-1",
        &[Role::Fiduciary],
        &peers(&[&b]),
        20_000,
    ));
    let f2 = Node::start(node_config(
        "fiduciary-2",
        &[Role::Fiduciary],
        &peers(&[&b, &f1]),
        20_000,
    ));
    let p = Node::start(node_config(
        "principal",
        &[Role::Principal],
        &peers(&[&b, &f1, &f2]),
        20_000,
    ));
    let o = order_ok(&p, &[f1.id(), f2.id()], Some(&b.id()), "btc", "hygiene");
    assert_eq!(redeem(&p, "hygiene", None).0, 202);
    let w = wait_complete(&b, "hygiene", Duration::from_secs(40));
    let order_cid = o["order_cid"].as_str().unwrap();

    // The secrets, named for the report.
    let mut secrets = vec![Secret::new(
        "wallet key x",
        hex::decode(w["secret_key"].as_str().unwrap()).unwrap(),
    )];
    let nodes = [
        ("principal", &p),
        ("fiduciary-1", &f1),
        ("fiduciary-2", &f2),
        ("beneficiary", &b),
    ];
    for (name, node) in nodes {
        secrets.extend(node_secrets(name, node));
        if name.starts_with("fiduciary") {
            secrets.push(Secret::new(
                format!("{name} share k_i"),
                keystore_secret(node, &format!("plugin/fiduciary/share/{order_cid}")),
            ));
        }
        if name == "beneficiary" {
            secrets.push(Secret::new(
                "beneficiary key b",
                keystore_secret(node, "node/beneficiary"),
            ));
        }
    }
    // Sanity: these are the secrets the flow used: x = b + k_1 + k_2.
    assert_eq!(secrets.len(), 1 + 4 * 2 + 2 + 1);
    let scalar = |name: &str| {
        let bytes = &secrets.iter().find(|s| s.name == name).unwrap().bytes;
        *SecretScalar::from_bytes(bytes.as_slice().try_into().unwrap())
            .unwrap()
            .as_scalar()
    };
    let sum = scalar("beneficiary key b")
        + scalar("fiduciary-1 share k_i")
        + scalar("fiduciary-2 share k_i");
    assert_eq!(
        keys::encode_scalar(&sum).to_vec(),
        secrets[0].bytes,
        "x = b + k_1 + k_2"
    );

    let hits = leaks(&nodes.map(|(_, node)| node), &secrets);
    assert!(
        hits.is_empty(),
        "secrets found outside their keystore: {hits:?}"
    );
}
