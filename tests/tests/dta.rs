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

//! The D-TA plugin end to end (issues 6 and 16): three D-TA processes and
//! requesters, real `milagro` processes with embedded IPFS nodes on
//! 127.0.0.1 bootstrapped to each other, exchanging `dta/request` and
//! `dta/share` envelopes.
//!
//! - Client secrets combine into a `C` that, with the combined server
//!   secret `S`, logs in with the right PIN only (M-Pin arithmetic of the
//!   `milagro-mpin` crate).
//! - No G2 value a non-allowed party can see (REST answers, clear bodies of
//!   every envelope on IPFS, log lines) is `S`, nor adds up to it.
//! - A probe node, allowed by one D-TA, receives that D-TA's raw sealed
//!   answers: `tests/dta_check.py` (PyPI `py_ecc`, no code shared with
//!   Milagro) verifies its DLEQ proofs and its server share's pairing, and
//!   recomputes the DLEQ test vector of docs/dta.md.
//! - The wrong-share D-TA runs a copy of the plugin built with the
//!   `test-faults` feature into its own target dir
//!   (`<target>/test-plugins`); its client shares fail their DLEQ proofs
//!   and its server share the pairing check, each named in a 422. The
//!   library the workspace build makes has no fault injection at all.
//! - Batch: 256 IDs in one request to each of 3 D-TAs.

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use ipld_core::ipld::Ipld;
use milagro_mpin::{
    G1Affine, G1Projective, G2Affine, G2Projective, Group, PrimeCurveAffine, client,
    curve::pairing, g1_from_hex, g2_from_bytes, g2_from_hex, g2_to_hex, hash_id, server, wire,
};
use milagro_proto::{Cid, Envelope, Limits};
use milagro_tests::{
    Node, NodeConfig, PluginEntry, json, plugin_library, test_plugins::test_faults_library,
};
use serde_json::{Value, json as j};

/// Per-D-TA answer timeout of the requesters.
const REPLY_TIMEOUT_MS: u64 = 30_000;

fn dta_config(client_allow: &[String], server_allow: &[String], extra: &str) -> String {
    format!(
        "{{ client_allow = {client_allow:?}, server_allow = {server_allow:?}, reply_timeout_ms = {REPLY_TIMEOUT_MS}{extra} }}"
    )
}

fn ipfs_section(bootstrap: &[String]) -> String {
    format!("[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n")
}

/// A node with the dta plugin (`library`), its embedded IPFS dialling `bootstrap`.
fn node(name: &str, bootstrap: &[String], library: &Path, config: &str) -> Node {
    Node::start(
        NodeConfig::new(name)
            .section(&ipfs_section(bootstrap))
            .plugin(PluginEntry::new("dta", library, config)),
    )
}

/// The test's probe plugin, consuming `kinds`.
fn probe(label: &str, kinds: &[&str]) -> PluginEntry {
    PluginEntry::new(
        "probe",
        &plugin_library("milagro-test-probe"),
        &format!("{{ label = \"{label}\", consumes = {kinds:?} }}"),
    )
}

fn peers(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().flat_map(|n| n.ipfs_addresses()).collect()
}

fn secrets_body(kind: &str, id: Option<&str>, authorities: &[String]) -> Value {
    match id {
        Some(id) => j!({"kind": kind, "mpin_id": id, "authorities": authorities}),
        None => j!({"kind": kind, "authorities": authorities}),
    }
}

fn secrets(node: &Node, kind: &str, id: Option<&str>, authorities: &[String]) -> (u16, String) {
    let body = secrets_body(kind, id, authorities);
    node.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()))
}

/// A combined secret, checked for form; also returns the whole answer.
fn secret_and_answer(
    node: &Node,
    kind: &str,
    id: Option<&str>,
    authorities: &[String],
) -> (String, String) {
    let r = secrets(node, kind, id, authorities);
    assert_eq!(
        r.0,
        200,
        "{kind} secret for {id:?}: {}\n{}",
        r.1,
        node.log()
    );
    let v = json(&r.1);
    assert_eq!(v["kind"], kind);
    if let Some(id) = id {
        assert_eq!(v["mpin_id"], id);
    }
    assert_eq!(
        v["authorities"].as_array().unwrap().len(),
        authorities.len()
    );
    assert_eq!(
        v["envelope_cids"].as_array().unwrap().len(),
        2 * authorities.len()
    );
    (v["secret"].as_str().unwrap().to_string(), r.1)
}

