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

//! The D-TA plugin's handlers through the in-process test harness: a
//! requester node asks D-TA nodes for shares over the loopback transport,
//! and each D-TA answers by its policy. The multi-process tests
//! (`tests/tests/dta.rs`) cover the same flows between real nodes.

use milagro_plugin_api::testing::{Instance, TestNet};
use milagro_plugin_dta::Dta;
use serde_json::{Value, json};

const ID: &str = "alice@example.com";

/// A requester and two D-TAs that issue client shares to it only.
fn requester_and_two_dtas(net: &TestNet) -> (Instance, Vec<Instance>) {
    let requester = net
        .instance::<Dta>("dta", json!({"reply_timeout_ms": 2000}))
        .unwrap();
    let dtas = ["d1", "d2"]
        .into_iter()
        .map(|name| {
            net.node(name)
                .plugin::<Dta>("dta", json!({"client_allow": [requester.id()]}))
                .unwrap()
        })
        .collect();
    (requester, dtas)
}

fn ids(instances: &[Instance]) -> Vec<String> {
    instances.iter().map(Instance::id).collect()
}

#[test]
fn a_client_secret_is_combined_from_every_dta_share() {
    let net = TestNet::new();
    let (requester, dtas) = requester_and_two_dtas(&net);

    let asked = json!({"kind": "client", "mpin_id": ID, "authorities": ids(&dtas)});
    let first = requester.post("/secrets", &asked);
    assert_eq!(first.status, 200, "{}", first.body);
    let secret = first.body["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 96, "a compressed G1 point in hex: {secret}");
    assert_eq!(first.body["authorities"], json!(ids(&dtas)));
    // A request and its reply per D-TA, each request received by its D-TA.
    let cids = first.body["envelope_cids"].as_array().unwrap();
    assert_eq!(cids.len(), 4);
    for (dta, request) in dtas.iter().zip([&cids[0], &cids[2]]) {
        let received = dta.processed();
        assert_eq!(received[0].cid, request.as_str().unwrap());
        assert_eq!(received[0].sender, requester.id());
        assert_eq!(received[0].refusal, None);
    }

    // The same ID again: the same secret; another ID: another one.
    assert_eq!(requester.post("/secrets", &asked).body["secret"], secret);
    let other = json!({"kind": "client", "mpin_id": "bob", "authorities": ids(&dtas)});
    assert_ne!(requester.post("/secrets", &other).body["secret"], secret);

    // Each D-TA recorded what it issued, to whom.
    net.settle();
    let issued = dtas[0].get("/issuances");
    assert_eq!(issued.status, 200);
    let first_issuance = &issued.body["issuances"][0];
    assert_eq!(first_issuance["outcome"], "issued");
    assert_eq!(first_issuance["requester"], requester.id());
    assert_eq!(first_issuance["mpin_ids"], json!([ID]));
}

#[test]
fn a_dta_refuses_a_share_its_policy_does_not_allow() {
    let net = TestNet::new();
    let (requester, dtas) = requester_and_two_dtas(&net);

    // Server shares: no D-TA lists the requester in server_allow.
    let refused = requester.post(
        "/secrets",
        &json!({"kind": "server", "authorities": ids(&dtas)}),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        dtas.iter().any(|d| message.contains(&d.id())),
        "the refusal names the D-TA: {message}"
    );

    net.settle();
    let decisions: Vec<Value> = dtas[1].get("/issuances").body["issuances"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["outcome"], "refused");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("server_allow")
    );
}

#[test]
fn a_stranger_gets_nothing_and_bad_requests_are_refused() {
    let net = TestNet::new();
    let (_requester, dtas) = requester_and_two_dtas(&net);
    let stranger = net
        .node("stranger")
        .plugin::<Dta>("dta", json!({"reply_timeout_ms": 2000}))
        .unwrap();

    let refused = stranger.post(
        "/secrets",
        &json!({"kind": "client", "mpin_id": ID, "authorities": ids(&dtas)}),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    // A node ID of another network: a CID that resolves to no node here.
    let elsewhere = TestNet::new().node("elsewhere").create().unwrap().id();
    let unknown = stranger.post(
        "/secrets",
        &json!({"kind": "client", "mpin_id": ID, "authorities": [elsewhere]}),
    );
    assert_eq!(
        unknown.status, 404,
        "an authority that is no node: {}",
        unknown.body
    );
    let twice = stranger.post(
        "/secrets",
        &json!({"kind": "client", "mpin_id": ID, "authorities": [dtas[0].id(), dtas[0].id()]}),
    );
    assert_eq!(twice.status, 400, "{}", twice.body);
}

#[test]
fn the_public_share_is_this_dtas_key() {
    let net = TestNet::new();
    let (_requester, dtas) = requester_and_two_dtas(&net);

    let share = dtas[0].get("/public-share");
    assert_eq!(share.status, 200, "{}", share.body);
    assert_eq!(share.body["node_id"], dtas[0].id());
    assert_eq!(share.body["public_key"].as_str().unwrap().len(), 96);
    // Drawn once: asked again, the same key and envelope.
    assert_eq!(dtas[0].get("/public-share").body, share.body);
    assert_ne!(
        dtas[1].get("/public-share").body["public_key"],
        share.body["public_key"]
    );
}
