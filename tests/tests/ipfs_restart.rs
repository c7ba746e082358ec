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

//! A node killed with SIGKILL and restarted on the same repo (same libp2p
//! identity) exchanges blocks by bitswap with the peers it had before, both
//! ways. Regression test for pollable-map's `StreamMap::remove` leaving the
//! key behind, which stopped rust-ipfs' bitswap from ever opening a session
//! with a peer that reconnected (see docs/architecture.md, "IPFS").

use std::time::{Duration, Instant};

use milagro_tests::{Node, NodeConfig, PluginEntry, plugin_library};

fn config(name: &str, bootstrap: &[String]) -> NodeConfig {
    NodeConfig::new(name)
        .section(&format!(
            "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n"
        ))
        .plugin(PluginEntry::new(
            "probe",
            &plugin_library("milagro-test-probe"),
            "{ label = \"p\" }",
        ))
}

/// `from` fetches and verifies the identity document of `id` over IPFS
/// within a few seconds.
fn assert_resolves(from: &Node, id: &str, what: &str) {
    let started = Instant::now();
    let (status, body) = from.get_auth(&format!("/v1/probe/resolve/{id}"));
    let took = started.elapsed();
    assert_eq!(status, 200, "{what}: {body}");
    assert!(took < Duration::from_secs(3), "{what} took {took:?}");
}

#[test]
fn killed_node_and_its_old_peers_fetch_each_others_blocks_after_restart() {
    let b = Node::start(config("b", &[]));
    let c = Node::start(config("c", &b.ipfs_addresses()));
    let mut a = Node::start(config(
        "a",
        &[b.ipfs_addresses(), c.ipfs_addresses()].concat(),
    ));
    let (a_id, b_id, c_id) = (a.id(), b.id(), c.id());

    a.kill();
    a.restart();

    assert_resolves(&a, &b_id, "restarted a fetching from b");
    assert_resolves(&a, &c_id, "restarted a fetching from c");
    assert_resolves(&b, &a_id, "b fetching from restarted a");
    assert_resolves(&c, &a_id, "c fetching from restarted a");
}
