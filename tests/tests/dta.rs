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

//! The D-TA plugin end to end (issue 6): three D-TA processes and
//! requesters, real `milagro` processes with embedded IPFS nodes on
//! 127.0.0.1 bootstrapped to each other, exchanging `dta/request` and
//! `dta/share` envelopes.
//!
//! The wrong-share D-TA runs a copy of the plugin built with the
//! `test-faults` feature into its own target dir (`<target>/dta-test-faults`);
//! the library the workspace build makes has no fault injection at all.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Instant,
};

use milagro_tests::{Node, NodeConfig, PluginEntry, json, plugin_library};
use serde_json::{Value, json as j};

/// Per-D-TA answer timeout of the requesters.
const REPLY_TIMEOUT_MS: u64 = 20_000;

fn dta_config(client_allow: &[String], server_allow: &[String], extra: &str) -> String {
    format!(
        "{{ client_allow = {client_allow:?}, server_allow = {server_allow:?}, reply_timeout_ms = {REPLY_TIMEOUT_MS}{extra} }}"
    )
}

/// A node with the dta plugin (`library`), its embedded IPFS dialling `bootstrap`.
fn node(name: &str, bootstrap: &[String], library: &Path, config: &str) -> Node {
    Node::start(
        NodeConfig::new(name)
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n"
            ))
            .plugin(PluginEntry::new("dta", library, config)),
    )
}

fn peers(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().flat_map(|n| n.ipfs_addresses()).collect()
}

/// The plugin library built with `test-faults`, once per test run.
fn faulty_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        milagro_tests::plugin_library_with_feature(
            "milagro-plugin-dta",
            "test-faults",
            "dta-test-faults",
        )
    })
    .clone()
}

fn secrets(node: &Node, kind: &str, id: &str, authorities: &[String]) -> (u16, String) {
    let body = j!({"kind": kind, "mpin_id": id, "authorities": authorities});
    node.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()))
}

fn secret(node: &Node, kind: &str, id: &str, authorities: &[String]) -> String {
    let r = secrets(node, kind, id, authorities);
    assert_eq!(r.0, 200, "{kind} secret for {id}: {}\n{}", r.1, node.log());
    let v = json(&r.1);
    assert_eq!(v["kind"], kind);
    assert_eq!(v["mpin_id"], id);
    assert_eq!(
        v["authorities"].as_array().unwrap().len(),
        authorities.len()
    );
    assert_eq!(
        v["envelope_cids"].as_array().unwrap().len(),
        2 * authorities.len()
    );
    v["secret"].as_str().unwrap().to_string()
}

fn matches(node: &Node, id: &str, client: &str, server: &str) -> bool {
    let body = j!({"mpin_id": id, "client_secret": client, "server_secret": server});
    let r = node.call("POST", "/v1/dta/check", Some(body.to_string().as_bytes()));
    assert_eq!(r.0, 200, "{}", r.1);
    json(&r.1)["match"].as_bool().unwrap()
}

