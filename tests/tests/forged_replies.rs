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

//! Issue 17, acceptance 2: forged replies against the real plugins, a
//! D-TA request and a custody order, each made by real node processes.
//!
//! The attacker runs its own IPFS peer dialled to the victim (the
//! requester, the principal) and reads what any peer can: the deliveries on
//! the answering node's inbox topic, whose CIDs are the requests. It links
//! a reply of the awaited kind to the request, signed by an identity of its
//! own, and delivers it to the victim over HTTP. The answering node is
//! frozen (SIGSTOP) until the victim has processed the forgery, so the
//! forgery is there first every time; before the fix the victim's wait
//! took it (the D-TA request failed with 422, the order's wait ended
//! before the fiduciary answered). Now the wait names the node it expects:
//! the forgery is counted in `milagro_reply_refused_total` and the request
//! succeeds once the real node answers.

use std::{
    thread,
    time::{Duration, Instant},
};

use milagro_custody::{
    SecretScalar,
    keys::encode_public_key,
    messages::{Body, Commitment, Complaint, encode},
    pok::{PokContext, prove},
};
use milagro_proto::{Cid, EnvelopeDraft, VerifiedIdentity};
use milagro_tests::{
    Node, NodeConfig, PluginEntry,
    attacker::Peer,
    counter,
    craft::{self, Party, deliver, now_ms, party, seal_draft},
    custody::{Role, node_config, order, peers, redeem, wait_complete},
    json, plugin_library, wait_counter,
};
use serde_json::{Value, json as j};

/// How long the victims wait for each answer.
const REPLY_TIMEOUT_MS: u64 = 30_000;

const PROCESSED: &str = "milagro_inbox_processed_total";
const DONE: &str = "outcome=\"done\"";

fn done(node: &Node) -> u64 {
    counter(node, PROCESSED, DONE)
}

fn unexpected_sender(node: &Node) -> u64 {
    counter(
        node,
        "milagro_reply_refused_total",
        "reason=\"unexpected_sender\"",
    )
}

/// Delivers each forgery to `victim` over HTTP and waits (bounded) until
/// the victim has processed them all: indexed, so before any real answer.
fn deliver_processed(victim: &Node, forgeries: &[Vec<u8>]) {
    let before = done(victim);
    for bytes in forgeries {
        let r = deliver(victim, bytes, None);
        assert_eq!(r.0, 202, "{}", r.1);
    }
    wait_counter(
        victim,
        PROCESSED,
        DONE,
        before + forgeries.len() as u64,
        "the victim did not process the forged replies",
    );
}

/// The attacker's peer dialled to `victim`, and an identity of its own
/// that the peer serves (the victim fetches it from there).
fn attacker(victim: &Node) -> (Peer, Party) {
    let peer = Peer::start(victim);
    let stranger = party("stranger");
    assert_eq!(peer.serve(stranger.doc.block().bytes()), *stranger.doc.id());
    (peer, stranger)
}

/// A D-TA request for a client secret, frozen D-TA, forged `dta/share`.
#[test]
fn a_forged_share_does_not_fail_a_dta_request() {
    let lib = plugin_library("milagro-plugin-dta");
    let ipfs = |bootstrap: &[String]| {
        format!("[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n")
    };
    let dta = |allow: &[String]| {
        format!(
            "{{ client_allow = {allow:?}, server_allow = {allow:?}, reply_timeout_ms = {REPLY_TIMEOUT_MS} }}"
        )
    };
    let requester = Node::start(
        NodeConfig::new("requester")
            .section(&ipfs(&[]))
            .plugin(PluginEntry::new("dta", &lib, &dta(&[]))),
    );
    let authority = Node::start(
        NodeConfig::new("authority")
            .section(&ipfs(&requester.ipfs_addresses()))
            .plugin(PluginEntry::new("dta", &lib, &dta(&[requester.id()]))),
    );
    let authorities = [authority.id()];
    let secret = |id: &str| {
        let body = j!({"kind": "client", "mpin_id": id, "authorities": authorities});
        requester.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()))
    };
    let legit = secret("alice@example.org");
    assert_eq!(legit.0, 200, "{}\n{}", legit.1, requester.log());

    let (peer, stranger) = attacker(&requester);
    let requester_doc = peer.identity(&requester.id());
    let requester_id = *requester_doc.id();
    let inbox = peer.watch_inbox(&authority.id().parse().unwrap());
    let refused_before = unexpected_sender(&requester);
    authority.pause();
    let started = Instant::now();
    let answer = thread::scope(|s| {
        let request = s.spawn(|| secret("bob@example.org"));
        let request_cid = inbox.next("dta/request", &requester_id, Duration::from_secs(30));
        let forged = craft::envelope(
            &stranger,
            &requester_doc,
            "dta/share",
            &[request_cid],
            b"a forged share",
        );
        deliver_processed(&requester, &[forged]);
        authority.resume();
        request.join().unwrap()
    });
    let refused = unexpected_sender(&requester) - refused_before;
    println!(
        "D-TA request with a forged dta/share stored first: {} after {:?}, \
         {refused} forged reply ignored (milagro_reply_refused_total{{reason=\"unexpected_sender\"}})",
        answer.0,
        started.elapsed()
    );
    assert_eq!(answer.0, 200, "{}\n{}", answer.1, requester.log());
    let answer = json(&answer.1);
    assert_eq!(answer["mpin_id"], "bob@example.org", "{answer}");
    assert_eq!(refused, 1);
}

