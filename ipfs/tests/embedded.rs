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

//! Tests of the `embedded` backend: real rust-ipfs nodes in this process,
//! on 127.0.0.1 only, connected directly to each other. Every wait is
//! bounded. Timings are printed (run with `--nocapture` to see them).
#![cfg(feature = "embedded")]

use std::{
    future::Future,
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::BoxStream};
use milagro_ipfs::{Cid, DAG_CBOR, Ipfs, IpfsConfig, IpfsError, PubsubMessage, RAW, cid_v1};
use tokio::net::{TcpListener, TcpStream};

/// Per-operation bound of these tests; far above what a healthy node needs.
const BOUND: Duration = Duration::from_secs(20);

fn config(repo: &Path, timeout_ms: u64) -> IpfsConfig {
    IpfsConfig {
        repo: Some(repo.to_path_buf()),
        timeout_ms,
        ..IpfsConfig::default()
    }
}

async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done after {BOUND:?}"),
    }
}

/// Starts a node on `repo` and prints how long it took to be ready.
async fn start(name: &str, repo: &Path, timeout_ms: u64) -> Ipfs {
    let started = Instant::now();
    let ipfs = bounded("start", Ipfs::open(&config(repo, timeout_ms), repo))
        .await
        .unwrap_or_else(|e| panic!("starting node {name}: {e}"));
    println!("node {name} ready in {:?}", started.elapsed());
    ipfs
}

/// `a` dials `b` and waits for the connection.
async fn connect(a: &Ipfs, b: &Ipfs) {
    let address = b
        .id()
        .await
        .unwrap()
        .addresses
        .into_iter()
        .next()
        .expect("b listens");
    bounded("connect", a.connect(&address))
        .await
        .unwrap_or_else(|e| panic!("connect {address}: {e}"));
}

/// A small valid DAG-CBOR document: {"n": <n>, "v": "milagro"}.
fn dag_cbor(n: u8) -> Vec<u8> {
    assert!(n < 24);
    let mut doc = vec![0xa2, 0x61, b'n', n, 0x61, b'v', 0x67];
    doc.extend_from_slice(b"milagro");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_raw_and_dag_cbor_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("A", &dir.path().join("a"), 10_000).await;
    let b = start("B", &dir.path().join("b"), 10_000).await;
    connect(&a, &b).await;

    let raw: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let raw_cid = bounded("put raw", a.put(RAW, raw.clone())).await.unwrap();
    assert_eq!(raw_cid, cid_v1(RAW, &raw));
    let started = Instant::now();
    let got = bounded("get raw", b.get(&raw_cid)).await.unwrap();
    println!("raw block A->B (10 kB) in {:?}", started.elapsed());
    assert_eq!(got, raw);

    let doc = dag_cbor(7);
    let doc_cid = bounded("put dag-cbor", b.put(DAG_CBOR, doc.clone()))
        .await
        .unwrap();
    assert_eq!(doc_cid, cid_v1(DAG_CBOR, &doc));
    assert_eq!(doc_cid.codec(), DAG_CBOR);
    let started = Instant::now();
    let got = bounded("get dag-cbor", a.get(&doc_cid)).await.unwrap();
    println!("dag-cbor block B->A in {:?}", started.elapsed());
    assert_eq!(got, doc);

    // Round trips of fresh small blocks, both ways.
    let mut times = Vec::new();
    for n in 0..20u8 {
        let (from, to) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let data = format!("block {n}").into_bytes();
        let cid = from.put(RAW, data.clone()).await.unwrap();
        let started = Instant::now();
        assert_eq!(bounded("get", to.get(&cid)).await.unwrap(), data);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "block round trip over 20 fetches: min {:?}, median {:?}, max {:?}",
        times[0], times[10], times[19]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_message_arrives_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("A", &dir.path().join("a"), 10_000).await;
    let b = start("B", &dir.path().join("b"), 10_000).await;
    let mut inbox = b.subscribe("/milagro/1/test").await.unwrap();
    connect(&a, &b).await;

    let payload: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    let started = Instant::now();
    let first = bounded(
        "mesh",
        publish_until_received(&a, "/milagro/1/test", &payload, &mut inbox),
    )
    .await;
    println!(
        "pubsub mesh ready after {:?} ({} attempts)",
        started.elapsed(),
        first.0
    );
    let mut expected = payload.clone();
    expected.extend_from_slice(&first.0.to_be_bytes());
    assert_eq!(first.1.data, expected);
    assert_eq!(first.1.from, a.id().await.unwrap().peer_id);

    let mut times = Vec::new();
    for n in 0..20u32 {
        let mut data = payload.clone();
        data.extend_from_slice(&(1_000 + n).to_be_bytes());
        let started = Instant::now();
        a.publish("/milagro/1/test", data.clone()).await.unwrap();
        let message = bounded("pubsub message", inbox.next())
            .await
            .expect("stream open");
        times.push(started.elapsed());
        assert_eq!(message.data, data, "message {n}");
    }
    times.sort();
    println!(
        "pubsub latency over 20 messages: min {:?}, median {:?}, max {:?}",
        times[0], times[10], times[19]
    );

    // A second subscription to the same topic gets the messages too, and
    // dropping one leaves the other working.
    let mut second = b.subscribe("/milagro/1/test").await.unwrap();
    drop(inbox);
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.publish("/milagro/1/test", b"after drop".to_vec())
        .await
        .unwrap();
    let message = bounded("second subscription", second.next())
        .await
        .expect("stream open");
    assert_eq!(message.data, b"after drop");
}

/// Until the mesh includes the subscriber, publishing fails (no peers) or
/// reaches no one: publishes `payload` followed by the attempt number until
/// one arrives on `inbox`, and returns that number and the message.
async fn publish_until_received(
    from: &Ipfs,
    topic: &str,
    payload: &[u8],
    inbox: &mut BoxStream<'static, PubsubMessage>,
) -> (u32, PubsubMessage) {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut data = payload.to_vec();
        data.extend_from_slice(&attempt.to_be_bytes());
        if from.publish(topic, data).await.is_ok()
            && let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_millis(100), inbox.next()).await
        {
            return (attempt, message);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP relay on 127.0.0.1 to `target` that never passes a close on: when
/// one side goes away, the other stays open, like a connection whose peer
/// vanished without its FIN arriving (a crash, a cable pulled).
async fn stale_relay(target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                let _ = tokio::join!(
                    tokio::io::copy(&mut in_read, &mut out_write),
                    tokio::io::copy(&mut out_read, &mut in_write),
                );
                // Dropping a write half would send its FIN: hold both until
                // the test's runtime ends.
                std::future::pending::<()>().await;
            });
        }
    });
    address
}

