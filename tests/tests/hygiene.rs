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

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use milagro::keystore::{Keystore, KeystoreConfig, file::FileKeystore};
use milagro_custody::{SecretScalar, keys};
use milagro_tests::{
    Node,
    custody::{Role, node_config, order_ok, peers, redeem, wait_complete},
};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The spellings a leaked secret could take.
fn spellings(secret: &[u8]) -> Vec<Vec<u8>> {
    let lower = hex::encode(secret);
    vec![
        secret.to_vec(),
        lower.clone().into_bytes(),
        lower.to_uppercase().into_bytes(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

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
    let mut secrets: Vec<(String, Vec<u8>, Option<PathBuf>)> = Vec::new();
    secrets.push((
        "wallet key x".into(),
        hex::decode(w["secret_key"].as_str().unwrap()).unwrap(),
        None,
    ));
    let nodes = [
        ("principal", &p),
        ("fiduciary-1", &f1),
        ("fiduciary-2", &f2),
        ("beneficiary", &b),
    ];
    for (name, node) in nodes {
        let data = node.dir.path().join("data");
        let keystore_dir = data.join("keystore");
        let keystore = FileKeystore::open(&keystore_dir, &KeystoreConfig::default()).unwrap();
        let master = std::fs::read(keystore_dir.join("master.key")).unwrap();
        secrets.push((
            format!("{name} master key"),
            master,
            Some(keystore_dir.join("master.key")),
        ));
        secrets.push((
            format!("{name} API token"),
            node.token().into_bytes(),
            Some(data.join("api-token")),
        ));
        if name.starts_with("fiduciary") {
            let share = keystore
                .get_secret(&format!("plugin/fiduciary/share/{order_cid}"))
                .unwrap()
                .expect("the fiduciary keeps its share");
            secrets.push((format!("{name} share k_i"), share.to_vec(), None));
        }
        if name == "beneficiary" {
            let key = keystore.get_secret("node/beneficiary").unwrap().expect("b");
            secrets.push(("beneficiary key b".into(), key.to_vec(), None));
        }
    }
    // Sanity: these are the secrets the flow used: x = b + k_1 + k_2.
    assert_eq!(secrets.len(), 1 + 4 * 2 + 2 + 1);
    let scalar = |name: &str| {
        let (_, bytes, _) = secrets.iter().find(|(n, _, _)| n == name).unwrap();
        *SecretScalar::from_bytes(bytes.as_slice().try_into().unwrap())
            .unwrap()
            .as_scalar()
    };
    let sum = scalar("beneficiary key b")
        + scalar("fiduciary-1 share k_i")
        + scalar("fiduciary-2 share k_i");
    assert_eq!(
        keys::encode_scalar(&sum).to_vec(),
        secrets[0].1,
        "x = b + k_1 + k_2"
    );

    let mut files = Vec::new();
    let mut logs = Vec::new();
    for (_, node) in nodes {
        files.extend(files_under(node.dir.path()));
        logs.push(node.log());
    }
    let mut scanned_bytes = 0usize;
    let mut hits = Vec::new();
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        scanned_bytes += bytes.len();
        for (name, secret, home) in &secrets {
            if home.as_deref() == Some(file.as_path()) {
                continue;
            }
            for spelling in spellings(secret) {
                if contains(&bytes, &spelling) {
                    hits.push(format!("{name} in {}", file.display()));
                }
            }
        }
    }
    for log in &logs {
        for (name, secret, _) in &secrets {
            for spelling in spellings(secret) {
                if contains(log.as_bytes(), &spelling) {
                    hits.push(format!("{name} in a log"));
                }
            }
        }
    }
    eprintln!(
        "secrets hygiene: {} secrets searched in {} files ({scanned_bytes} bytes) and {} log lines: {} hit(s)",
        secrets.len(),
        files.len(),
        logs.iter().map(|l| l.lines().count()).sum::<usize>(),
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "secrets found outside their keystore: {hits:?}"
    );
}
