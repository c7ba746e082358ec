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

//! Identity documents, sealed envelopes and their transport, end to end:
//! real `milagro` processes with embedded IPFS nodes on 127.0.0.1,
//! bootstrapped to each other, exchanging envelopes through the probe
//! plugin.

use std::{
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{Node, NodeConfig, PluginEntry, jsipfs::JsIpfs, json, plugin_library, request};
use serde_json::{Value, json as j};

const KINDS: &str = "consumes = [\"test/note\", \"test/slow\", \"test/reply\"]";

fn probe() -> PluginEntry {
    PluginEntry::new(
        "probe",
        &plugin_library("milagro-test-probe"),
        &format!("{{ label = \"p\", {KINDS} }}"),
    )
}

/// A node config whose embedded IPFS dials `bootstrap` at start.
fn node(name: &str, bootstrap: &[String], extra: &str) -> NodeConfig {
    NodeConfig::new(name)
        .section(&format!(
            "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n{extra}"
        ))
        .plugin(probe())
}

fn peers(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().flat_map(|n| n.ipfs_addresses()).collect()
}

fn send(
    from: &Node,
    kind: &str,
    to: &[String],
    body: &str,
    secret: &str,
    links: &[String],
) -> String {
    let body = j!({"kind": kind, "recipients": to, "body": body, "secret": secret, "links": links});
    let r = from.call("POST", "/v1/probe/send", Some(body.to_string().as_bytes()));
    assert_eq!(r.0, 200, "send failed: {}\n{}", r.1, from.log());
    json(&r.1)["cid"].as_str().unwrap().to_string()
}

/// Waits (bounded) until `node` has processed envelope `cid`; returns its record.
fn received(node: &Node, cid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = json(&node.get_auth("/v1/probe/received").1);
        if let Some(r) = list.as_array().unwrap().iter().find(|r| r["cid"] == cid) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{cid} never processed:\n{}",
            node.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn received_count(node: &Node) -> usize {
    json(&node.get_auth("/v1/probe/received").1)
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn three_nodes_exchange_sealed_envelopes_over_pubsub_and_outsiders_cannot_open_them() {
    let a = Node::start(node("a", &[], ""));
    let b = Node::start(node("b", &peers(&[&a]), ""));
    let c = Node::start(node("c", &peers(&[&a, &b]), ""));
    let d = Node::start(node("d", &peers(&[&a]), ""));
    let (ida, idb, idc) = (a.id(), b.id(), c.id());

    let started = Instant::now();
    let cid = send(
        &a,
        "test/note",
        &[idb.clone(), idc.clone()],
        "hello",
        "s3cret",
        &[],
    );
    for n in [&b, &c] {
        let r = received(n, &cid);
        assert_eq!(r["sender"], ida);
        assert_eq!(r["body"], "hello");
        assert_eq!(r["secret"], "s3cret");
        assert_eq!(r["processed"], 1);
    }
    println!(
        "sealed envelope to 2 recipients delivered and processed in {:?}",
        started.elapsed()
    );

    // Anyone can resolve and verify A's identity by its ID alone.
    let a_doc = a.identity();
    for n in [&b, &c, &d] {
        let (status, body) = n.get(&format!("/v1/identity/{ida}"));
        assert_eq!(status, 200, "{body}");
        let doc = json(&body);
        assert_eq!(doc["signing_key"], a_doc["signing_key"]);
        assert_eq!(doc["kem_key"], a_doc["kem_key"]);
    }
    // D, not a recipient, verifies the envelope's signature (audit) but
    // cannot open it: its inbox refuses it.
    let audit = json(&d.get_auth(&format!("/v1/audit/{cid}")).1);
    assert_eq!(audit["ok"], true, "{audit}");
    let bytes = a_block_bytes(&a, &cid);
    let refused = request(ureq::post(&d.url("/v1/inbox")), Some(&bytes));
    assert_eq!(refused.0, 422, "{}", refused.1);
    assert!(
        refused.1.contains("not one of its recipients"),
        "{}",
        refused.1
    );
    assert_eq!(received_count(&d), 0);
    // Delivering it again to B is a harmless duplicate, processed once.
    let again = request(ureq::post(&b.url("/v1/inbox")), Some(&bytes));
    assert_eq!(again.0, 202, "{}", again.1);
    assert_eq!(json(&again.1)["status"], "duplicate");
    assert_eq!(received(&b, &cid)["processed"], 1);
}

/// The raw bytes of a block, through A's probe plugin.
fn a_block_bytes(a: &Node, cid: &str) -> Vec<u8> {
    let response = ureq::get(&a.url(&format!("/v1/probe/ipfs/get/{cid}")))
        .set("Authorization", &format!("Bearer {}", a.token()))
        .call()
        .expect("block readable");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    bytes
}

#[test]
fn http_transport_delivers_with_ipfs_for_the_audit_log_only() {
    // Both nodes are on this machine: loopback endpoints allowed explicitly.
    let http = "[transport]\nmode = \"http\"\nallowed_endpoints = [\"127.0.0.1\"]\n";
    let a = Node::start(node("a", &[], "").section(http));
    let b = Node::start(node("b", &peers(&[&a]), "").section(http));
    let cid = send(&a, "test/note", &[b.id()], "over http", "secret", &[]);
    let r = received(&b, &cid);
    assert_eq!(r["body"], "over http");
    assert_eq!(r["secret"], "secret");
    assert!(a.log().contains("milagro listening"));
    // The envelope is on IPFS: B audits it by fetching from A.
    assert_eq!(json(&b.get_auth(&format!("/v1/audit/{cid}")).1)["ok"], true);
}

#[test]
fn replies_link_to_requests_and_audit_walks_the_chain() {
    let a = Node::start(node("a", &[], ""));
    let b = Node::start(node("b", &peers(&[&a]), ""));
    let (ida, idb) = (a.id(), b.id());
    let e1 = send(
        &a,
        "test/note",
        std::slice::from_ref(&idb),
        "request",
        "",
        &[],
    );
    received(&b, &e1);
    let e2 = send(
        &b,
        "test/reply",
        std::slice::from_ref(&ida),
        "reply",
        "",
        std::slice::from_ref(&e1),
    );
    // A awaits the reply linked to e1 (already there, or arriving) from B;
    // a wait for one from A itself does not take B's, and one naming
    // nobody is refused.
    let reply = json(
        &a.get_auth(&format!(
            "/v1/probe/await/{e1}/test.reply?ms=20000&from={idb}"
        ))
        .1,
    );
    assert_eq!(reply["cid"], e2);
    let other = a.get_auth(&format!(
        "/v1/probe/await/{e1}/test.reply?ms=300&from={ida}"
    ));
    assert_eq!(other.0, 504, "{}", other.1);
    let nobody = a.get_auth(&format!("/v1/probe/await/{e1}/test.reply?ms=300"));
    assert_eq!(nobody.0, 400, "{}", nobody.1);
    let e3 = send(
        &a,
        "test/note",
        std::slice::from_ref(&idb),
        "follow-up",
        "",
        std::slice::from_ref(&e2),
    );
    received(&b, &e3);

    let report = json(&a.get_auth(&format!("/v1/audit/{e3}")).1);
    assert_eq!(report["ok"], true, "{report}");
    let cids: Vec<&str> = report["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cid"].as_str().unwrap())
        .collect();
    assert_eq!(cids, [e3.as_str(), e2.as_str(), e1.as_str()]);

    // The CLI prints the chain and succeeds.
    let out = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args(["audit", &e3, "--config"])
        .arg(a.dir.path().join("host.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chain verified: 3 envelope(s)"), "{stdout}");

    // A waiter for a reply that never comes times out cleanly.
    let none = a.get_auth(&format!(
        "/v1/probe/await/{e3}/test.reply?ms=300&from={idb}"
    ));
    assert_eq!(none.0, 504, "{}", none.1);

    // Swap one block of the chain in A's blockstore: e2's file now holds
    // e1's bytes. The audit names e2 as the break, and the CLI fails.
    let (e1_bytes, e2_bytes) = (a_block_bytes(&a, &e1), a_block_bytes(&a, &e2));
    let mut a = a;
    a.kill();
    let swapped = replace_file_content(&a.dir.path().join("data/ipfs"), &e2_bytes, &e1_bytes);
    assert_eq!(swapped, 1, "e2's block file found in the blockstore");
    a.restart();
    let report = json(&a.get_auth(&format!("/v1/audit/{e3}")).1);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["broken"]["cid"], e2, "{report}");
    // rust-ipfs checks blocks it reads and treats a corrupt one as absent;
    // either way the swapped block is never accepted.
    let reason = report["broken"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("hash") || reason.contains("not found"),
        "{report}"
    );
    let out = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args(["audit", &e3, "--config"])
        .arg(a.dir.path().join("host.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BROKEN"));
}

/// Overwrites every file under `dir` whose content is `from` with `to`;
/// returns how many.
fn replace_file_content(dir: &std::path::Path, from: &[u8], to: &[u8]) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += replace_file_content(&path, from, to);
        } else if std::fs::read(&path).is_ok_and(|b| b == from) {
            std::fs::write(&path, to).unwrap();
            count += 1;
        }
    }
    count
}

