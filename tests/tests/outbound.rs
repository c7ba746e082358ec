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

//! Issue 17, item 4: outbound HTTP deliveries have deadlines and do not go
//! where a stranger's identity document points them. Real node processes
//! in `[transport] mode = "http"`; the attacker is an identity the test
//! crafts and publishes, advertising the endpoint of the attack.
//!
//! - A tarpit (accepts TCP, never answers): deliveries to it fail within
//!   their deadline, while deliveries to a legitimate node sent at the
//!   same time go through at once; `milagro_outbound_refused_total
//!   {reason="timeout"}` counts the cut attempts.
//! - An endpoint on a loopback service: a node whose policy allows only
//!   public addresses never connects to it (the service sees no
//!   connection), the send is refused naming the address class and the
//!   setting, and `milagro_outbound_refused_total{reason="address"}`
//!   counts it; the nodes of the test allow 127.0.0.1 explicitly.

use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    Node, NodeConfig, PluginEntry, counter,
    craft::{Party, party_with, publish},
    json, plugin_library,
};
use serde_json::json as j;

/// Deliveries give up after 4 s; each attempt is cut at 1.5 s.
const DELIVERY_TIMEOUT_MS: u64 = 4_000;

fn node(name: &str, allowed: &str, bootstrap: &[String]) -> NodeConfig {
    NodeConfig::new(name)
        .section(&format!(
            "[transport]\nmode = \"http\"\ndelivery_timeout_ms = {DELIVERY_TIMEOUT_MS}\n\
             http_connect_timeout_ms = 1000\nhttp_request_timeout_ms = 1500\n{allowed}\n\
             [ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n"
        ))
        .plugin(PluginEntry::new(
            "probe",
            &plugin_library("milagro-test-probe"),
            "{ label = \"p\", consumes = [\"test/note\"] }",
        ))
}

const ALLOW_LOOPBACK: &str = "allowed_endpoints = [\"127.0.0.1\"]";

/// An identity the test holds the keys of, advertising `endpoint`,
/// published through `via`'s IPFS so that `via` can resolve it.
fn attacker(via: &Node, name: &str, endpoint: &str) -> Party {
    let party = party_with(name, |claim| claim.http = vec![endpoint.to_string()]);
    assert_eq!(
        publish(via, party.doc.block().bytes()),
        party.doc.id().to_string()
    );
    party
}

/// Sends a `test/note` through the node's probe plugin: (status, body, time).
fn send(from: &Node, to: &str, body: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let request = j!({"kind": "test/note", "recipients": [to], "body": body});
    let (status, text) = from.call(
        "POST",
        "/v1/probe/send",
        Some(request.to_string().as_bytes()),
    );
    (status, text, started.elapsed())
}

/// A TCP service on 127.0.0.1 that accepts connections and never answers
/// (holding them open), counting them; runs until the test ends.
fn tarpit() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(1000).flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

fn processed_bodies(node: &Node) -> Vec<String> {
    json(&node.get_auth("/v1/probe/received").1)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["body"].as_str().map(String::from))
        .collect()
}