/// The TCP address of a node's first listen multiaddr.
async fn tcp_address(node: &Ipfs) -> SocketAddr {
    let address = node.id().await.unwrap().addresses.remove(0);
    let parts: Vec<&str> = address.split('/').collect();
    match parts.as_slice() {
        ["", "ip4", ip, "tcp", port, ..] => format!("{ip}:{port}").parse().unwrap(),
        _ => panic!("unexpected listen address {address}"),
    }
}

/// libp2p's gossipsub announces a node's subscriptions to a peer only on its
/// first connection to that peer. B restarts with the same peer ID and dials
/// A while A still holds B's old connection (its FIN never arrived): without
/// the embedded node's reset of overlapping connections, A never tells the
/// new B what it subscribes to, and B cannot publish to A for as long as the
/// old connection looks alive (measured before the fix: still refused after
/// 3 s, the test's whole wait). Then `Ipfs::reconnect`, which the transport
/// uses when deliveries fail, and its once-per-interval limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_restarts_behind_a_stale_connection_can_publish_again() {
    const TOPIC: &str = "/milagro/1/test/a";
    let dir = tempfile::tempdir().unwrap();
    let a = start("A", &dir.path().join("a"), 2_000).await;
    let a_peer = a.id().await.unwrap().peer_id;
    let mut a_inbox = a.subscribe(TOPIC).await.unwrap();
    let relay = stale_relay(tcp_address(&a).await).await;
    let via_relay = format!("/ip4/127.0.0.1/tcp/{}/p2p/{a_peer}", relay.port());

    let b_repo = dir.path().join("b");
    let b = start("B", &b_repo, 2_000).await;
    bounded("B dials A through the relay", b.connect(&via_relay))
        .await
        .unwrap();
    bounded(
        "B reaches A",
        publish_until_received(&b, TOPIC, b"first life", &mut a_inbox),
    )
    .await;
    // Older than the overlap A tolerates from peers dialling both ways at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(b);

    // The new B (same key, new port) dials A directly, as a restarted node
    // does with its bootstrap peers, and keeps doing so.
    let b = start("B again", &b_repo, 2_000).await;
    let a_direct = a.id().await.unwrap().addresses.remove(0);
    let keep = IpfsConfig {
        bootstrap: vec![a_direct],
        reconnect_ms: 200,
        ..IpfsConfig::default()
    };
    let redial = tokio::spawn({
        let b = b.clone();
        async move { b.keep_connected(&keep).await }
    });
    let started = Instant::now();
    let (attempts, message) = bounded(
        "the restarted B reaches A",
        publish_until_received(&b, TOPIC, b"second life", &mut a_inbox),
    )
    .await;
    assert!(message.data.starts_with(b"second life"));
    println!(
        "the restarted B reached A in {:?} ({attempts} attempts)",
        started.elapsed()
    );

    let b_addresses = b.id().await.unwrap().addresses;
    assert!(a.reconnect(&b_addresses).await.unwrap());
    bounded(
        "B reaches A after A's reconnect",
        publish_until_received(&b, TOPIC, b"after reconnect", &mut a_inbox),
    )
    .await;
    // A second reconnect at once is skipped: a burst of failing deliveries
    // resets a peer's connections once.
    assert!(!a.reconnect(&b_addresses).await.unwrap());
    redial.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_node_learns_block_put_on_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("A", &dir.path().join("a"), 10_000).await;
    let b = start("B", &dir.path().join("b"), 10_000).await;
    let c = start("C", &dir.path().join("c"), 10_000).await;
    // A line: A - B - C; C never talks to A.
    connect(&b, &a).await;
    connect(&c, &b).await;

    let doc = dag_cbor(3);
    let cid = a.put(DAG_CBOR, doc.clone()).await.unwrap();
    // B fetches it from A (and keeps it), then C from B.
    assert_eq!(bounded("B gets", b.get(&cid)).await.unwrap(), doc);
    let started = Instant::now();
    assert_eq!(bounded("C gets", c.get(&cid)).await.unwrap(), doc);
    println!(
        "C got A's block through B's copy in {:?}",
        started.elapsed()
    );

    // With C also connected to A, a block only A has reaches C directly.
    connect(&c, &a).await;
    let raw = b"only on A".to_vec();
    let cid = a.put(RAW, raw.clone()).await.unwrap();
    assert_eq!(bounded("C gets from A", c.get(&cid)).await.unwrap(), raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_pinned_block_and_peer_id() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("a");
    let rss_before = rss_kib();
    let a = start("A", &repo, 1_000).await;
    println!(
        "process RSS: {rss_before} KiB before the node, {} KiB with it",
        rss_kib()
    );
    let data = b"survives a restart".to_vec();
    let cid = a.put(RAW, data.clone()).await.unwrap();
    let peer_id = a.id().await.unwrap().peer_id;
    drop(a);

    // The stopped node's repo lock is released a moment after the drop;
    // `open` waits for it.
    let reopened = start("A again", &repo, 1_000).await;
    assert_eq!(reopened.id().await.unwrap().peer_id, peer_id);
    // Not connected to anyone: the block can only come from the repo.
    assert_eq!(
        bounded("get after restart", reopened.get(&cid))
            .await
            .unwrap(),
        data
    );
    // Pinning again is fine.
    reopened.pin(&cid).await.unwrap();

    // A second node on a repo in use is refused.
    let started = Instant::now();
    let second = bounded(
        "second node on the repo",
        Ipfs::open(&config(&repo, 1_000), &repo),
    )
    .await;
    assert!(
        matches!(second, Err(IpfsError::Unavailable(_))),
        "{:?}",
        second.err()
    );
    println!(
        "second node on a busy repo refused after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cid_is_not_found_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("A", &dir.path().join("a"), 1_000).await;
    let b = start("B", &dir.path().join("b"), 1_000).await;
    connect(&a, &b).await;
    let unknown: Cid = cid_v1(RAW, b"nobody has stored this");
    let started = Instant::now();
    let result = bounded("get unknown", a.get(&unknown)).await;
    let elapsed = started.elapsed();
    println!("unknown CID gave up after {elapsed:?} (timeout 1 s)");
    assert!(
        matches!(result, Err(IpfsError::NotFound(ref cid)) if **cid == unknown),
        "{result:?}"
    );
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("A", &dir.path().join("a"), 1_000).await;
    let own = a.id().await.unwrap();
    assert!(
        own.addresses
            .iter()
            .all(|addr| addr.ends_with(&format!("/p2p/{}", own.peer_id)))
    );
    for bad in [
        "not a multiaddr",
        "/ip4/127.0.0.1/tcp/1",
        own.addresses[0].as_str(),
    ] {
        assert!(
            matches!(a.connect(bad).await, Err(IpfsError::Config(_))),
            "{bad}"
        );
    }
    let mut cfg = config(&dir.path().join("b"), 1_000);
    cfg.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1/nope".into()];
    assert!(matches!(
        Ipfs::open(&cfg, dir.path()).await,
        Err(IpfsError::Config(_))
    ));
}

/// Resident set size of this process in KiB (0 where /proc is missing).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
