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

//! The custody plugins' handlers together, through the in-process test
//! harness: an order placed on a principal node reaches two fiduciary
//! nodes and a beneficiary node over the loopback transport, a redemption
//! hands the beneficiary the wallet key, and what a stranger sends is
//! refused. The multi-process tests (`tests/tests/custody*.rs`) cover the
//! same flows between real nodes, and much more.

use milagro_custody::{
    SecretScalar,
    keys::encode_public_key,
    messages::{self, Body, Redeem},
};
use milagro_plugin_api::{NewEnvelope, testing::Instance, testing::TestNet, zeroize::Zeroizing};
use milagro_plugin_beneficiary::Beneficiary;
use milagro_plugin_custody_fiduciary::Fiduciary;
use milagro_plugin_custody_principal::Principal;
use serde_json::{Value, json};

/// A principal, two fiduciaries taking its orders only, and a beneficiary.
struct Custody {
    principal: Instance,
    fiduciaries: Vec<Instance>,
    beneficiary: Instance,
}

impl Custody {
    fn new(net: &TestNet) -> Custody {
        let principal = net
            .instance::<Principal>("principal", json!({"reply_timeout_ms": 2000}))
            .unwrap();
        let fiduciaries = ["f1", "f2"]
            .into_iter()
            .map(|name| {
                net.node(name)
                    .plugin::<Fiduciary>("fiduciary", json!({"principals": [principal.id()]}))
                    .unwrap()
            })
            .collect();
        let beneficiary = net
            .node("b")
            .beneficiary_key()
            .plugin::<Beneficiary>("beneficiary", json!({}))
            .unwrap();
        Custody {
            principal,
            fiduciaries,
            beneficiary,
        }
    }

    fn fiduciary_ids(&self) -> Vec<String> {
        self.fiduciaries.iter().map(Instance::id).collect()
    }

    /// `POST /orders` for a BTC wallet named `reference`.
    fn order(&self, reference: &str) -> (u16, Value) {
        let r = self.principal.post(
            "/orders",
            &json!({"fiduciaries": self.fiduciary_ids(), "beneficiary": self.beneficiary.id(),
                    "coin": "btc", "reference": reference}),
        );
        (r.status, r.body)
    }
}

#[test]
fn an_order_reaches_the_fiduciaries_and_the_beneficiary_redeems_its_key() {
    let net = TestNet::new();
    let custody = Custody::new(&net);

    let (status, order) = custody.order("w1");
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "ready");
    assert!(
        order["address"].as_str().unwrap().starts_with("bc1q"),
        "{order}"
    );
    for f in order["fiduciaries"].as_array().unwrap() {
        assert_eq!(f["status"], "committed", "{order}");
    }
    // The same order again: the same wallet.
    let (status, again) = custody.order("w1");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["address"], order["address"]);

    net.settle();
    for fiduciary in &custody.fiduciaries {
        let shares = fiduciary.get("/shares").body["shares"].clone();
        assert_eq!(shares.as_array().unwrap().len(), 1, "{shares}");
        assert_eq!(shares[0]["reference"], "w1");
        assert!(shares[0].get("share").is_none(), "no secret is shown");
    }
    let wallet = custody.beneficiary.get("/wallets/w1");
    assert_eq!(wallet.status, 200, "{}", wallet.body);
    assert_eq!(wallet.body["status"], "pending");
    assert_eq!(wallet.body["address"], order["address"]);
    assert_eq!(wallet.body["shares_needed"], 2);

    let redeemed = custody.principal.post("/orders/w1/redeem", &json!({}));
    assert_eq!(redeemed.status, 202, "{}", redeemed.body);
    net.settle();
    let wallet = custody.beneficiary.get("/wallets/w1").body;
    assert_eq!(wallet["status"], "complete", "{wallet}");
    assert_eq!(wallet["shares_received"], 2);
    // The key the beneficiary rebuilt is the wallet's.
    let secret = hex::decode(wallet["secret_key"].as_str().unwrap()).unwrap();
    let secret: [u8; 32] = secret.try_into().unwrap();
    let public = SecretScalar::from_bytes(&secret).unwrap().public_key();
    assert_eq!(
        hex::decode(order["public_key"].as_str().unwrap()).unwrap(),
        encode_public_key(&public).to_vec()
    );
}

#[test]
fn what_a_stranger_sends_is_refused() {
    let net = TestNet::new();
    let custody = Custody::new(&net);
    let (status, order) = custody.order("w1");
    assert_eq!(status, 201, "{order}");

    // An order from a principal the fiduciaries do not take orders from.
    let stranger = net
        .node("stranger")
        .plugin::<Principal>("principal", json!({"reply_timeout_ms": 300}))
        .unwrap();
    let refused = stranger.post(
        "/orders",
        &json!({"fiduciaries": custody.fiduciary_ids(), "beneficiary": stranger.id(),
                "coin": "btc", "reference": "w1"}),
    );
    // The fiduciaries refuse it without an answer: the principal's wait
    // for their commitments runs out.
    assert_eq!(refused.status, 504, "{}", refused.body);

    // A redeem of the real order, signed by the stranger: nothing released.
    let forged = Redeem {
        order_cid: order["order_cid"].as_str().unwrap().try_into().unwrap(),
        reference: "w1".into(),
        new_beneficiary: Some(stranger.id()),
        epoch: None,
    };
    let f1 = &custody.fiduciaries[0];
    let cid = stranger
        .send(NewEnvelope {
            kind: Redeem::KIND.into(),
            recipients: vec![f1.id()],
            sealed: Zeroizing::new(messages::encode(&forged).unwrap()),
            ..NewEnvelope::default()
        })
        .unwrap();
    net.settle();

    let refusals = f1.get("/refusals").body["refusals"].clone();
    let reasons: Vec<&str> = refusals
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not in this fiduciary's allowlist")),
        "{refusals}"
    );
    let redeem = refusals
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["envelope_cid"] == cid.as_str())
        .unwrap_or_else(|| panic!("the forged redeem is refused: {refusals}"));
    assert!(
        redeem["reason"]
            .as_str()
            .unwrap()
            .contains("neither the order's principal nor its beneficiary"),
        "{redeem}"
    );
    let shares = f1.get("/shares").body["shares"].clone();
    assert_eq!(shares.as_array().unwrap().len(), 1, "{shares}");
    assert!(shares[0]["released_to"].is_null(), "{shares}");
    assert_eq!(
        custody.beneficiary.get("/wallets/w1").body["status"],
        "pending"
    );
}
