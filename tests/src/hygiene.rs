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

//! Secrets hygiene: searches every file a set of nodes wrote, and their
//! logs, for secrets, raw and in hex. A secret may sit only where it is
//! named to live (its own file), or encrypted (so never raw) in a keystore.

use std::path::{Path, PathBuf};

use milagro::keystore::{Keystore, KeystoreConfig, file::FileKeystore};

use crate::Node;

/// A secret to search for: its name in the report, its bytes, and the one
/// file where it may appear (e.g. a master key's own file).
pub struct Secret {
    pub name: String,
    pub bytes: Vec<u8>,
    pub home: Option<PathBuf>,
}

impl Secret {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Secret {
        Secret {
            name: name.into(),
            bytes,
            home: None,
        }
    }
}

/// `node`'s file keystore, opened as only a test can (to read back the
/// secrets it holds).
pub fn keystore(node: &Node) -> FileKeystore {
    FileKeystore::open(
        &node.dir.path().join("data/keystore"),
        &KeystoreConfig::default(),
    )
    .expect("open the node's keystore")
}

/// A secret of `node`'s keystore under `label`.
pub fn keystore_secret(node: &Node, label: &str) -> Vec<u8> {
    keystore(node)
        .get_secret(label)
        .expect("read the keystore")
        .unwrap_or_else(|| panic!("no secret {label} in the keystore"))
        .to_vec()
}

/// `node`'s keystore master key and API token, each allowed in its own file.
pub fn node_secrets(name: &str, node: &Node) -> Vec<Secret> {
    let data = node.dir.path().join("data");
    let master = data.join("keystore").join("master.key");
    vec![
        Secret {
            name: format!("{name} master key"),
            bytes: std::fs::read(&master).expect("read the master key"),
            home: Some(master),
        },
        Secret {
            name: format!("{name} API token"),
            bytes: node.token().into_bytes(),
            home: Some(data.join("api-token")),
        },
    ]
}

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

/// Every place outside its home where a secret appears in the files under
/// the nodes' directories or in their logs ("<name> in <where>"). Prints
/// what was searched.
pub fn leaks(nodes: &[&Node], secrets: &[Secret]) -> Vec<String> {
    let mut files = Vec::new();
    let mut logs = Vec::new();
    for node in nodes {
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
        for secret in secrets {
            if secret.home.as_deref() == Some(file.as_path()) {
                continue;
            }
            if spellings(&secret.bytes).iter().any(|s| contains(&bytes, s)) {
                hits.push(format!("{} in {}", secret.name, file.display()));
            }
        }
    }
    for log in &logs {
        for secret in secrets {
            if spellings(&secret.bytes)
                .iter()
                .any(|s| contains(log.as_bytes(), s))
            {
                hits.push(format!("{} in a log", secret.name));
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
    hits
}