/// Pubsub drops messages silently: a publish "succeeds" once the bytes are
/// queued for a subscriber, which may die before it reads them. Here the
/// recipient is frozen (SIGSTOP) while a burst is sent to it, then killed
/// (SIGKILL: whatever sat in its socket buffers is gone) and restarted. It
/// still gets every envelope, because each delivery is published again
/// until the recipient's signed receipt comes back, and every send reports
/// success only then. (Before receipts, every envelope of the burst was
/// lost while each send reported success.)
#[test]
fn a_burst_to_a_recipient_that_freezes_and_crashes_is_delivered_in_full() {
    const ENVELOPES: usize = 240;
    const SENDERS: usize = 48;
    let slow = "\n[transport]\ndelivery_timeout_ms = 60000";
    let a = Node::start(node("a", &[], slow));
    let mut b = Node::start(node("b", &peers(&[&a]), ""));
    let idb = b.id();
    send(
        &a,
        "test/note",
        std::slice::from_ref(&idb),
        "warm-up",
        "",
        &[],
    );

    b.pause();
    let started = Instant::now();
    let cids: Vec<String> = thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let (a, idb) = (&a, &idb);
                scope.spawn(move || {
                    (s..ENVELOPES)
                        .step_by(SENDERS)
                        .map(|i| {
                            send(
                                a,
                                "test/note",
                                std::slice::from_ref(idb),
                                &format!("n{i}"),
                                "",
                                &[],
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        thread::sleep(Duration::from_secs(2));
        b.restart();
        senders
            .into_iter()
            .flat_map(|s| s.join().expect("sender thread"))
            .collect()
    });
    assert_eq!(cids.len(), ENVELOPES);
    let deadline = Instant::now() + Duration::from_secs(60);
    while received_count(&b) < ENVELOPES + 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
    }
    let got = received_count(&b) - 1;
    println!(
        "{ENVELOPES} envelopes from {SENDERS} senders to a recipient frozen for 2 s, \
         then killed and restarted: {got} delivered and processed in {:?}",
        started.elapsed()
    );
    assert_eq!(got, ENVELOPES, "envelopes lost:\n{}", b.log());
}

#[test]
fn envelope_persisted_before_a_crash_is_processed_exactly_once_after_restart() {
    let a = Node::start(node("a", &[], ""));
    let mut b = Node::start(node("b", &peers(&[&a]), ""));
    // test/slow is held 3 s inside the plugin before it is recorded.
    let cid = send(&a, "test/slow", &[b.id()], "slow", "", &[]);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(received_count(&b), 0, "still being processed");
    b.kill();
    b.restart();
    let r = received(&b, &cid);
    assert_eq!(r["processed"], 1, "processed exactly once: {r}");
    thread::sleep(Duration::from_secs(4));
    assert_eq!(received(&b, &cid)["processed"], 1);
    assert_eq!(received_count(&b), 1);
}

#[test]
fn a_handler_past_its_deadline_is_dropped_and_later_envelopes_still_processed() {
    let a = Node::start(node("a", &[], ""));
    let b = Node::start(node(
        "b",
        &peers(&[&a]),
        "[transport]\nenvelope_timeout_ms = 1000\n",
    ));
    // test/slow is held 3 s inside the plugin: past b's 1 s deadline.
    let slow = send(&a, "test/slow", &[b.id()], "slow", "", &[]);
    let note = send(&a, "test/note", &[b.id()], "note", "", &[]);
    assert_eq!(received(&b, &note)["processed"], 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.log().contains("did not finish within 1000 ms") {
        assert!(Instant::now() < deadline, "no deadline hit:\n{}", b.log());
        thread::sleep(Duration::from_millis(100));
    }
    // The dropped handler never records the envelope, even after its 3 s.
    thread::sleep(Duration::from_secs(3));
    let list = json(&b.get_auth("/v1/probe/received").1);
    assert!(
        !list.as_array().unwrap().iter().any(|r| r["cid"] == slow),
        "the handler past its deadline ran on: {list}"
    );
    let timeouts = milagro_tests::counter(&b, "milagro_envelope_timeouts_total", "");
    println!("deadline: milagro_envelope_timeouts_total {timeouts}");
    assert_eq!(timeouts, 1);
}

#[test]
fn init_prints_the_node_id_and_keeps_it() {
    // A fixed IPFS port, so the addresses in n's documents stay valid across
    // the restarts of this test.
    let ipfs_port = milagro_tests::free_port();
    let config = NodeConfig::new("init")
        .section(&format!(
            "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/{ipfs_port}\"]\n"
        ))
        .plugin(probe());
    let mut n = Node::start(config);
    let id = n.id();
    let config_path = n.dir.path().join("host.toml");
    n.kill();
    let out = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args(["init", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);
    let show = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args(["identity", "show", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(show.status.success());
    assert_eq!(json(&String::from_utf8_lossy(&show.stdout))["id"], id);

    // Rotation: new keys and a new document linked to the old one, signed
    // by both; the node serves it after a restart and peers verify the chain.
    let rotate = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args(["identity", "rotate", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    let new_id = String::from_utf8_lossy(&rotate.stdout).trim().to_string();
    assert_ne!(new_id, id);
    n.restart();
    let other = Node::start(node("other", &n.ipfs_addresses(), ""));
    let doc = n.identity();
    assert_eq!(doc["id"], new_id);
    assert_eq!(doc["previous"], id);
    let (status, body) = other.get(&format!("/v1/identity/{new_id}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["previous"], id);
    assert_ne!(
        json(&body)["signing_key"],
        json(&other.get(&format!("/v1/identity/{id}")).1)["signing_key"]
    );
}

/// A node whose IPFS facility is its own js-ipfs daemon's Kubo RPC API; the
/// daemon dials the others' at start.
fn kubo_node(name: &str, daemon: &JsIpfs, others: &[&JsIpfs]) -> NodeConfig {
    let peers: Vec<String> = others.iter().map(|d| d.peer_multiaddr()).collect();
    NodeConfig::new(name)
        .section(&format!(
            "[ipfs]\nmode = \"kubo\"\napi = \"{}\"\nbootstrap = {peers:?}\n",
            daemon.api_url()
        ))
        .plugin(probe())
}

#[test]
fn the_same_exchange_in_kubo_mode_against_js_ipfs_daemons() {
    let daemons = JsIpfs::start_many(4);
    let [da, db, dc, dd] = [&daemons[0], &daemons[1], &daemons[2], &daemons[3]];
    let a = Node::start(kubo_node("a", da, &[]));
    let b = Node::start(kubo_node("b", db, &[da]));
    let c = Node::start(kubo_node("c", dc, &[da, db]));
    let d = Node::start(kubo_node("d", dd, &[da]));
    let (ida, idb, idc) = (a.id(), b.id(), c.id());

    let started = Instant::now();
    let cid = send(&a, "test/note", &[idb, idc], "hello kubo", "s3cret", &[]);
    for n in [&b, &c] {
        let r = received(n, &cid);
        assert_eq!(r["sender"], ida);
        assert_eq!(r["secret"], "s3cret");
    }
    println!(
        "kubo mode: delivered and processed in {:?}",
        started.elapsed()
    );
    for n in [&b, &c, &d] {
        let (status, body) = n.get(&format!("/v1/identity/{ida}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["signing_key"], a.identity()["signing_key"]);
    }
    assert_eq!(json(&d.get_auth(&format!("/v1/audit/{cid}")).1)["ok"], true);
    let refused = request(
        ureq::post(&d.url("/v1/inbox")),
        Some(&a_block_bytes(&a, &cid)),
    );
    assert_eq!(refused.0, 422, "{}", refused.1);
    assert!(
        refused.1.contains("not one of its recipients"),
        "{}",
        refused.1
    );
}