fn error_message(r: &(u16, String)) -> String {
    json(&r.1)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn three_dtas_issue_shares_that_combine_into_matching_mpin_secrets() {
    let lib = plugin_library("milagro-plugin-dta");
    let none: Vec<String> = Vec::new();
    // Requesters first: the D-TAs' allowlists name them.
    let r = node("requester", &[], &lib, &dta_config(&none, &none, ""));
    let outsider = node(
        "outsider",
        &peers(&[&r]),
        &lib,
        &dta_config(&none, &none, ""),
    );
    let (rid, oid) = (r.id(), outsider.id());
    let both = vec![rid.clone(), oid.clone()];
    let only_r = vec![rid.clone()];
    // D1 and D2 give the outsider client shares; D3 gives it nothing. Each
    // node dials every earlier one, so that pubsub reaches every inbox.
    let d1 = node(
        "d1",
        &peers(&[&r, &outsider]),
        &lib,
        &dta_config(&both, &only_r, ""),
    );
    let d2 = node(
        "d2",
        &peers(&[&r, &outsider, &d1]),
        &lib,
        &dta_config(&both, &only_r, ""),
    );
    let d3 = node(
        "d3",
        &peers(&[&r, &outsider, &d1, &d2]),
        &lib,
        &dta_config(&only_r, &only_r, ""),
    );
    let bad = node(
        "bad",
        &peers(&[&r, &d1]),
        &faulty_library(),
        &dta_config(&only_r, &only_r, ", test_fault = \"wrong-share\""),
    );
    let dtas = [d1.id(), d2.id(), d3.id()];
    let bad_id = bad.id();

    // Public shares are 96-byte compressed G2 points, distinct per D-TA.
    let publics: Vec<String> = [&d1, &d2, &d3]
        .iter()
        .map(|d| {
            let v = json(&d.get_auth("/v1/dta/public-share").1);
            assert_eq!(v["node_id"], d.id());
            // ... announced in a signed envelope on IPFS that anyone can
            // audit, the same one every time.
            let cid = v["envelope_cid"].as_str().unwrap();
            let again = json(&d.get_auth("/v1/dta/public-share").1);
            assert_eq!(again["envelope_cid"], cid);
            let audit = json(&r.get_auth(&format!("/v1/audit/{cid}")).1);
            assert_eq!(audit["ok"], true, "{audit}");
            assert_eq!(audit["envelopes"][0]["kind"], "dta/public-share");
            assert_eq!(audit["envelopes"][0]["sender"], d.id());
            v["public_share"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(publics.iter().all(|p| p.len() == 192));
    assert!(publics[0] != publics[1] && publics[1] != publics[2]);

    // 1. Combined client and server secrets satisfy e(C, Q) == e(H(id), S).
    let id = "alice@example.org";
    let started = Instant::now();
    let c = secret(&r, "client", id, &dtas);
    println!(
        "first client secret from 3 D-TAs in {:?}",
        started.elapsed()
    );
    let s = secret(&r, "server", id, &dtas);
    assert_eq!(c.len(), 96, "48-byte compressed G1");
    assert_eq!(s.len(), 192, "96-byte compressed G2");
    assert!(matches(&r, id, &c, &s), "e(C, Q) == e(H(id), S)");
    assert!(!matches(&r, "bob@example.org", &c, &s));
    // With two of the three shares the equation fails, either way round.
    let c2 = secret(&r, "client", id, &dtas[..2]);
    let s2 = secret(&r, "server", id, &dtas[1..]);
    assert!(!matches(&r, id, &c2, &s));
    assert!(!matches(&r, id, &c, &s2));
    // Asking again gives the same secret (the shares are deterministic).
    assert_eq!(secret(&r, "client", id, &dtas), c);

    // 2a. Not in D3's allowlist: refused, and the error names D3 only.
    let refused = secrets(&outsider, "client", id, &dtas);
    assert_eq!(refused.0, 403, "{}", refused.1);
    let msg = error_message(&refused);
    assert!(msg.contains(&dtas[2]) && msg.contains("refused"), "{msg}");
    assert!(!msg.contains(&dtas[0]) && !msg.contains(&dtas[1]), "{msg}");
    // ... and nobody gives it a server secret.
    let refused = secrets(&outsider, "server", id, &dtas);
    assert_eq!(refused.0, 403, "{}", refused.1);
    let msg = error_message(&refused);
    assert!(dtas.iter().all(|d| msg.contains(d)), "{msg}");
    // It can still get client shares from D1 and D2.
    secret(&outsider, "client", id, &dtas[..2]);

    // 2b. A D-TA answering wrong shares is detected and named.
    for kind in ["client", "server"] {
        let r = secrets(&r, kind, id, &[dtas[0].clone(), bad_id.clone()]);
        assert_eq!(r.0, 422, "{}", r.1);
        let msg = error_message(&r);
        assert!(
            msg.contains(&bad_id) && msg.contains("failed its pairing check"),
            "{msg}"
        );
        assert!(!msg.contains(&dtas[0]), "{msg}");
    }

    // 4. Bad input: 4xx with a clear message.
    let cases: [(Value, u16, &str); 7] = [
        (
            j!({"kind": "client", "mpin_id": "", "authorities": dtas}),
            400,
            "mpin_id must not be empty",
        ),
        (
            j!({"kind": "admin", "mpin_id": id, "authorities": dtas}),
            400,
            "unknown kind",
        ),
        (
            j!({"kind": "client", "mpin_id": id, "authorities": []}),
            400,
            "authorities must list",
        ),
        (
            j!({"kind": "client", "mpin_id": id, "authorities": [dtas[0], dtas[0]]}),
            400,
            "listed twice",
        ),
        (
            j!({"kind": "client", "mpin_id": id, "authorities": ["not-a-node-id"]}),
            400,
            "malformed authority",
        ),
        (j!({"kind": "client", "mpin_id": id}), 422, ""),
        (
            j!({"kind": "client", "mpin_id": id, "authorities": [unknown_node_id(&dtas[0])]}),
            404,
            "unknown authority",
        ),
    ];
    for (body, status, needle) in cases {
        let resp = r.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()));
        assert_eq!(resp.0, status, "{body}: {}", resp.1);
        assert!(error_message(&resp).contains(needle), "{body}: {}", resp.1);
    }
    let garbage = r.call("POST", "/v1/dta/secrets", Some(b"{not json"));
    assert_eq!(garbage.0, 400, "{}", garbage.1);

    // Issuance records: who, kind, which id, when, outcome; never a secret.
    let records = json(&d3.get_auth("/v1/dta/issuances").1);
    let list = records["issuances"].as_array().unwrap();
    assert!(list.iter().any(|i| i["requester"] == rid
        && i["kind"] == "client"
        && i["mpin_id"] == id
        && i["outcome"] == "issued"));
    assert!(
        list.iter()
            .any(|i| i["requester"] == oid && i["outcome"] == "refused")
    );
    assert!(list.iter().all(|i| i["time_unix_ms"].as_u64().unwrap() > 0));
    let text = records.to_string();
    assert!(
        !text.contains(&c) && !text.contains(&s),
        "no secret in the records"
    );
    for d in [&d1, &d2, &d3] {
        assert!(!d.log().contains(&c[..40]), "no secret in the logs");
    }

    // 5. Latency and throughput: N client secrets, each from all three D-TAs.
    let n = 20;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        secret(&r, "client", &format!("user{i}@example.org"), &dtas);
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    latencies.sort();
    println!(
        "issuance of a client secret from 3 D-TAs (sequential, {n} ids): median {:?}, p90 {:?}, max {:?}; \
         per D-TA {:.1} shares/s",
        latencies[n / 2],
        latencies[n * 9 / 10],
        latencies[n - 1],
        n as f64 / total.as_secs_f64()
    );
    // Concurrent: several requests in flight at once.
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let url = r.url("/v1/dta/secrets");
            let token = r.token();
            let body =
                j!({"kind": "client", "mpin_id": format!("c{i}"), "authorities": dtas}).to_string();
            std::thread::spawn(move || {
                let req = ureq::post(&url).set("Authorization", &format!("Bearer {token}"));
                milagro_tests::request(req, Some(body.as_bytes())).0
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    let total = started.elapsed();
    println!(
        "{n} concurrent client secrets from 3 D-TAs in {total:?}: per D-TA {:.1} shares/s",
        n as f64 / total.as_secs_f64()
    );
}

/// A well-formed node ID that no node has: `id` with one character of its
/// digest changed.
fn unknown_node_id(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

/// The ordinary build has no fault injection: a config asking for one is
/// refused at start, with one error line naming the field.
#[test]
fn the_workspace_build_refuses_test_faults() {
    let config = NodeConfig::new("nofault").plugin(PluginEntry::new(
        "dta",
        &plugin_library("milagro-plugin-dta"),
        "{ test_fault = \"wrong-share\" }",
    ));
    let exited = Node::start_expecting_exit(config);
    assert!(!exited.status.success());
    let error = exited
        .stderr
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error line:\n{}", exited.stderr));
    assert!(
        error.contains("test_fault") && error.contains("\"dta\""),
        "{error}"
    );
}

/// The plugin's routes are in `/openapi.json`, which a real OpenAPI 3
/// validator accepts (as in host.rs).
#[test]
fn openapi_document_with_the_dta_plugin_is_valid() {
    let node = Node::start(NodeConfig::new("openapi").plugin(PluginEntry::new(
        "dta",
        &plugin_library("milagro-plugin-dta"),
        "{}",
    )));
    let (status, body) = node.get_auth("/openapi.json");
    assert_eq!(status, 200);
    let doc = json(&body);
    for (path, method) in [
        ("/v1/dta/public-share", "get"),
        ("/v1/dta/secrets", "post"),
        ("/v1/dta/check", "post"),
        ("/v1/dta/issuances", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    milagro_tests::assert_valid_openapi(node.dir.path(), &body);
}
