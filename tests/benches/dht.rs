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

//! What the DHT costs (issue 19, docs/performance.md "Discovery"):
//!
//! - time to the first resolution of an unknown identity through the DHT:
//!   a fresh node whose only bootstrap peer is a Kubo DHT server fetches
//!   the identity document of a node it was never told of, 20 times (a new
//!   node each time), against the floor of the same fetch from a node it
//!   dialled directly (`routing = "none"`);
//! - the idle CPU and RSS of a node running the DHT against the same node
//!   without it, both bootstrapped to the same Kubo node.
//!
//! `cargo bench -p milagro-tests --bench dht --profile dev` after `cargo
//! build --workspace` (the nodes are the debug build the tests use; the dev
//! profile spares a second build of the workspace). Not in CI.

use std::time::{Duration, Instant};

use milagro_tests::{
    Node, NodeConfig,
    custody::dht_ipfs_section,
    kubo::{Kubo, KuboRouting},
};

const RUNS: usize = 20;
const IDLE: Duration = Duration::from_secs(30);

fn main() {
    let kubo = Kubo::start(KuboRouting::DhtServer);
    let publisher =
        Node::start(NodeConfig::new("publisher").section(&dht_ipfs_section(kubo.address())));
    let id = publisher.id();
    let direct = publisher.ipfs_addresses();

    let through_dht = median(RUNS, || {
        first_resolution(
            NodeConfig::new("seeker").section(&dht_ipfs_section(kubo.address())),
            &id,
        )
    });
    let floor = median(RUNS, || {
        first_resolution(
            NodeConfig::new("seeker").section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {direct:?}\n"
            )),
            &id,
        )
    });
    println!(
        "first resolution of an unknown identity, median of {RUNS}: through the DHT {through_dht:?}, \
         from a dialled peer (floor) {floor:?}: {:.2}x the floor",
        through_dht.as_secs_f64() / floor.as_secs_f64()
    );

    let without = Node::start(NodeConfig::new("idle-none").section(&format!(
        "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [\"{}\"]\n",
        kubo.address()
    )));
    let with = Node::start(NodeConfig::new("idle-dht").section(&dht_ipfs_section(kubo.address())));
    std::thread::sleep(Duration::from_secs(5));
    let (cpu_without, cpu_with) = (cpu_ticks(without.pid()), cpu_ticks(with.pid()));
    std::thread::sleep(IDLE);
    let cpu_without = cpu_ticks(without.pid()) - cpu_without;
    let cpu_with = cpu_ticks(with.pid()) - cpu_with;
    let ticks = 100.0; // USER_HZ on Linux
    println!(
        "idle over {IDLE:?}: CPU {:.2}% with the DHT, {:.2}% without (floor); RSS {} KiB with, {} KiB without: {:.2}x the floor",
        cpu_with as f64 / ticks / IDLE.as_secs_f64() * 100.0,
        cpu_without as f64 / ticks / IDLE.as_secs_f64() * 100.0,
        rss_kib(with.pid()),
        rss_kib(without.pid()),
        rss_kib(with.pid()) as f64 / rss_kib(without.pid()) as f64,
    );
}

/// Starts a node with `config` and times its first `GET /v1/identity/{id}`
/// that succeeds (the node's IPFS is up, and with a DHT joined, when it
/// answers at all).
fn first_resolution(config: NodeConfig, id: &str) -> Duration {
    let node = Node::start(config);
    let started = Instant::now();
    for _ in 0..100 {
        if node.get(&format!("/v1/identity/{id}")).0 == 200 {
            return started.elapsed();
        }
    }
    panic!("{id} never resolved:\n{}", node.log());
}

fn median(runs: usize, mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| run()).collect();
    times.sort();
    times[runs / 2]
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the node runs");
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the node runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmRSS")
}
