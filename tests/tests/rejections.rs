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

//! Envelopes a node must refuse, each with a specific error and nothing
//! processed: crafted with the protocol crate by identities the test owns,
//! whose documents it publishes through the node's IPFS.

use std::{thread, time::Duration};

use ipld_core::ipld::Ipld;
use milagro_tests::{
    Node, NodeConfig, PluginEntry,
    craft::{
        deliver, encode, fetch_identity, link, now_ms, party, processed, publish, resign, sealed,
        to_map, wait_processed,
    },
    json, plugin_library,
};

/// (what, block bytes, `milagro-cid` header, expected status, message fragment)
type Case = (&'static str, Vec<u8>, Option<String>, u16, &'static str);

#[test]
fn forged_and_malformed_envelopes_are_refused_with_specific_errors() {
    let b = Node::start(
        NodeConfig::new("b")
            .http("max_body_bytes = 8388608")
            .plugin(PluginEntry::new(
                "probe",
                &plugin_library("milagro-test-probe"),
                "{ label = \"b\", consumes = [\"test/note\"] }",
            )),
    );
    let b_doc = fetch_identity(&b, &b.id());
    let (x, y, z) = (party("x"), party("y"), party("z-unpublished"));
    for p in [&x, &y] {
        assert_eq!(publish(&b, p.doc.block().bytes()), p.doc.id().to_string());
    }

    // Baseline: a genuine envelope from X is accepted and processed.
    let good = sealed(&x, &[&b_doc], "good", now_ms());
    let r = deliver(&b, &good, None);
    assert_eq!(r.0, 202, "{}", r.1);
    wait_processed(&b, 1);

    let mut cases: Vec<Case> = Vec::new();

    // 1. Tampered block: one byte changed, delivered under its original CID.
    let original = sealed(&x, &[&b_doc], "tamper", now_ms());
    let cid = milagro_proto::block::cid_of(&original).to_string();
    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    cases.push(("tampered block", tampered, Some(cid), 422, "hash mismatch"));

    // 2. Bad signature.
    let mut map = to_map(&sealed(&x, &[&b_doc], "badsig", now_ms()));
    if let Some(Ipld::Bytes(sig)) = map.get_mut("sig") {
        sig[10] ^= 0x01;
    }
    cases.push(("bad signature", encode(&map), None, 422, "signature"));

    // 3. Sender identity that does not resolve (never published).
    cases.push((
        "unresolvable sender",
        sealed(&z, &[&b_doc], "z", now_ms()),
        None,
        422,
        "sender identity",
    ));

    // 4. Sender identity that does not verify: X's document with its name
    //    changed, published under its new CID.
    let mut doc_map = to_map(x.doc.block().bytes());
    doc_map.insert("name".into(), Ipld::String("mallory".into()));
    let forged_doc = publish(&b, &encode(&doc_map));
    let mut map = to_map(&sealed(&x, &[&b_doc], "forged-sender", now_ms()));
    map.insert("sender".into(), link(&forged_doc));
    cases.push((
        "sender identity does not verify",
        encode(&map),
        None,
        422,
        "sender identity",
    ));

    // 5. Re-signed by another identity: Y takes X's envelope as its own.
    let mut map = to_map(&sealed(&x, &[&b_doc], "resigned", now_ms()));
    map.insert("sender".into(), link(&y.doc.id().to_string()));
    cases.push((
        "re-signed by another identity",
        resign(map, &y.signer),
        None,
        422,
        "unwrap failed",
    ));

    // 6. Re-addressed: X's envelope to {B, Y} with Y replaced by Z.
    let mut map = to_map(&sealed(&x, &[&b_doc, &y.doc], "readdressed", now_ms()));
    if let Some(Ipld::List(recipients)) = map.get_mut("recipients") {
        recipients[1] = link(&z.doc.id().to_string());
    }
    cases.push((
        "re-addressed",
        resign(map, &x.signer),
        None,
        422,
        "unwrap failed",
    ));

    // 7. Replayed message id: the genuine envelope's id in a new envelope.
    let mut map = to_map(&good);
    map.insert("body".into(), Ipld::Bytes(b"replayed".to_vec()));
    cases.push((
        "replayed message id",
        resign(map, &x.signer),
        None,
        409,
        "already used",
    ));

    // 8. Time outside the skew window.
    let stale = sealed(&x, &[&b_doc], "stale", now_ms() - 2 * 60 * 60 * 1000);
    cases.push(("timestamp outside skew", stale, None, 422, "clock"));

    // 9. Oversized body.
    let big = "x".repeat(5 * 1024 * 1024);
    cases.push((
        "oversized",
        sealed(&x, &[&b_doc], &big, now_ms()),
        None,
        413,
        "exceeds",
    ));

    // 10. Unknown version.
    let mut map = to_map(&sealed(&x, &[&b_doc], "v2", now_ms()));
    map.insert("version".into(), Ipld::Integer(2));
    cases.push((
        "unknown version",
        resign(map, &x.signer),
        None,
        422,
        "version",
    ));

    // 11. Truncated and garbage CBOR.
    let whole = sealed(&x, &[&b_doc], "truncated", now_ms());
    cases.push((
        "truncated",
        whole[..whole.len() / 2].to_vec(),
        None,
        422,
        "truncated",
    ));
    cases.push((
        "garbage",
        b"\xff\x00garbage-not-cbor".to_vec(),
        None,
        422,
        "CBOR",
    ));

    for (name, bytes, cid, status, fragment) in &cases {
        let r = deliver(&b, bytes, cid.as_deref());
        assert_eq!(r.0, *status, "{name}: {}", r.1);
        let message = json(&r.1)["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(fragment),
            "{name}: {message:?} lacks {fragment:?}"
        );
        println!("refused {name}: {} {message}", r.0);
    }
    thread::sleep(Duration::from_millis(500));
    assert_eq!(processed(&b), 1, "nothing refused was processed");
    assert_eq!(
        b.get("/v1/status").0,
        200,
        "node healthy after the refusals"
    );
}
