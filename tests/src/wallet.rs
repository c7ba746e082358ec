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
//! each wallet's public key and addresses from its secret key, and
//! `tests/taproot_check.py` checks Taproot addresses and threshold
//! signatures, with PyPI libraries (coincurve, bech32, bech32m,
//! pycryptodome) that share no code with Milagro.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use serde_json::Value;

/// Runs the independent checker `tests/<script>` on `input` (JSON on its
/// stdin) and returns the count it prints. Panics on a mismatch or a
/// missing dependency.
fn run_check(script: &str, input: &Value) -> usize {
    let path = crate::workspace_root().join("tests").join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run python3 tests/{script}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(input).expect("input as JSON"))
        .expect("write the input");
    let out = child.wait_with_output().expect("checker output");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// Checks that every wallet's `secret_key` maps to its `public_key`,
/// `address` and, for Bitcoin, `legacy_address` and `wif`; returns how many
/// were checked. Panics on a mismatch or a missing dependency.
pub fn check_wallets(wallets: &[Value]) -> usize {
    let checked = run_check("wallet_check.py", &Value::Array(wallets.to_vec()));
    assert_eq!(checked, wallets.len());
    checked
}

/// Checks with `tests/taproot_check.py` that Taproot `address` decodes
/// (BIP-350 reference code), that every `{message, signature}` verifies as
/// BIP340 under its output key (libsecp256k1) and, given the wallet's
/// internal secret key, that the address is its BIP86 output. Returns how
/// many signatures were checked.
pub fn check_taproot(address: &str, signatures: &[Value], secret_key: Option<&str>) -> usize {
    let input =
        serde_json::json!({"address": address, "signatures": signatures, "secret_key": secret_key});
    let checked = run_check("taproot_check.py", &input);
    assert_eq!(checked, signatures.len());
    checked
}