#[test]
fn a_tarpit_endpoint_costs_one_deadline_and_does_not_hold_up_other_deliveries() {
    let legit = Node::start(node("legit", ALLOW_LOOPBACK, &[]));
    let victim = Node::start(node("victim", ALLOW_LOOPBACK, &legit.ipfs_addresses()));
    let (port, accepted) = tarpit();
    let attacker = attacker(&victim, "tarpit", &format!("http://127.0.0.1:{port}"));
    let attacker_id = attacker.doc.id().to_string();
    let legit_id = legit.id();

    // Four deliveries to the tarpit at once, and meanwhile four to the
    // legitimate node, one after the other.
    let victim = Arc::new(victim);
    let tarpitted: Vec<_> = (0..4)
        .map(|i| {
            let victim = Arc::clone(&victim);
            let to = attacker_id.clone();
            thread::spawn(move || send(&victim, &to, &format!("to the tarpit {i}")))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let mut legit_times = Vec::new();
    for i in 0..4 {
        let (status, text, took) = send(&victim, &legit_id, &format!("legit {i}"));
        assert_eq!(status, 200, "{text}\n{}", victim.log());
        legit_times.push(took);
    }
    let mut tarpit_times = Vec::new();
    for t in tarpitted {
        let (status, text, took) = t.join().unwrap();
        assert_ne!(status, 200, "{text}");
        assert!(
            text.contains("no answer within"),
            "the reason is the deadline: {text}"
        );
        tarpit_times.push(took);
    }
    eprintln!(
        "tarpit: {} connection(s) accepted and never answered; 4 deliveries to it failed after {tarpit_times:?} (delivery deadline {DELIVERY_TIMEOUT_MS} ms); 4 legit deliveries meanwhile took {legit_times:?}",
        accepted.load(Ordering::SeqCst)
    );
    assert!(
        accepted.load(Ordering::SeqCst) >= 4,
        "the tarpit was reached"
    );
    for took in &tarpit_times {
        assert!(
            *took < Duration::from_millis(DELIVERY_TIMEOUT_MS + 3_000),
            "a tarpit delivery outlived its deadline: {took:?}"
        );
    }
    for took in &legit_times {
        assert!(
            *took < Duration::from_secs(3),
            "a legit delivery was held up: {took:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bodies = processed_bodies(&legit);
        if (0..4).all(|i| bodies.contains(&format!("legit {i}"))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "legit envelopes not processed: {bodies:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let cut = counter(
        &victim,
        "milagro_outbound_refused_total",
        "reason=\"timeout\"",
    );
    eprintln!("milagro_outbound_refused_total{{reason=\"timeout\"}} = {cut}");
    assert!(cut >= 4, "{cut}");
    // The node still answers and has nothing parked: a further send to the
    // legitimate node is immediate.
    let (status, text, took) = send(&victim, &legit_id, "after the tarpit");
    assert_eq!(status, 200, "{text}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn an_endpoint_on_a_loopback_service_is_never_connected_to_unless_allowed() {
    let legit = Node::start(node("legit", ALLOW_LOOPBACK, &[]));
    // The default policy: public addresses only.
    let strict = Node::start(node("strict", "", &legit.ipfs_addresses()));
    let (port, connections) = tarpit();
    let literal = attacker(&strict, "literal", &format!("http://127.0.0.1:{port}"));
    let named = attacker(&strict, "named", &format!("http://localhost:{port}"));
    let mapped = attacker(
        &strict,
        "mapped",
        &format!("http://[::ffff:127.0.0.1]:{port}"),
    );
    let mut refused = 0;
    for who in [&literal, &named, &mapped] {
        let (status, text, took) = send(&strict, &who.doc.id().to_string(), "probe the loopback");
        eprintln!(
            "strict -> {}: {status} after {took:?}: {text}",
            who.doc.name()
        );
        assert_ne!(status, 200, "{text}");
        assert!(
            took < Duration::from_secs(2),
            "a refusal is not retried: {took:?}"
        );
        assert!(
            text.contains("loopback") && text.contains("allowed_endpoints"),
            "the refusal names the class and the setting: {text}"
        );
        refused += 1;
    }
    // The legitimate node's own endpoint is loopback too: refused alike.
    let (status, text, _) = send(&strict, &legit.id(), "to legit");
    assert_ne!(status, 200, "{text}");
    assert!(text.contains("loopback"), "{text}");
    refused += 1;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the loopback service was connected to"
    );
    let counted = counter(
        &strict,
        "milagro_outbound_refused_total",
        "reason=\"address\"",
    );
    eprintln!(
        "{refused} sends refused by the address policy, 0 connections to the loopback service, milagro_outbound_refused_total{{reason=\"address\"}} = {counted}"
    );
    assert!(counted >= refused, "{counted} < {refused}");

    // With 127.0.0.1 allowed, the same kind of endpoint is reached (and cut
    // at its deadline, since that service never answers).
    let open = attacker(&legit, "allowed", &format!("http://127.0.0.1:{port}"));
    let (status, text, _) = send(&legit, &open.doc.id().to_string(), "allowed");
    assert_ne!(status, 200, "{text}");
    assert!(
        connections.load(Ordering::SeqCst) >= 1,
        "allowed, but not reached"
    );
}
