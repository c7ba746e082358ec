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

//! Independent checks of custody wallets: `tests/wallet_check.py` derives
//! each wallet's public key and addresses from its secret key with PyPI
//! libraries (coincurve, bech32, pycryptodome) that share no code with
//! Milagro.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use serde_json::Value;

/// Checks that every wallet's `secret_key` maps to its `public_key`,
/// `address` and, for Bitcoin, `legacy_address` and `wif`; returns how many
/// were checked. Panics on a mismatch or a missing dependency.
pub fn check_wallets(wallets: &[Value]) -> usize {
    let script = crate::workspace_root().join("tests/wallet_check.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 tests/wallet_check.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(wallets).expect("wallets as JSON"))
        .expect("write the wallets");
    let out = child.wait_with_output().expect("wallet_check.py output");
    assert!(
        out.status.success(),
        "wallet_check.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert_eq!(checked, wallets.len());
    checked
}
