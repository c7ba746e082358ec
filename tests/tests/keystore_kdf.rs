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

//! A real node with a passphrase keystore records the Argon2id parameters
//! beside the salt and restarts into the same identity (the upgrade of a
//! keystore of the previous layout is tested in `host/src/keystore/file.rs`).

use std::time::Instant;

use milagro_tests::{Node, NodeConfig};

const VAR: &str = "MILAGRO_TEST_E2E_KEYSTORE_PASSPHRASE";

fn config(name: &str) -> NodeConfig {
    NodeConfig::new(name)
        .section(&format!("[keystore]\npassphrase_env = \"{VAR}\"\n"))
        .env(VAR, "correct horse battery staple")
}

#[test]
fn a_passphrase_keystore_keeps_its_kdf_parameters_across_restarts() {
    let started = Instant::now();
    let mut node = Node::start(config("kdf"));
    println!("first start (keystore made): {:?}", started.elapsed());
    let id = node.id();
    let kdf_path = node.dir.path().join("data/keystore/kdf");
    let line = std::fs::read_to_string(&kdf_path).expect("kdf file");
    assert!(
        line.starts_with("argon2id v=19 m=65536 t=3 p=4 salt="),
        "{line}"
    );
    assert!(!node.dir.path().join("data/keystore/salt").exists());

    let started = Instant::now();
    node.restart();
    println!("restart (keystore unlocked): {:?}", started.elapsed());
    assert_eq!(node.id(), id, "the same keys after a restart");
    assert_eq!(std::fs::read_to_string(&kdf_path).unwrap(), line);
}
