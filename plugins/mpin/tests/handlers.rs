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

//! The mpin plugin's handlers through the in-process test harness: a user
//! enrolled through two D-TA nodes logs in with 2-pass M-Pin on a node
//! running mpin, which obtains the server secret from the D-TAs over the
//! loopback transport. The multi-process test (`tests/tests/mpin.rs`)
//! covers the same flow between real nodes, with independent clients.

use milagro_mpin::{client, g1_from_hex, g1_to_hex, scalar_from_be_hex};
use milagro_plugin_api::testing::{Instance, TestNet};
use milagro_plugin_dta::Dta;
use milagro_plugin_mpin::Mpin;
use serde_json::json;

const ID: &str = "alice@example.org";
const PIN: u32 = 1234;
const WRONG: u32 = 1235;

/// The enrolment node's client secret for [`ID`] from `dtas`.
fn enrol(enrolment: &Instance, dtas: &[String]) -> client::Token {
    let r = enrolment.post(
        "/secrets",
        &json!({"kind": "client", "mpin_id": ID, "authorities": dtas}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = g1_from_hex(r.body["secret"].as_str().unwrap()).unwrap();
    client::Token::from_client_secret(&secret, ID.as_bytes(), PIN)
}

/// Both passes with milagro-mpin's client; the PIN typed is `entered`.
fn login(mpin: &Instance, token: &client::Token, entered: u32) -> (u16, serde_json::Value) {
    let (x, u) = client::pass1(ID.as_bytes()).unwrap();
    let first = mpin.post("/pass1", &json!({"mpin_id": ID, "u": g1_to_hex(&u)}));
    if first.status != 200 {
        return (first.status, first.body);
    }
    let y = scalar_from_be_hex(first.body["y"].as_str().unwrap()).unwrap();
    let v = client::pass2(&x, &y, token, entered, ID.as_bytes());
    let second = mpin.post(
        "/pass2",
        &json!({"session": first.body["session"], "v": g1_to_hex(&v)}),
    );
    (second.status, second.body)
}

#[test]
fn an_enrolled_user_logs_in_and_wrong_pins_block_the_id() {
    let net = TestNet::new();
    let enrolment = net.instance::<Dta>("dta", json!({})).unwrap();
    // The mpin node's ID first: the D-TAs' server_allow names it.
    let auth = net.node("auth").create().unwrap();
    let allow = json!({"client_allow": [enrolment.id()], "server_allow": [auth.id()]});
    let dtas: Vec<String> = ["d1", "d2"]
        .into_iter()
        .map(|name| {
            net.node(name)
                .plugin::<Dta>("dta", allow.clone())
                .unwrap()
                .id()
        })
        .collect();
    let mpin = auth
        .plugin::<Mpin>(
            "mpin",
            json!({"authorities": dtas, "max_attempts": 2, "reply_timeout_ms": 2000}),
        )
        .unwrap();
    let token = enrol(&enrolment, &dtas);

    let obtained = mpin.post("/server-secret", &json!({}));
    assert_eq!(obtained.status, 200, "{}", obtained.body);
    assert_eq!(obtained.body["envelope_cids"].as_array().unwrap().len(), 4);
    // The D-TAs' replies are awaited, never "not processed".
    net.settle();
    assert!(mpin.processed().iter().all(|p| p.refusal.is_none()));

    assert_eq!(
        login(&mpin, &token, PIN),
        (200, json!({"authenticated": true, "mpin_id": ID}))
    );
    assert_eq!(login(&mpin, &token, WRONG).0, 401);
    assert_eq!(login(&mpin, &token, WRONG).0, 401);
    // Blocked: the right PIN too, until the operator unblocks the ID.
    assert_eq!(login(&mpin, &token, PIN).0, 423);
    let unblocked = mpin.post("/unblock", &json!({"mpin_id": ID}));
    assert_eq!(unblocked.status, 200, "{}", unblocked.body);
    assert_eq!(login(&mpin, &token, PIN).0, 200);
}

#[test]
fn without_the_server_secret_logins_are_unavailable() {
    let net = TestNet::new();
    let enrolment = net.instance::<Dta>("dta", json!({})).unwrap();
    // A D-TA that issues client shares but never the server secret.
    let dta = net
        .node("d1")
        .plugin::<Dta>("dta", json!({"client_allow": [enrolment.id()]}))
        .unwrap();
    let mpin = net
        .instance::<Mpin>(
            "mpin",
            json!({"authorities": [dta.id()], "reply_timeout_ms": 2000}),
        )
        .unwrap();
    let token = enrol(&enrolment, &[dta.id()]);

    let refused = mpin.post("/server-secret", &json!({}));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&dta.id()),
        "{}",
        refused.body
    );
    assert_eq!(login(&mpin, &token, PIN).0, 503);
    let status = mpin.get("/status");
    assert_eq!(status.body["ready"], false, "{}", status.body);
}
