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

//! What threshold signing costs (issue 21, docs/performance.md "Threshold
//! signing"): a 2-of-3 Taproot wallet across five processes on 127.0.0.1
//! signs `RUNS` messages one after another through
//! `POST /v1/beneficiary/wallets/{ref}/signatures`; the in-run floor is the
//! FROST work itself, in this process: three signers' nonces, the package,
//! three signature shares, each share's check, aggregation and the final
//! BIP340 verification (`milagro_custody::signing`), timed `RUNS` times
//! between the same runs.
//!
//! `cargo bench -p milagro-tests --bench signing --profile dev` after
//! `cargo build --workspace` (the nodes are the debug build the tests use).
//! Not in CI.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use milagro_custody::{
    SecretScalar, feldman,
    reshare::Sharing,
    signing::{self, Signer},
};
use milagro_tests::{
    custody,
    network::{Network, Options},
};
use serde_json::json;

const RUNS: usize = 50;

fn main() {
    let net = Network::start(&Options::default());
    let body = json!({"fiduciaries": net.ids, "beneficiary": net.beneficiary.id(),
                      "coin": "btc-taproot", "threshold": 2, "reference": "bench"});
    let (status, o) = custody::order(&net.principal, &body);
    assert_eq!(status, 201, "{o}");
    custody::wait_wallet(&net.beneficiary, "bench", Duration::from_secs(60), |_| true);
    let floor = Floor::new();
    // Warm-up: connections, caches.
    for n in 0..3u8 {
        sign(&net, n);
        floor.sign();
    }
    let (mut e2e, mut ops) = (Vec::new(), Vec::new());
    for n in 0..RUNS {
        let started = Instant::now();
        sign(&net, n as u8);
        e2e.push(started.elapsed());
        let started = Instant::now();
        floor.sign();
        ops.push(started.elapsed());
    }
    let (e2e, ops) = (median(e2e), median(ops));
    println!(
        "2-of-3 Taproot signature over envelopes, median of {RUNS}: {:.1} ms ({:.1}/s one at a time); \
         floor (the FROST operations in process): {:.2} ms; ratio {:.1}x",
        ms(e2e),
        1000.0 / ms(e2e),
        ms(ops),
        ms(e2e) / ms(ops)
    );
}

fn sign(net: &Network, n: u8) {
    let (status, text) = net.beneficiary.call(
        "POST",
        "/v1/beneficiary/wallets/bench/signatures",
        Some(
            json!({"message": hex::encode([n; 32])})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(status, 201, "{text}");
}

/// The FROST work of one 2-of-3 signature with the beneficiary, in process.
struct Floor {
    wallet: signing::Wallet,
    publics: BTreeMap<Signer, milagro_custody::PublicKey>,
    secrets: BTreeMap<Signer, SecretScalar>,
}

impl Floor {
    fn new() -> Floor {
        let b = SecretScalar::random().unwrap();
        let dealing = feldman::deal(2, 3).unwrap();
        let shares: Vec<SecretScalar> = dealing
            .shares
            .iter()
            .map(|s| SecretScalar::from_scalar(*s.value()).unwrap())
            .collect();
        let sharing = Sharing {
            fiduciaries: (1..=3).map(|j| format!("f{j}")).collect(),
            threshold: 2,
            share_public_keys: shares.iter().map(SecretScalar::public_key).collect(),
            commitments: Some(dealing.commitments.clone()),
        };
        let p = b.public_key().to_projective() + sharing.group_key().unwrap().to_projective();
        let wallet_key = milagro_custody::keys::point_to_public_key(&p).unwrap();
        let wallet = signing::Wallet::of_sharing(&b.public_key(), &sharing, wallet_key).unwrap();
        let publics = signing::public_keys(&b.public_key(), &sharing);
        let secrets = BTreeMap::from([
            (Signer::Beneficiary, b),
            (Signer::Fiduciary(1), shares[0].clone()),
            (Signer::Fiduciary(2), shares[1].clone()),
        ]);
        Floor {
            wallet,
            publics,
            secrets,
        }
    }

    fn sign(&self) {
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for (signer, secret) in &self.secrets {
            let (n, c) = signing::commit(secret).unwrap();
            nonces.insert(*signer, n);
            commitments.insert(*signer, c);
        }
        let session = self
            .wallet
            .session(signing::package(&[7; 32], &commitments).unwrap())
            .unwrap();
        let mut shares = BTreeMap::new();
        for (signer, n) in nonces {
            shares.insert(
                signer,
                session.sign(signer, &self.secrets[&signer], n).unwrap(),
            );
        }
        session.aggregate(&self.publics, &shares).unwrap();
    }
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
