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

//! Cross-check against an independent implementation: writes keys, wallets,
//! threshold shares and proofs to a temporary JSON file, runs
//! `tests/cross_check.py` (coincurve, bech32, pycryptodome) on it and
//! compares every derived value with this crate's.
//!
//! If python3 or a Python dependency is missing the test reports it and
//! passes, unless `MILAGRO_CROSS_CHECK_REQUIRED=1` is set.

use std::path::PathBuf;
use std::process::Command;

use milagro_custody::address::{self, Network};
use milagro_custody::keys::{self, SecretScalar};
use milagro_custody::messages::{Commitment, cid_of};
use milagro_custody::{feldman, shamir, wallet};
use serde_json::{Value, json};

fn key_from_u64(n: u64) -> SecretScalar {
    let mut b = [0u8; 32];
    b[24..].copy_from_slice(&n.to_be_bytes());
    SecretScalar::from_bytes(&b).unwrap()
}

fn hex32(s: &SecretScalar) -> String {
    hex::encode(*s.to_bytes())
}

#[test]
fn python_cross_check() {
    // Keys: 1, 2, 3, n-1, and random ones.
    let n_minus_1 =
        hex::decode("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140").unwrap();
    let mut arr = [0u8; 32];
    arr.copy_from_slice(&n_minus_1);
    let mut secrets = vec![key_from_u64(1), key_from_u64(2), key_from_u64(3)];
    secrets.push(SecretScalar::from_bytes(&arr).unwrap());
    for _ in 0..12 {
        secrets.push(SecretScalar::random().unwrap());
    }

    // Wallets: b + sum k_i for 1..=4 fiduciaries.
    let wallets: Vec<(SecretScalar, Vec<SecretScalar>)> = (1..=4)
        .map(|n| {
            (
                SecretScalar::random().unwrap(),
                (0..n).map(|_| SecretScalar::random().unwrap()).collect(),
            )
        })
        .collect();

    // Threshold: a joint-Feldman DKG for a few (t, n), t shares each.
    let mut threshold_cases = Vec::new();
    for (t, n) in [(1usize, 1usize), (2, 3), (3, 5), (4, 10), (10, 10)] {
        let dealings: Vec<feldman::Dealing> =
            (0..n).map(|_| feldman::deal(t, n).unwrap()).collect();
        let group = feldman::group_key(
            &dealings
                .iter()
                .map(|d| d.commitments.clone())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let finals: Vec<shamir::Share> = (1..=n as u32)
            .map(|j| {
                let received: Vec<_> = dealings
                    .iter()
                    .map(|d| (&d.commitments, &d.shares[j as usize - 1]))
                    .collect();
                feldman::combine_shares(j, &received).unwrap()
            })
            .collect();
        let chosen: Vec<shamir::Share> = finals.iter().rev().take(t).cloned().collect();
        let k = shamir::reconstruct(&chosen, t).unwrap();
        assert_eq!(k.public_key(), group);
        threshold_cases.push((t, chosen, k));
    }

    // Proofs of knowledge: valid ones, and tampered ones that must fail in Python too.
    let fid = cid_of(b"fiduciary").to_string();
    let mut proofs = Vec::new();
    for i in 0..4u8 {
        let order = cid_of(&[i]);
        let k = SecretScalar::random().unwrap();
        let c = Commitment::new(&order, &fid, &k).unwrap();
        proofs.push((
            c.share_public_key,
            c.proof,
            order.to_bytes(),
            fid.clone(),
            true,
        ));
        let mut tampered = c.proof;
        tampered[40] ^= 1;
        proofs.push((
            c.share_public_key,
            tampered,
            order.to_bytes(),
            fid.clone(),
            false,
        ));
        // Replayed for another order or by another fiduciary.
        proofs.push((
            c.share_public_key,
            c.proof,
            cid_of(b"x").to_bytes(),
            fid.clone(),
            false,
        ));
        proofs.push((
            c.share_public_key,
            c.proof,
            order.to_bytes(),
            format!("{fid}x"),
            false,
        ));
    }

    let input = json!({
        "keys": secrets.iter().map(hex32).collect::<Vec<_>>(),
        "wallets": wallets.iter().map(|(b, ks)| json!({
            "b": hex32(b),
            "k": ks.iter().map(hex32).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "threshold": threshold_cases.iter().map(|(t, shares, _)| json!({
            "t": t,
            "shares": shares.iter().map(|s| json!([s.index(), hex::encode(*s.value_bytes())])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "proofs": proofs.iter().map(|(pk, proof, cid, f, _)| json!({
            "public": hex::encode(pk),
            "proof": hex::encode(proof),
            "order_cid": hex::encode(cid),
            "fiduciary": f,
        })).collect::<Vec<_>>(),
    });

    let dir = std::env::temp_dir().join(format!(
        "milagro-custody-cross-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input.json");
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cross_check.py");
    let required = std::env::var("MILAGRO_CROSS_CHECK_REQUIRED").is_ok_and(|v| v == "1");
    let output = Command::new("python3").arg(&script).arg(&path).output();
    let _ = std::fs::remove_dir_all(&dir);
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            assert!(!required, "python3 not runnable: {e}");
            eprintln!("SKIPPED: python3 not runnable: {e}");
            return;
        }
    };
    if output.status.code() == Some(77) {
        let why = String::from_utf8_lossy(&output.stderr);
        assert!(!required, "cross-check dependencies missing: {why}");
        eprintln!("SKIPPED: {why} (pip install coincurve bech32 pycryptodome)");
        return;
    }
    assert!(
        output.status.success(),
        "cross_check.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();

    let mut checked = 0usize;
    for (s, py) in secrets.iter().zip(out["keys"].as_array().unwrap()) {
        let pk = s.public_key();
        let expect = [
            ("public", hex::encode(keys::encode_public_key(&pk))),
            ("p2wpkh", address::p2wpkh(&pk, Network::Mainnet)),
            ("p2wpkh_test", address::p2wpkh(&pk, Network::Testnet)),
            ("p2pkh", address::p2pkh(&pk, Network::Mainnet)),
            ("p2pkh_test", address::p2pkh(&pk, Network::Testnet)),
            ("eth", address::eth_address(&pk)),
            ("wif", address::wif(s, Network::Mainnet).to_string()),
            ("wif_test", address::wif(s, Network::Testnet).to_string()),
        ];
        for (field, rust) in expect {
            assert_eq!(py[field].as_str().unwrap(), rust, "{field}");
            checked += 1;
        }
    }
    assert_eq!(out["keys"].as_array().unwrap().len(), secrets.len());

    for ((b, ks), py) in wallets.iter().zip(out["wallets"].as_array().unwrap()) {
        let pubs: Vec<_> = ks.iter().map(SecretScalar::public_key).collect();
        let p = wallet::aggregate_public_key(&b.public_key(), &pubs).unwrap();
        let x = wallet::aggregate_secret(b, ks, &p).unwrap();
        assert_eq!(
            py["public"].as_str().unwrap(),
            hex::encode(keys::encode_public_key(&p))
        );
        assert_eq!(py["x"].as_str().unwrap(), hex32(&x));
        checked += 2;
    }

    for ((_, _, k), py) in threshold_cases
        .iter()
        .zip(out["threshold"].as_array().unwrap())
    {
        assert_eq!(py.as_str().unwrap(), hex32(k));
        checked += 1;
    }

    for ((.., valid), py) in proofs.iter().zip(out["proofs"].as_array().unwrap()) {
        assert_eq!(py.as_bool().unwrap(), *valid);
        checked += 1;
    }
    assert_eq!(out["proofs"].as_array().unwrap().len(), proofs.len());
    eprintln!("cross-checked {checked} values against coincurve/bech32/pycryptodome");
}
