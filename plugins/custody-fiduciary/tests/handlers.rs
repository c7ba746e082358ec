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

//! The fiduciary plugin's handlers on its own, through the in-process test
//! harness: its config checks and what it does with an envelope about an
//! order it does not hold. The order's whole life, with a principal and a
//! beneficiary, is tested in `plugins/custody-principal/tests/handlers.rs`.

use milagro_custody::messages::{self, Body, Redeem};
use milagro_plugin_api::{NewEnvelope, testing::TestNet, zeroize::Zeroizing};
use milagro_plugin_custody_fiduciary::Fiduciary;
use serde_json::json;

#[test]
fn a_principal_that_is_no_node_id_is_refused_at_start() {
    let net = TestNet::new();
    let refused = net
        .instance::<Fiduciary>("fiduciary", json!({"principals": ["alice"]}))
        .err()
        .expect("a bad allowlist is refused");
    assert!(
        refused
            .message
            .starts_with("principals: \"alice\" is not a node ID"),
        "{refused}"
    );
}

#[test]
fn a_redeem_of_an_order_it_does_not_hold_is_refused_and_recorded() {
    let net = TestNet::new();
    let fiduciary = net.instance::<Fiduciary>("fiduciary", json!({})).unwrap();
    let stranger = net
        .node("stranger")
        .plugin::<Fiduciary>("fiduciary", json!({}))
        .unwrap();
    assert_eq!(fiduciary.get("/shares").body["shares"], json!([]));

    let redeem = Redeem {
        order_cid: stranger.id().as_str().try_into().unwrap(),
        reference: "w1".into(),
        new_beneficiary: None,
        epoch: None,
    };
    let cid = stranger
        .send(NewEnvelope {
            kind: Redeem::KIND.into(),
            recipients: vec![fiduciary.id()],
            sealed: Zeroizing::new(messages::encode(&redeem).unwrap()),
            ..NewEnvelope::default()
        })
        .unwrap();
    net.settle();

    let refusals = fiduciary.get("/refusals").body["refusals"].clone();
    assert_eq!(refusals.as_array().unwrap().len(), 1, "{refusals}");
    assert_eq!(refusals[0]["envelope_cid"], cid.as_str());
    assert_eq!(refusals[0]["sender"], stranger.id());
    assert_eq!(
        refusals[0]["reason"],
        format!("no order {} is held here", stranger.id())
    );
    // Recorded as the plugin's refusal: the envelope itself was processed.
    assert_eq!(fiduciary.processed()[0].refusal, None);
}
