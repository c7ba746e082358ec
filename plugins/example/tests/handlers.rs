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

//! The example plugin's handlers, through the in-process test harness:
//! each test builds the plugin from its config as a node would and calls
//! its routes by method and path.

use milagro_plugin_api::testing::TestNet;
use milagro_plugin_example::Example;
use serde_json::json;

#[test]
fn greets_with_the_configured_word() {
    let net = TestNet::new();
    let example = net
        .instance::<Example>("example", json!({"greeting": "Hi"}))
        .unwrap();

    let greeting = example.get("/greeting?name=Ada");
    assert_eq!(greeting.status, 200);
    assert_eq!(greeting.body["message"], "Hi, Ada!");
    assert_eq!(example.get("/greeting").body["message"], "Hi, world!");
}

#[test]
fn an_empty_greeting_is_refused_at_start() {
    let net = TestNet::new();
    let refused = net
        .instance::<Example>("example", json!({"greeting": " "}))
        .err()
        .expect("an empty greeting is refused");
    assert_eq!(refused.message, "greeting must not be empty");
}

#[test]
fn notes_are_stored_read_and_listed_in_pages() {
    let net = TestNet::new();
    let example = net.instance::<Example>("example", json!({})).unwrap();

    for key in ["b", "a", "c"] {
        let put = example.put(&format!("/notes/{key}"), &json!({"text": key.repeat(2)}));
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let note = example.get("/notes/a");
    assert_eq!(note.status, 200);
    assert_eq!(note.body["text"], "aa");
    assert_eq!(example.get("/notes/zz").status, 404);

    let first = example.get("/notes?limit=2");
    assert_eq!(first.status, 200);
    let keys: Vec<&str> = first.body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(first.body["next_cursor"], "b");
    let last = example.get("/notes?limit=2&cursor=b");
    assert_eq!(last.body["notes"][0]["key"], "c");
    assert!(last.body["next_cursor"].is_null());
}

#[test]
fn bad_requests_are_refused_with_their_status() {
    let net = TestNet::new();
    let example = net.instance::<Example>("example", json!({})).unwrap();

    assert_eq!(example.get("/notes?limit=0").status, 400);
    assert_eq!(example.put("/notes/a", &json!({"txt": "typo"})).status, 422);
    let long_key = "k".repeat(129);
    assert_eq!(
        example
            .put(&format!("/notes/{long_key}"), &json!({"text": "x"}))
            .status,
        400
    );
    // Routed as the host routes: an unserved method, an unknown path.
    let delete = example.delete("/notes/a");
    assert_eq!(delete.status, 405);
    assert_eq!(delete.body["error"]["code"], "method_not_allowed");
    assert_eq!(example.get("/nothing").status, 404);
}
