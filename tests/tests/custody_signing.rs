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

//! Threshold signing for Taproot wallets (issue 21), end to end across
//! separate `milagro` processes on 127.0.0.1: the beneficiary and any t
//! fiduciaries sign a message with the wallet's key never assembled. Every
//! signature and address is checked by code that shares none with Milagro
//! (`tests/taproot_check.py`: libsecp256k1's BIP340 verify, the BIP-350
//! reference decoder, BIP86 computed from the spec). Faulty fiduciaries run
//! the plugin built with `test-faults`: one sends a wrong signature share,
//! one holds its share between the two rounds and is killed there (kill -9).

use std::{
    collections::HashSet,
    thread,
    time::{Duration, Instant},
};

use milagro_custody::{
    SecretScalar,
    messages::{ByteArray, Cid, SignRequest},
    shamir::{self, Share},
};
use milagro_tests::{
    Node, NodeConfig,
    custody::{self, all_pages, probe, send_sealed, wait_refusal},
    hygiene::{Secret, keystore_secret, leaks, node_secrets},
    network::{Network, Options},
    wallet::check_taproot,
};
use serde_json::{Value, json as j};

const WAIT: Duration = Duration::from_secs(60);

/// Orders a Taproot wallet of the network's fiduciaries; waits until its
/// beneficiary knows it; returns the principal's view.
fn taproot_wallet(net: &Network, coin: &str, t: usize, reference: &str) -> Value {
    let body = j!({"fiduciaries": net.ids, "beneficiary": net.beneficiary.id(),
                   "coin": coin, "threshold": t, "reference": reference});
    let (status, o) = custody::order(&net.principal, &body);
    assert_eq!(status, 201, "{o}");
    let prefix = if coin == "btc-taproot" {
        "bc1p"
    } else {
        "tb1p"
    };
    assert!(o["address"].as_str().unwrap().starts_with(prefix), "{o}");
    assert!(o["legacy_address"].is_null(), "{o}");
    let w = custody::wait_wallet(&net.beneficiary, reference, WAIT, |_| true);
    assert_eq!(w["address"], o["address"], "{w}");
    o
}