fn client_secret(node: &Node, id: &str, authorities: &[String]) -> String {
    secret_and_answer(node, "client", Some(id), authorities).0
}

fn server_secret(node: &Node, authorities: &[String]) -> String {
    secret_and_answer(node, "server", None, authorities).0
}

/// Whether a device enrolled with `client_secret` and `pin` logs in with
/// `try_pin` against `server_secret` (2-pass M-Pin, fresh x and y).
fn logs_in(id: &str, client_secret: &str, pin: u32, try_pin: u32, server_secret: &str) -> bool {
    let c = g1_from_hex(client_secret).unwrap();
    let s = g2_from_hex(server_secret).unwrap();
    let token = client::Token::from_client_secret(&c, id.as_bytes(), pin);
    let (x, u) = client::pass1(id.as_bytes()).unwrap();
    let y = milagro_mpin::random_scalar().unwrap();
    let v = client::pass2(&x, &y, &token, try_pin, id.as_bytes());
    server::verify_login(id.as_bytes(), &u, &y, &v, &s)
}

fn error_message(r: &(u16, String)) -> String {
    json(&r.1)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every G2 point written in `text` as hex (192 hex digits, compressed).
fn g2_in_text(text: &str) -> Vec<G2Affine> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        let run = &text[start..i];
        if run.len() >= 2 * milagro_mpin::G2_LEN {
            for off in (0..=run.len() - 2 * milagro_mpin::G2_LEN).step_by(2) {
                if let Ok(p) = g2_from_hex(&run[off..off + 2 * milagro_mpin::G2_LEN]) {
                    found.push(p);
                }
            }
        }
    }
    found
}

/// Every G2 point in `bytes` as 96 raw bytes (compressed, any offset).
fn g2_in_bytes(bytes: &[u8]) -> Vec<G2Affine> {
    let n = milagro_mpin::G2_LEN;
    if bytes.len() < n {
        return Vec::new();
    }
    (0..=bytes.len() - n)
        // Compressed, not infinity: the cheap flag test first.
        .filter(|&i| bytes[i] & 0xc0 == 0x80)
        .filter_map(|i| g2_from_bytes(&bytes[i..i + n]).ok())
        .collect()
}