/// `body`, sealed by `from` to `to` as `kind`, linked to `order`.
fn forged<T: Body>(from: &Party, to: &VerifiedIdentity, order: Cid, body: &T) -> Vec<u8> {
    let secret = encode(body).unwrap();
    let links = [order];
    let draft = EnvelopeDraft {
        secret_body: Some(&secret),
        links: &links,
        ..EnvelopeDraft::new(T::KIND, now_ms())
    };
    seal_draft(from, &[to], &draft)
}

/// A 2-of-3 custody order, the first fiduciary frozen, a forged commitment
/// (with a valid proof for the stranger's own key) and a forged complaint
/// (naming a real fiduciary as a bad dealer), each of which used to end
/// the principal's wait on that fiduciary.
#[test]
fn a_forged_commitment_or_complaint_does_not_end_a_custody_order_wait() {
    let beneficiary = Node::start(node_config(
        "beneficiary",
        &[Role::Beneficiary],
        &[],
        REPLY_TIMEOUT_MS,
    ));
    let mut fiduciaries: Vec<Node> = Vec::new();
    for i in 1..=3 {
        let mut known = vec![&beneficiary];
        known.extend(fiduciaries.iter());
        fiduciaries.push(Node::start(node_config(
            &format!("fiduciary-{i}"),
            &[Role::Fiduciary],
            &peers(&known),
            REPLY_TIMEOUT_MS,
        )));
    }
    let mut known = vec![&beneficiary];
    known.extend(fiduciaries.iter());
    let principal = Node::start(
        node_config(
            "principal",
            &[Role::Principal],
            &peers(&known),
            REPLY_TIMEOUT_MS,
        )
        .http("handler_timeout_ms = 90000"),
    );
    let ids: Vec<String> = fiduciaries.iter().map(Node::id).collect();
    let body = |reference: &str| {
        j!({"fiduciaries": ids, "threshold": 2, "beneficiary": beneficiary.id(),
            "coin": "btc", "reference": reference})
    };
    let (status, o) = order(&principal, &body("before"));
    assert_eq!(status, 201, "{o}\n{}", principal.log());

    let (peer, stranger) = attacker(&principal);
    let principal_doc = peer.identity(&principal.id());
    let principal_id = *principal_doc.id();
    let inbox = peer.watch_inbox(&ids[0].parse().unwrap());
    let refused_before = unexpected_sender(&principal);
    fiduciaries[0].pause();
    let started = Instant::now();
    let (status, o) = thread::scope(|s| {
        let request = s.spawn(|| order(&principal, &body("forged")));
        let order_cid = inbox.next("custody/order", &principal_id, Duration::from_secs(30));
        let key = SecretScalar::random().unwrap();
        let context = PokContext {
            order_cid: &order_cid.to_bytes(),
            fiduciary: &stranger.doc.id().to_string(),
        };
        let commitment = Commitment {
            order_cid,
            share_public_key: encode_public_key(&key.public_key()),
            proof: prove(&key, &context).unwrap().to_bytes(),
            dealer_commitments: None,
        };
        let complaint = Complaint {
            order_cid,
            dealer: ids[1].clone(),
        };
        deliver_processed(
            &principal,
            &[
                forged(&stranger, &principal_doc, order_cid, &commitment),
                forged(&stranger, &principal_doc, order_cid, &complaint),
            ],
        );
        fiduciaries[0].resume();
        request.join().unwrap()
    });
    let refused = unexpected_sender(&principal) - refused_before;
    let log = principal.log();
    let refusals = log
        .lines()
        .filter(|l| l.contains("refused custody/") && l.contains(&stranger.doc.id().to_string()))
        .count();
    println!(
        "2-of-3 order with a forged commitment and complaint stored first: {status} after {:?}; \
         the waits ignored {refused} (milagro_reply_refused_total{{reason=\"unexpected_sender\"}}), \
         the principal refused {refusals} (not a fiduciary of the order)",
        started.elapsed()
    );
    assert_eq!(status, 201, "{o}\n{log}");
    let committed = |o: &Value| {
        o["fiduciaries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "committed")
    };
    assert!(committed(&o), "{o}");
    assert_eq!((refused, refusals), (2, 2), "{log}");

    // The wallet the forgeries tried to stop is released.
    let (status, r) = redeem(&principal, "forged", None);
    assert_eq!(status, 202, "{r}");
    let wallet = wait_complete(&beneficiary, "forged", Duration::from_secs(60));
    assert_eq!(wallet["address"], o["address"], "{wallet} vs {o}");
}