/// `POST /v1/beneficiary/wallets/{reference}/signatures`.
fn sign(beneficiary: &Node, reference: &str, message: &str) -> (u16, Value) {
    let (status, text) = beneficiary.call(
        "POST",
        &format!("/v1/beneficiary/wallets/{reference}/signatures"),
        Some(j!({"message": message}).to_string().as_bytes()),
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn message(n: u8) -> String {
    hex::encode([n; 32])
}

/// Every nonce commitment a fiduciary logged.
fn logged_commitments(fiduciary: &Node) -> Vec<String> {
    all_pages(fiduciary, "/v1/fiduciary/signatures", "signatures")
        .iter()
        .map(|s| s["nonce_commitments"].as_str().unwrap().to_string())
        .collect()
}

/// Acceptance 1, 2 (hygiene) and 4: a 2-of-3 and a 3-of-3 wallet across
/// five processes; with one fiduciary stopped, two signatures of different
/// messages verify under the address's output key; nothing secret leaks;
/// redemption still works and its key is the address's BIP86 internal key.
#[test]
fn the_beneficiary_and_any_t_fiduciaries_sign_with_the_key_never_assembled() {
    let mut net = Network::start(&Options::default());
    let o = taproot_wallet(&net, "btc-taproot", 2, "tr-2of3");
    let all = taproot_wallet(&net, "btc-testnet-taproot", 3, "tr-3of3");
    let order_cid = o["order_cid"].as_str().unwrap().to_string();

    // t = n: every fiduciary signs.
    let (status, s) = sign(&net.beneficiary, "tr-3of3", &message(3));
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["fiduciaries"].as_array().unwrap().len(), 3, "{s}");
    check_taproot(all["address"].as_str().unwrap(), &[s], None);

    // The secrets, read before anyone stops: b, each s_j, x = b + k.
    let b = keystore_secret(&net.beneficiary, "node/beneficiary");
    let shares: Vec<Vec<u8>> = net
        .fiduciaries
        .iter()
        .map(|f| keystore_secret(f, &format!("plugin/fiduciary/share/{order_cid}")))
        .collect();
    let k = shamir::interpolate_at_zero(
        &[1u32, 2]
            .iter()
            .map(|&j| {
                Share::from_bytes(j, shares[j as usize - 1].as_slice().try_into().unwrap()).unwrap()
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let b_scalar = SecretScalar::from_bytes(b.as_slice().try_into().unwrap()).unwrap();
    let x = SecretScalar::from_scalar(*b_scalar.as_scalar() + *k).unwrap();
    assert_eq!(
        hex::encode(milagro_custody::keys::encode_public_key(&x.public_key())),
        o["public_key"].as_str().unwrap(),
        "x = b + k is the wallet key"
    );

    // One fiduciary stopped: two messages, signed by the other two.
    net.fiduciaries[0].kill();
    let mut signatures = Vec::new();
    for n in [1u8, 2] {
        let started = Instant::now();
        let (status, s) = sign(&net.beneficiary, "tr-2of3", &message(n));
        assert_eq!(status, 201, "{s}\n{}", net.beneficiary.log());
        assert_eq!(s["message"], message(n), "{s}");
        assert_eq!(s["fiduciaries"], j!([net.ids[1], net.ids[2]]), "{s}");
        assert_eq!(s["address"], o["address"], "{s}");
        println!(
            "2-of-3 signature with fiduciary 1 stopped: {:?}",
            started.elapsed()
        );
        signatures.push(s);
    }
    assert_ne!(signatures[0]["signature"], signatures[1]["signature"]);
    assert_eq!(
        check_taproot(o["address"].as_str().unwrap(), &signatures, None),
        2
    );

    // Each fiduciary that signed logged both sessions, with fresh nonces.
    for f in &net.fiduciaries[1..] {
        let logged = all_pages(f, "/v1/fiduciary/signatures", "signatures");
        let signed: Vec<&Value> = logged.iter().filter(|s| s["status"] == "signed").collect();
        assert_eq!(signed.len(), 3, "{logged:?}");
        assert!(
            signed
                .iter()
                .all(|s| s["requester"] == net.beneficiary.id()),
            "{logged:?}"
        );
    }

    // Hygiene: no secret of the wallet outside its keystore.
    let mut secrets = vec![
        Secret::new("wallet key x", x.to_bytes().to_vec()),
        Secret::new("beneficiary key b", b),
    ];
    for (j, share) in shares.into_iter().enumerate() {
        secrets.push(Secret::new(format!("share s_{}", j + 1), share));
    }
    let nodes: Vec<(String, &Node)> =
        std::iter::once(("beneficiary".to_string(), &net.beneficiary))
            .chain(std::iter::once(("principal".to_string(), &net.principal)))
            .chain(
                net.fiduciaries
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (format!("fiduciary-{}", i + 1), f)),
            )
            .collect();
    for (name, node) in &nodes {
        secrets.extend(node_secrets(name, node));
    }
    let hits = leaks(&nodes.iter().map(|(_, n)| *n).collect::<Vec<_>>(), &secrets);
    assert!(
        hits.is_empty(),
        "secrets found outside their keystore: {hits:?}"
    );

    // Redemption stays as recovery: the key released is the internal key
    // of the address (BIP86, checked independently).
    assert_eq!(custody::redeem(&net.principal, "tr-2of3", None).0, 202);
    let w = custody::wait_complete(&net.beneficiary, "tr-2of3", WAIT);
    assert_eq!(w["secret_key"], hex::encode(x.to_bytes().as_slice()), "{w}");
    check_taproot(
        o["address"].as_str().unwrap(),
        &signatures,
        w["secret_key"].as_str(),
    );
}

/// Acceptance 2: a wrong signature share is named; a signing request from
/// anyone but the beneficiary is refused by every fiduciary; a wallet of
/// another coin does not sign; a bad message is a 400.
#[test]
fn wrong_shares_are_named_and_strangers_cannot_ask() {
    let net = Network::start(&Options {
        faults: &[(1, "wrong-signature-share")],
        ..Options::default()
    });
    let o = taproot_wallet(&net, "btc-taproot", 3, "tr-wrong");
    let (status, s) = sign(&net.beneficiary, "tr-wrong", &message(5));
    assert_eq!(status, 422, "{s}");
    let why = custody::message(&s);
    assert!(
        why.contains(&net.ids[1]) && !why.contains(&net.ids[0]) && !why.contains(&net.ids[2]),
        "names only the faulty fiduciary: {why}"
    );

    // Bad input.
    for (body, status) in [
        (j!({"message": "00"}), 400),
        (j!({"message": "zz".repeat(32)}), 400),
        (j!({"message": message(1), "extra": 1}), 422),
        (j!({}), 422),
    ] {
        let (got, text) = net.beneficiary.call(
            "POST",
            "/v1/beneficiary/wallets/tr-wrong/signatures",
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(got, status, "{body}: {text}");
    }
    assert_eq!(sign(&net.beneficiary, "no-such-wallet", &message(1)).0, 404);
    let body = j!({"fiduciaries": net.ids, "beneficiary": net.beneficiary.id(),
                   "coin": "btc", "threshold": 2, "reference": "segwit"});
    assert_eq!(custody::order(&net.principal, &body).0, 201);
    custody::wait_wallet(&net.beneficiary, "segwit", WAIT, |_| true);
    let (status, s) = sign(&net.beneficiary, "segwit", &message(1));
    assert_eq!(status, 409, "{s}");

    // A stranger (a probe node that knows everyone) asks every fiduciary.
    let stranger = Node::start(
        NodeConfig::new("stranger")
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {:?}\n",
                custody::peers(&net.fiduciaries.iter().collect::<Vec<_>>())
            ))
            .plugin(probe(&[])),
    );
    let request = SignRequest {
        order_cid: Cid::try_from(o["order_cid"].as_str().unwrap()).unwrap(),
        epoch: None,
        session: ByteArray::new([7; 16]),
        message: ByteArray::new([1; 32]),
    };
    for f in &net.fiduciaries {
        let cid = send_sealed(&stranger, &request, &f.id(), &[]);
        let refusal = wait_refusal(f, "/v1/fiduciary/refusals", &cid, WAIT);
        assert!(
            refusal["reason"]
                .as_str()
                .unwrap()
                .contains("other than the wallet's beneficiary"),
            "{refusal}"
        );
        // Refused before any nonce: nothing of the stranger's in the log.
        let logged = all_pages(f, "/v1/fiduciary/signatures", "signatures");
        assert!(
            logged.iter().all(|s| s["requester"] != stranger.id()),
            "{logged:?}"
        );
    }
}

/// Acceptance 3: a fiduciary is killed (SIGKILL) between the rounds, its
/// share computed and logged but not sent; the signature completes with
/// another t, and no nonce commitment appears twice in any fiduciary's log,
/// the dead one's included after its restart (where the round-2 package,
/// processed again, finds its nonces gone).
#[test]
fn a_fiduciary_killed_between_the_rounds_is_replaced_and_no_nonce_is_reused() {
    let mut net = Network::start(&Options {
        faults: &[(2, "stall-before-share")],
        restartable: true,
        beneficiary_config: "{ signing_timeout_ms = 4000 }",
        beneficiary_handler_timeout_ms: Some(90_000),
        ..Options::default()
    });
    let o = taproot_wallet(&net, "btc-taproot", 2, "tr-die");
    // Fiduciary 2 frozen: round 1 of the first session gets fiduciaries 1
    // and 3, so the dying one is in the set.
    net.fiduciaries[1].pause();
    let started = Instant::now();
    let beneficiary = &net.beneficiary;
    let (head, tail) = net.fiduciaries.split_at_mut(2);
    let (frozen, dying) = (&head[1], &mut tail[0]);
    let s = thread::scope(|scope| {
        let signing = scope.spawn(|| sign(beneficiary, "tr-die", &message(9)));
        // Killed once its share is logged (durably) and held.
        let deadline = Instant::now() + WAIT;
        while !all_pages(dying, "/v1/fiduciary/signatures", "signatures")
            .iter()
            .any(|s| s["status"] == "signed")
        {
            assert!(
                Instant::now() < deadline,
                "fiduciary 3 never reached round 2"
            );
            thread::sleep(Duration::from_millis(50));
        }
        dying.kill();
        frozen.resume();
        signing.join().expect("signing thread")
    });
    let (status, s) = s;
    assert_eq!(status, 201, "{s}\n{}", net.beneficiary.log());
    assert_eq!(s["fiduciaries"], j!([net.ids[0], net.ids[1]]), "{s}");
    assert_eq!(s["silent"], j!([net.ids[2]]), "{s}");
    assert_eq!(s["attempts"], 2, "{s}");
    check_taproot(
        o["address"].as_str().unwrap(),
        std::slice::from_ref(&s),
        None,
    );
    println!(
        "a fiduciary died between the rounds: signed by another t in {:?}",
        started.elapsed()
    );

    // The dead one restarts: the package it died on is processed again and
    // refused, its nonces gone with the process.
    net.fiduciaries[2].restart();
    let deadline = Instant::now() + WAIT;
    let refused = loop {
        let refusals = all_pages(&net.fiduciaries[2], "/v1/fiduciary/refusals", "refusals");
        if let Some(r) = refusals
            .iter()
            .find(|r| r["kind"] == "custody/sign-package")
        {
            break r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no refusal after restart: {refusals:?}"
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("nonces are gone"),
        "{refused}"
    );

    // Every stored nonce commitment, across every fiduciary, is distinct.
    let mut seen = HashSet::new();
    let mut count = 0;
    for f in &net.fiduciaries {
        for c in logged_commitments(f) {
            assert_eq!(c.len(), 132, "D ‖ E, hex");
            assert!(seen.insert(c.clone()), "nonce commitment {c} logged twice");
            count += 1;
        }
    }
    assert!(
        count >= 4,
        "two sessions of two fiduciaries at least: {count}"
    );
    println!("{count} nonce commitments logged, all distinct");
}
