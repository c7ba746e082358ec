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

//! Milagro nodes that were told of no other Milagro node: each one's only
//! bootstrap peer is a real Kubo DHT server (`milagro_tests::kubo`), and they
//! find each other's identities, blocks and addresses through the DHT
//! (`[ipfs] routing = "lan-dht"`, Kubo's DHT on loopback). A custody order
//! and its redemption, and D-TA requests, run between them.

use std::{
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    Node, NodeConfig, PluginEntry,
    custody::{Role, dht_ipfs_section, dht_node_config, order_ok, redeem, wait_complete},
    json,
    kubo::{Kubo, KuboRouting},
    plugin_library,
};
use serde_json::json as j;

/// How long a node may take to find another through the DHT; provider
/// records are published in the background after the node starts.
const RESOLVE_WITHIN: Duration = Duration::from_secs(60);
const REPLY_TIMEOUT_MS: u64 = 30_000;

/// Waits (bounded) until `node` resolves the identity `id` by its CID alone.
fn resolves(node: &Node, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = node.get(&format!("/v1/identity/{id}"));
        if status == 200 {
            assert_eq!(json(&body)["id"], id, "the document of {id}: {body}");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RESOLVE_WITHIN,
            "{} did not resolve {id} within {RESOLVE_WITHIN:?}: {status} {body}\n{}",
            node.id(),
            node.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Acceptance 1: two nodes whose only bootstrap peer is a Kubo DHT server
/// resolve each other's identities by ID and run a custody order and its
/// redemption between them.
#[test]
fn two_nodes_that_know_only_a_kubo_dht_server_run_a_custody_order() {
    let kubo = Kubo::start(KuboRouting::DhtServer);
    let principal = Node::start(dht_node_config(
        "principal",
        &[Role::Principal, Role::Fiduciary],
        kubo.address(),
        REPLY_TIMEOUT_MS,
    ));
    let beneficiary = Node::start(dht_node_config(
        "beneficiary",
        &[Role::Fiduciary, Role::Beneficiary],
        kubo.address(),
        REPLY_TIMEOUT_MS,
    ));
    let (p, b) = (principal.id(), beneficiary.id());
    eprintln!(
        "principal resolves the beneficiary in {:?}",
        resolves(&principal, &b)
    );
    eprintln!(
        "beneficiary resolves the principal in {:?}",
        resolves(&beneficiary, &p)
    );

    let reference = "found-through-the-dht";
    let order = order_ok(
        &principal,
        &[p.clone(), b.clone()],
        Some(&b),
        "btc",
        reference,
    );
    assert_eq!(order["status"], "ready", "{order}");
    let (status, redeemed) = redeem(&principal, reference, None);
    assert_eq!(status, 202, "{redeemed}\n{}", principal.log());
    let wallet = wait_complete(&beneficiary, reference, RESOLVE_WITHIN);
    assert_eq!(wallet["address"], order["address"], "{wallet}");
}

fn dta(client_allow: &[String]) -> PluginEntry {
    PluginEntry::new(
        "dta",
        &plugin_library("milagro-plugin-dta"),
        &format!(
            "{{ client_allow = {client_allow:?}, server_allow = [], reply_timeout_ms = {REPLY_TIMEOUT_MS} }}"
        ),
    )
}

fn dta_node(name: &str, dht_server: &str, client_allow: &[String]) -> Node {
    Node::start(
        NodeConfig::new(name)
            .section(&dht_ipfs_section(dht_server))
            .plugin(dta(client_allow)),
    )
}

/// Acceptance 2: five nodes and three Kubo DHT servers in a chain, each node
/// knowing one Kubo node: every node resolves every other, and a D-TA
/// request from one to three D-TAs it was never configured with completes.
#[test]
fn five_nodes_on_a_chain_of_three_kubo_servers_find_each_other_and_run_dta_requests() {
    let mut chain: Vec<Kubo> = Vec::new();
    for _ in 0..3 {
        let mut kubo = Kubo::start(KuboRouting::DhtServer);
        if let Some(previous) = chain.last() {
            kubo.connect(previous.address());
        }
        chain.push(kubo);
    }
    let requester = dta_node("requester", chain[0].address(), &[]);
    let allowed = vec![requester.id()];
    let bystander = dta_node("bystander", chain[0].address(), &[]);
    let d1 = dta_node("d1", chain[1].address(), &allowed);
    let d2 = dta_node("d2", chain[2].address(), &allowed);
    let d3 = dta_node("d3", chain[2].address(), &allowed);
    let nodes = [&requester, &bystander, &d1, &d2, &d3];

    let mut times = Vec::new();
    for from in nodes {
        for to in nodes {
            if from.id() != to.id() {
                times.push(resolves(from, &to.id()));
            }
        }
    }
    times.sort();
    eprintln!(
        "20 resolutions through the DHT: median {:?}, slowest {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );

    let authorities = vec![d1.id(), d2.id(), d3.id()];
    let body = j!({"kind": "client", "mpin_id": "alice@example.org", "authorities": authorities});
    let (status, answer) =
        requester.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()));
    assert_eq!(status, 200, "{answer}\n{}", requester.log());
    let answer = json(&answer);
    assert_eq!(
        answer["authorities"].as_array().unwrap().len(),
        3,
        "{answer}"
    );
    assert!(
        answer["secret"].as_str().is_some_and(|s| !s.is_empty()),
        "{answer}"
    );
}
