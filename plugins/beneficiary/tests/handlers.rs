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

//! The beneficiary plugin's handlers on its own, through the in-process
//! test harness: its wallet listing and what it does with envelopes about
//! an order it was never told of. The order's whole life, with a principal
//! and fiduciaries, is tested in
//! `plugins/custody-principal/tests/handlers.rs`.

use milagro_custody::{
    SecretScalar,
    messages::{self, Body, Notice, Release},
};
use milagro_plugin_api::{
    NewEnvelope,
    testing::{Instance, TestNet},
    zeroize::Zeroizing,
};
use milagro_plugin_beneficiary::Beneficiary;
use serde_json::json;

/// A beneficiary (its node publishes a beneficiary key) and a stranger.
fn beneficiary_and_stranger(net: &TestNet) -> (Instance, Instance) {
    let beneficiary = net
        .node("b")
        .beneficiary_key()
        .plugin::<Beneficiary>("beneficiary", json!({}))
        .unwrap();
    let stranger = net
        .node("stranger")
        .plugin::<Beneficiary>("beneficiary", json!({}))
        .unwrap();
    (beneficiary, stranger)
}

/// `kind` with a sealed `body` from `from` to `to`; its CID.
fn send_sealed(from: &Instance, to: &Instance, kind: &str, body: Vec<u8>) -> String {
    from.send(NewEnvelope {
        kind: kind.into(),
        recipients: vec![to.id()],
        sealed: Zeroizing::new(body),
        ..NewEnvelope::default()
    })
    .unwrap()
}

#[test]
fn a_release_before_its_orders_notice_is_kept_and_shows_no_wallet() {
    let net = TestNet::new();
    let (beneficiary, stranger) = beneficiary_and_stranger(&net);
    assert_eq!(beneficiary.get("/wallets").body["wallets"], json!([]));
    assert_eq!(beneficiary.get("/wallets/w1").status, 404);

    let release = Release {
        order_cid: stranger.id().as_str().try_into().unwrap(),
        share: SecretScalar::random().unwrap(),
        epoch: None,
    };
    let body = messages::encode(&release).unwrap();
    send_sealed(&stranger, &beneficiary, Release::KIND, body);
    net.settle();

    // Kept for a notice that may come later: not refused, no wallet.
    assert_eq!(beneficiary.processed()[0].refusal, None);
    assert_eq!(beneficiary.get("/refusals").body["refusals"], json!([]));
    assert_eq!(beneficiary.get("/wallets").body["wallets"], json!([]));
}

#[test]
fn a_malformed_notice_is_refused_and_recorded() {
    let net = TestNet::new();
    let (beneficiary, stranger) = beneficiary_and_stranger(&net);

    let cid = send_sealed(
        &stranger,
        &beneficiary,
        Notice::KIND,
        b"not a notice".to_vec(),
    );
    net.settle();

    let refusals = beneficiary.get("/refusals").body["refusals"].clone();
    assert_eq!(refusals.as_array().unwrap().len(), 1, "{refusals}");
    assert_eq!(refusals[0]["envelope_cid"], cid.as_str());
    let reason = refusals[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("malformed custody/notice"), "{reason}");
    assert_eq!(beneficiary.get("/wallets").body["wallets"], json!([]));
}

#[test]
fn the_signing_timeout_must_be_positive() {
    let net = TestNet::new();
    let refused = net
        .instance::<Beneficiary>("beneficiary", json!({"signing_timeout_ms": 0}))
        .err()
        .expect("a zero timeout is refused");
    assert_eq!(refused.code.http_status(), 400, "{refused}");
}