/// An envelope's clear body, fetched through `via`'s probe plugin.
fn clear_body(via: &Node, cid: &str) -> Vec<u8> {
    let url = via.url(&format!("/v1/probe/ipfs/get/{cid}"));
    let response = ureq::get(&url)
        .set("Authorization", &format!("Bearer {}", via.token()))
        .timeout(Duration::from_secs(30))
        .call()
        .unwrap_or_else(|e| panic!("fetch {cid}: {e}"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    // Hash, form and limits checked; then the wire map's clear `body`.
    Envelope::decode(&Cid::try_from(cid).unwrap(), &bytes, &Limits::default())
        .unwrap_or_else(|e| panic!("decode {cid}: {e}"));
    match milagro_tests::craft::to_map(&bytes).get("body") {
        Some(Ipld::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    }
}

/// Runs `tests/dta_check.py` (py_ecc) on `input` (its stdin).
fn run_py_ecc_check(input: &Value) -> std::process::Output {
    let script = milagro_tests::workspace_root().join("tests/dta_check.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 tests/dta_check.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write the input");
    child.wait_with_output().expect("dta_check.py output")
}

/// Runs `tests/dta_check.py` expecting it to accept `input`; returns its
/// counts.
fn py_ecc_check(input: &Value) -> Value {
    let out = run_py_ecc_check(input);
    assert!(
        out.status.success(),
        "dta_check.py (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    json(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs `tests/dta_check.py` expecting it to refuse `input` (exit 1).
fn py_ecc_refuses(input: &Value) {
    let out = run_py_ecc_check(input);
    assert_eq!(out.status.code(), Some(1), "dta_check.py accepted {input}");
}

/// Sends a `dta/request` from the probe node to `dta` with `sealed` as its
/// sealed part and waits (bounded) for the D-TA's answer in the probe's
/// records: (request CID, reply record).
fn probe_request(prober: &Node, dta: &str, sealed: &str) -> (String, Value) {
    let body = j!({"kind": wire::REQUEST_KIND, "recipients": [dta], "secret": sealed});
    let r = prober.call("POST", "/v1/probe/send", Some(body.to_string().as_bytes()));
    assert_eq!(r.0, 200, "{}", r.1);
    let cid = json(&r.1)["cid"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = json(&prober.get_auth("/v1/probe/received").1);
        if let Some(reply) = records
            .as_array()
            .unwrap()
            .iter()
            .find(|rec| rec["links"].as_array().unwrap().iter().any(|l| l == &cid))
        {
            assert_eq!(reply["kind"], wire::SHARE_KIND);
            assert_eq!(reply["sender"], dta);
            return (cid, reply.clone());
        }
        assert!(Instant::now() < deadline, "no answer to {cid}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_dtas_issue_proven_shares_and_publish_nothing_that_gives_the_server_secret() {
    let lib = plugin_library("milagro-plugin-dta");
    let none: Vec<String> = Vec::new();
    // Requesters first: the D-TAs' allowlists name them. The outsider also
    // has a probe plugin, to read envelopes on IPFS as anyone can.
    let r = node("requester", &[], &lib, &dta_config(&none, &none, ""));
    let outsider = Node::start(
        NodeConfig::new("outsider")
            .section(&ipfs_section(&peers(&[&r])))
            .plugin(PluginEntry::new("dta", &lib, &dta_config(&none, &none, "")))
            .plugin(probe("o", &[])),
    );
    let prober = Node::start(
        NodeConfig::new("prober")
            .section(&ipfs_section(&peers(&[&r, &outsider])))
            .plugin(probe("p", &[wire::SHARE_KIND])),
    );
    let (rid, oid, pid) = (r.id(), outsider.id(), prober.id());
    let only_r = vec![rid.clone()];
    // D1 gives the outsider client shares and the prober both kinds; D2
    // gives the outsider client shares; D3 gives it nothing. Each node
    // dials every earlier one, so that pubsub reaches every inbox.
    let d1 = node(
        "d1",
        &peers(&[&r, &outsider, &prober]),
        &lib,
        &dta_config(
            &[rid.clone(), oid.clone(), pid.clone()],
            &[rid.clone(), pid.clone()],
            "",
        ),
    );
    let d2 = node(
        "d2",
        &peers(&[&r, &outsider, &prober, &d1]),
        &lib,
        &dta_config(&[rid.clone(), oid.clone()], &only_r, ""),
    );
    let d3 = node(
        "d3",
        &peers(&[&r, &outsider, &prober, &d1, &d2]),
        &lib,
        &dta_config(&only_r, &only_r, ""),
    );
    let bad = node(
        "bad",
        &peers(&[&r, &d1]),
        &test_faults_library("milagro-plugin-dta"),
        &dta_config(&only_r, &only_r, ", test_fault = \"wrong-share\""),
    );
    let dtas = [d1.id(), d2.id(), d3.id()];
    let bad_id = bad.id();
    let mut visible = String::new(); // what the outsider can see

    // Public keys are 48-byte compressed G1 points, distinct per D-TA,
    // announced in a signed dta/public-key envelope on IPFS that anyone can
    // audit, the same one every time.
    let mut envelope_cids: Vec<String> = Vec::new();
    let publics: Vec<String> = [&d1, &d2, &d3]
        .iter()
        .map(|d| {
            let answer = d.get_auth("/v1/dta/public-share").1;
            visible.push_str(&answer);
            let v = json(&answer);
            assert_eq!(v["node_id"], d.id());
            assert!(v.get("public_share").is_none(), "{v}");
            let cid = v["envelope_cid"].as_str().unwrap().to_string();
            let again = json(&d.get_auth("/v1/dta/public-share").1);
            assert_eq!(again["envelope_cid"], cid);
            let audit = json(&r.get_auth(&format!("/v1/audit/{cid}")).1);
            assert_eq!(audit["ok"], true, "{audit}");
            assert_eq!(audit["envelopes"][0]["kind"], wire::PUBLIC_KEY_KIND);
            assert_eq!(audit["envelopes"][0]["sender"], d.id());
            let record: wire::PublicKeyRecord =
                serde_json::from_slice(&clear_body(&outsider, &cid)).unwrap();
            assert_eq!(record.public_key, v["public_key"]);
            envelope_cids.push(cid);
            v["public_key"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(publics.iter().all(|p| p.len() == 96));
    assert!(publics.iter().all(|p| g1_from_hex(p).is_ok()));
    assert!(publics[0] != publics[1] && publics[1] != publics[2]);

    // 1. Combined client and server secrets log in with the right PIN only.
    let id = "alice@example.org";
    let started = Instant::now();
    let (c, answer) = secret_and_answer(&r, "client", Some(id), &dtas);
    println!(
        "first client secret from 3 D-TAs in {:?}",
        started.elapsed()
    );
    for cid in json(&answer)["envelope_cids"].as_array().unwrap() {
        envelope_cids.push(cid.as_str().unwrap().to_string());
    }
    let s = server_secret(&r, &dtas);
    assert_eq!(c.len(), 96, "48-byte compressed G1");
    assert_eq!(s.len(), 192, "96-byte compressed G2");
    assert!(logs_in(id, &c, 1234, 1234, &s));
    assert!(!logs_in(id, &c, 1234, 1235, &s));
    assert!(!logs_in("bob@example.org", &c, 1234, 1234, &s));
    // With two of the three shares the login fails, either way round.
    let c2 = client_secret(&r, id, &dtas[..2]);
    let s2 = server_secret(&r, &dtas[1..]);
    assert!(!logs_in(id, &c2, 1234, 1234, &s));
    assert!(!logs_in(id, &c, 1234, 1234, &s2));
    // Asking again gives the same secret (the shares are deterministic).
    assert_eq!(client_secret(&r, id, &dtas), c);
    // The check route of the old design (a PIN oracle) is gone.
    let gone = r.call("POST", "/v1/dta/check", Some(b"{}"));
    assert_eq!(gone.0, 404, "{}", gone.1);

    // 2a. Not in D3's allowlist: refused, and the error names D3 only.
    let refused = secrets(&outsider, "client", Some(id), &dtas);
    visible.push_str(&refused.1);
    assert_eq!(refused.0, 403, "{}", refused.1);
    let msg = error_message(&refused);
    assert!(msg.contains(&dtas[2]) && msg.contains("refused"), "{msg}");
    assert!(!msg.contains(&dtas[0]) && !msg.contains(&dtas[1]), "{msg}");
    // ... and nobody gives it a server secret.
    let refused = secrets(&outsider, "server", None, &dtas);
    visible.push_str(&refused.1);
    assert_eq!(refused.0, 403, "{}", refused.1);
    let msg = error_message(&refused);
    assert!(dtas.iter().all(|d| msg.contains(d)), "{msg}");
    // It can still get client shares from D1 and D2.
    let (_, answer) = secret_and_answer(&outsider, "client", Some(id), &dtas[..2]);
    visible.push_str(&answer);
    for cid in json(&answer)["envelope_cids"].as_array().unwrap() {
        envelope_cids.push(cid.as_str().unwrap().to_string());
    }

    // 3. A D-TA answering wrong shares (s+1) is caught and named: the
    // client share by its DLEQ proof, the server share by the pairing.
    for (kind, mpin_id, needle) in [
        ("client", Some(id), "failed its DLEQ proof"),
        ("server", None, "failed its pairing check"),
    ] {
        let r = secrets(&r, kind, mpin_id, &[dtas[0].clone(), bad_id.clone()]);
        assert_eq!(r.0, 422, "{}", r.1);
        let msg = error_message(&r);
        assert!(msg.contains(&bad_id) && msg.contains(needle), "{msg}");
        assert!(!msg.contains(&dtas[0]), "{msg}");
    }

    // 4. Batch: 256 IDs in one request to each of the 3 D-TAs.
    let ids: Vec<String> = (0..wire::MAX_MPIN_IDS)
        .map(|i| format!("batch-user-{i}@example.org"))
        .collect();
    let started = Instant::now();
    let body = j!({"kind": "client", "mpin_ids": ids, "authorities": dtas});
    let batch = r.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()));
    let took = started.elapsed();
    assert_eq!(batch.0, 200, "{}\n{}", batch.1, r.log());
    let batch = json(&batch.1);
    println!(
        "{} client secrets from 3 D-TAs in one request each: {took:?} (debug build)",
        ids.len()
    );
    let list = batch["secrets"].as_array().unwrap();
    assert_eq!(list.len(), ids.len());
    assert_eq!(
        batch["envelope_cids"].as_array().unwrap().len(),
        6,
        "one request and one reply per D-TA"
    );
    for (i, item) in list.iter().enumerate() {
        assert_eq!(item["mpin_id"], ids[i]);
    }
    for i in [0, 137, ids.len() - 1] {
        let secret = list[i]["secret"].as_str().unwrap();
        assert_eq!(
            secret,
            client_secret(&r, &ids[i], &dtas),
            "batch and single agree"
        );
        assert!(logs_in(&ids[i], secret, 4321, 4321, &s));
    }
    let too_many: Vec<String> = (0..=wire::MAX_MPIN_IDS).map(|i| i.to_string()).collect();
    for (body, needle) in [
        (
            j!({"kind": "client", "mpin_ids": too_many, "authorities": dtas}),
            "1 to 256",
        ),
        (
            j!({"kind": "client", "mpin_ids": [], "authorities": dtas}),
            "1 to 256",
        ),
        (
            j!({"kind": "client", "mpin_ids": ["a", "a"], "authorities": dtas}),
            "listed twice",
        ),
        (
            j!({"kind": "client", "mpin_id": "a", "mpin_ids": ["b"], "authorities": dtas}),
            "exactly one",
        ),
        (
            j!({"kind": "server", "mpin_id": "a", "authorities": dtas}),
            "not per M-Pin ID",
        ),
    ] {
        let resp = r.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()));
        assert_eq!(resp.0, 400, "{}", resp.1);
        assert!(error_message(&resp).contains(needle), "{}", resp.1);
    }

    // The probe node, allowed by D1 for both kinds, reads D1's sealed
    // answers; py_ecc verifies the proofs and the server share.
    let probe_ids = ["alice@example.org", "bob@example.org"];
    let request = wire::ShareRequest::client(probe_ids.iter().map(|s| s.to_string()).collect());
    let (request_cid, reply) =
        probe_request(&prober, &dtas[0], &serde_json::to_string(&request).unwrap());
    let clear: wire::ShareReply = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(clear.status, wire::ReplyStatus::Issued);
    assert_eq!(clear.public_key.as_deref(), Some(publics[0].as_str()));
    let sealed = wire::SealedShares::parse(reply["secret"].as_str().unwrap().as_bytes()).unwrap();
    let context = wire::proof_context(&request_cid);
    let mut client_items = Vec::new();
    for (item, want) in sealed.client_shares.iter().zip(probe_ids) {
        assert_eq!(item.mpin_id, want);
        let share = g1_from_hex(&item.share).unwrap();
        let proof = milagro_mpin::DleqProof::from_hex(&item.proof).unwrap();
        let p1 = g1_from_hex(&publics[0]).unwrap();
        assert!(proof.verify(&p1, want.as_bytes(), &share, &context));
        // ... for this request only.
        assert!(!proof.verify(&p1, want.as_bytes(), &share, &wire::proof_context(&rid)));
        client_items.push(
            j!({"public_key": publics[0], "mpin_id": want, "share": item.share,
            "proof": item.proof, "context_hex": hex::encode(&context)}),
        );
    }
    assert_eq!(client_items.len(), 2);
    let (_, reply) = probe_request(
        &prober,
        &dtas[0],
        &serde_json::to_string(&wire::ShareRequest::server()).unwrap(),
    );
    let sealed = wire::SealedShares::parse(reply["secret"].as_str().unwrap().as_bytes()).unwrap();
    let s1 = sealed.server_share.clone().unwrap();
    assert!(
        !reply["body"].as_str().unwrap().contains(&s1),
        "the server share is sealed only"
    );

    // Hostile requests get a refusal with a reason, no share.
    for (sealed, reason) in [
        (
            r#"{"v":1,"kind":"server"}"#.to_string(),
            "unsupported version 1",
        ),
        (
            r#"{"v":1,"kind":"client","mpin_id":"a"}"#.to_string(),
            "malformed",
        ),
        ("not json".to_string(), "malformed"),
        (
            serde_json::to_string(&wire::ShareRequest::client(
                (0..=256).map(|i| i.to_string()).collect(),
            ))
            .unwrap(),
            "1 to 256",
        ),
        (
            serde_json::to_string(&wire::ShareRequest::client(vec![
                "x".repeat(wire::MAX_MPIN_ID_LEN + 1),
            ]))
            .unwrap(),
            "longer than",
        ),
    ] {
        let (_, reply) = probe_request(&prober, &dtas[0], &sealed);
        let clear: wire::ShareReply =
            serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        assert_eq!(clear.status, wire::ReplyStatus::Refused, "{sealed}");
        assert!(
            clear.reason.as_deref().unwrap_or("").contains(reason),
            "{sealed}: {clear:?}"
        );
        assert!(
            reply["secret"].is_null() || reply["secret"] == "",
            "{reply}"
        );
    }
    // The prober is not in D2's server_allow.
    let (_, reply) = probe_request(
        &prober,
        &dtas[1],
        &serde_json::to_string(&wire::ShareRequest::server()).unwrap(),
    );
    let clear: wire::ShareReply = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(clear.status, wire::ReplyStatus::Refused);

    // Issuance records: who, kind, which IDs, when, outcome; never a secret.
    for d in [&d1, &d2, &d3] {
        let records = d.get_auth("/v1/dta/issuances?limit=1000").1;
        visible.push_str(&records);
        let records = json(&records);
        for rec in records["issuances"].as_array().unwrap() {
            for key in ["request_cid", "reply_cid"] {
                if let Some(cid) = rec[key].as_str() {
                    envelope_cids.push(cid.to_string());
                }
            }
        }
    }
    let records = json(&d3.get_auth("/v1/dta/issuances?limit=1000").1);
    let list = records["issuances"].as_array().unwrap();
    assert!(list.iter().any(|i| i["requester"] == rid
        && i["kind"] == "client"
        && i["mpin_ids"] == j!([id])
        && i["outcome"] == "issued"));
    assert!(
        list.iter()
            .any(|i| i["mpin_ids"].as_array().unwrap().len() == 256)
    );
    assert!(
        list.iter()
            .any(|i| i["requester"] == oid && i["outcome"] == "refused")
    );
    assert!(list.iter().all(|i| i["time_unix_ms"].as_u64().unwrap() > 0));
    assert!(
        !records.to_string().contains(&c),
        "no secret in the records"
    );

    // 2. Every G2 value the outsider can see: REST answers, the clear body
    // of every envelope (fetched from IPFS), the log lines of every node.
    envelope_cids.sort();
    envelope_cids.dedup();
    let mut candidates: Vec<G2Affine> = g2_in_text(&visible);
    for cid in &envelope_cids {
        let body = clear_body(&outsider, cid);
        candidates.extend(g2_in_bytes(&body));
        candidates.extend(g2_in_text(&String::from_utf8_lossy(&body)));
    }
    for n in [&r, &outsider, &prober, &d1, &d2, &d3, &bad] {
        candidates.extend(g2_in_text(&n.log()));
    }
    println!(
        "G2 values visible to an outsider: {} (in {} envelopes, {} bytes of REST answers, 7 logs)",
        candidates.len(),
        envelope_cids.len(),
        visible.len()
    );
    let s_point = g2_from_hex(&s).unwrap();
    let sum = G2Affine::from(
        candidates
            .iter()
            .fold(G2Projective::identity(), |acc, p| acc + p),
    );
    assert!(
        candidates.iter().all(|p| *p != s_point),
        "S itself is visible"
    );
    assert_ne!(sum, s_point, "the visible G2 values add up to S");
    assert!(candidates.is_empty(), "no G2 value is visible at all");
    // The outsider's offline PIN test against a stolen token has nothing to
    // test against: with S the right PIN shows, with anything visible not.
    let h = hash_id(id.as_bytes());
    let token = client::Token::from_client_secret(&g1_from_hex(&c).unwrap(), id.as_bytes(), 1234);
    let t = g1_from_hex(&hex::encode(token.to_bytes().as_slice())).unwrap();
    let guess = G1Affine::from(
        G1Projective::from(t) + G1Projective::from(h) * milagro_mpin::Scalar::from(1234u64),
    );
    let q = G2Affine::generator();
    assert_eq!(
        pairing(&guess, &q),
        pairing(&h, &s_point),
        "with S, the PIN test works"
    );
    for x in candidates.iter().chain([&sum]) {
        assert_ne!(pairing(&guess, &q), pairing(&h, x));
    }
    for n in [&d1, &d2, &d3] {
        assert!(
            !n.log().contains(&s1) && !n.log().contains(&c[..40]),
            "no secret in the logs"
        );
    }

    // py_ecc: the proofs, the server share, the test vector of docs/dta.md,
    // and the visible values against S.
    let vector = j!({
        "s": "1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f",
        "k": "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e",
        "mpin_id": "alice@example.org",
        "context_hex": hex::encode(wire::proof_context("bafyreitestvectorrequest")),
        "public_key": "aac58e6b61b84e4daece1cb3396e5d25e09f1011eec066b1a173de725f59053bb31f46d4e4c0da4f5b90ff529eb5fba1",
        "share": "983dc52a3c91743a70fce0270ce45127f977cc9c3ac880e1de32f7543ff4f91bdd82a9bd28bebb9ad80139e57c47f426",
        "proof": "1f6538b4ed3fe0135273d7e6a3d77b3edd8f62c3b90de7ce1581cdb2be914f0d44341cba8509dbc99853915bca5855c54434afb1e4c36e7514100de7b4e1cee9",
    });
    let counts = py_ecc_check(&j!({
        "vectors": [vector],
        "client_shares": client_items,
        "server_shares": [{"public_key": publics[0], "server_share": s1}],
        "not_server_secret": {"server_secret": s,
            "candidates": candidates.iter().map(g2_to_hex).collect::<Vec<_>>()},
    }));
    assert_eq!(counts["vectors"], 1, "{counts}");
    assert_eq!(counts["client_shares"], 2, "{counts}");
    assert_eq!(counts["server_shares"], 1, "{counts}");
    // ... and it does fail: a forged server share, a proof of another request.
    let forged = g2_to_hex(&G2Affine::from(
        G2Projective::from(g2_from_hex(&s1).unwrap()) + G2Affine::generator(),
    ));
    py_ecc_refuses(&j!({"server_shares": [{"public_key": publics[0], "server_share": forged}]}));
    let mut other_request = client_items[0].clone();
    other_request["context_hex"] = j!(hex::encode(wire::proof_context("another-request")));
    py_ecc_refuses(&j!({"client_shares": [other_request]}));

    // 5. Bad input: 4xx with a clear message.
    let cases: [(Value, u16, &str); 7] = [
        (
            j!({"kind": "client", "mpin_id": "", "authorities": dtas}),
            400,
            "an mpin_id must be 1 to",
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
}

/// A well-formed node ID that no node has: `id` with one character of its
/// digest changed.
fn unknown_node_id(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

/// `"self"` in the allow lists: a single node is its own D-TA, for client
/// and server secrets (the quick start's demo); another node is not let in
/// by `"self"`.
#[test]
fn a_node_allowed_as_self_is_its_own_dta() {
    let lib = plugin_library("milagro-plugin-dta");
    let selfish = dta_config(&["self".into()], &["self".into()], "");
    let a = node("a", &[], &lib, &selfish);
    let other = node("other", &peers(&[&a]), &lib, &dta_config(&[], &[], ""));
    let me = [a.id()];
    let c = client_secret(&a, "carol@example.org", &me);
    let s = server_secret(&a, &me);
    assert!(logs_in("carol@example.org", &c, 2468, 2468, &s));
    let refused = secrets(&other, "client", Some("carol@example.org"), &me);
    assert_eq!(refused.0, 403, "{}", refused.1);
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
/// validator accepts (as in host.rs); the old check route is not.
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
        ("/v1/dta/issuances", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["paths"]["/v1/dta/check"].is_null());
    milagro_tests::assert_valid_openapi(node.dir.path(), &body);
}
