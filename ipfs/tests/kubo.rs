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

//! The Kubo RPC backend against real js-ipfs daemons (an independent
//! implementation with a Kubo-compatible API, DESIGN.md §11): blocks put on
//! one daemon and fetched, verified, from another; pinning; pubsub across
//! two daemons; a stopped daemon reported as unavailable, never a hang.
//!
//! Needs `tests/js-ipfs/install` to have run (scripts/test does).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::BoxStream};
use milagro_ipfs::{
    Backend, Cid, DAG_CBOR, Ipfs, IpfsError, KuboClient, NodeInfo, PubsubMessage, RAW, cid_v1,
};
use milagro_tests::jsipfs::JsIpfs;

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

fn client(node: &JsIpfs) -> Arc<KuboClient> {
    Arc::new(KuboClient::new(&node.api_url()).expect("valid API URL"))
}

fn ipfs(node: &JsIpfs) -> Ipfs {
    Ipfs::with_backend(client(node), FETCH_TIMEOUT)
}

/// Two daemons, B dialled from A.
async fn connected_pair() -> (JsIpfs, JsIpfs) {
    let mut nodes = tokio::task::spawn_blocking(|| JsIpfs::start_many(2))
        .await
        .expect("start daemons");
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    eprintln!(
        "daemons ready in {:?} and {:?} (init + start, in parallel)",
        a.started_in, b.started_in
    );
    ipfs(&a)
        .connect(&b.peer_multiaddr())
        .await
        .expect("swarm connect A -> B");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_put_on_one_daemon_are_fetched_verified_from_another() {
    let (a, b) = connected_pair().await;
    let (ia, ib) = (ipfs(&a), ipfs(&b));

    // Raw and DAG-CBOR blocks: the node computes the same CIDv1 we do.
    let raw = b"milagro kubo-mode raw block".to_vec();
    // {"a": 1, "b": [h'00ff']} in DAG-CBOR.
    let cbor = vec![0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x81, 0x42, 0x00, 0xff];
    let t = Instant::now();
    let raw_cid = ia.put(RAW, raw.clone()).await.expect("put raw");
    let put_latency = t.elapsed();
    let cbor_cid = ia.put(DAG_CBOR, cbor.clone()).await.expect("put dag-cbor");
    assert_eq!(raw_cid, cid_v1(RAW, &raw));
    assert_eq!(cbor_cid, cid_v1(DAG_CBOR, &cbor));
    assert_eq!(cbor_cid.codec(), DAG_CBOR);

    // Fetched from the other daemon (bitswap), checked against the CID.
    let t = Instant::now();
    assert_eq!(ib.get(&raw_cid).await.expect("get raw from B"), raw);
    let remote_get = t.elapsed();
    assert_eq!(ib.get(&cbor_cid).await.expect("get dag-cbor from B"), cbor);
    let t = Instant::now();
    assert_eq!(ia.get(&raw_cid).await.expect("get raw from A"), raw);
    let local_get = t.elapsed();

    // B pins what it fetched; block/stat agrees on the size.
    ib.pin(&raw_cid).await.expect("pin on B");
    ib.pin(&cbor_cid).await.expect("pin dag-cbor on B");
    assert_eq!(
        client(&b).block_stat(&cbor_cid).await.expect("stat"),
        cbor.len() as u64
    );

    // A block of 1 MB crosses too (multipart upload, bitswap, bounded
    // body). js-ipfs refuses request bodies over 1 MiB, so that is about
    // the largest block it takes.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let t = Instant::now();
    let big_cid = ia.put(RAW, big.clone()).await.expect("put 1 MB");
    let big_put = t.elapsed();
    let t = Instant::now();
    assert!(ib.get(&big_cid).await.expect("get 1 MB from B") == big);
    eprintln!("1 MB block: put {big_put:?}, remote get {:?}", t.elapsed());

    // Round trips, averaged over a few more blocks.
    let n = 20u32;
    let (mut put_total, mut get_total) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let data = format!("block {i} for the round-trip figures").into_bytes();
        let t = Instant::now();
        let cid = ia.put(RAW, data.clone()).await.expect("put");
        put_total += t.elapsed();
        let t = Instant::now();
        assert_eq!(ib.get(&cid).await.expect("remote get"), data);
        get_total += t.elapsed();
    }
    eprintln!(
        "first put {put_latency:?}, first remote get {remote_get:?}, local get {local_get:?}; \
         mean of {n}: put {:?}, remote get {:?}",
        put_total / n,
        get_total / n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_tampered_blocks_are_refused_clearly() {
    let (a, b) = connected_pair().await;
    let ia = ipfs(&a);
    let data = b"the genuine block".to_vec();
    let cid = ia.put(RAW, data.clone()).await.expect("put");

    // A CID whose hash nobody has: NotFound once the timeout passes, not a hang.
    let mut bytes = cid.to_bytes();
    *bytes.last_mut().unwrap() ^= 0xff;
    let unknown = Cid::try_from(bytes).unwrap();
    let short = Ipfs::with_backend(client(&b), Duration::from_secs(2));
    let t = Instant::now();
    match short.get(&unknown).await {
        Err(IpfsError::NotFound(c)) => assert_eq!(*c, unknown),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(6), "gave up after {waited:?}");

    // A node that returns other bytes than the CID's: refused by the wrapper.
    let tampering = Ipfs::with_backend(
        Arc::new(Tampering(KuboClient::new(&b.api_url()).unwrap())),
        FETCH_TIMEOUT,
    );
    match tampering.get(&cid).await {
        Err(IpfsError::HashMismatch { expected, .. }) => assert_eq!(*expected, cid),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    // ...while the same fetch without tampering succeeds.
    assert_eq!(ipfs(&b).get(&cid).await.unwrap(), data);

    // A CID with another hash function is refused before asking the node.
    // CIDv1, raw, blake2b-256 (0xb220 as a varint), 32-byte digest.
    let mut bytes = vec![0x01, 0x55, 0xa0, 0xe4, 0x02, 0x20];
    bytes.extend([0; 32]);
    let blake = Cid::try_from(bytes).unwrap();
    assert!(matches!(
        ia.get(&blake).await,
        Err(IpfsError::Unsupported { .. })
    ));

    // A codec the backend does not write is an error, not a wrong CID.
    let err = client(&a).put_block(0x70, vec![1]).await.unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");

    // Dialling a peer that is not there is an error with the node's message.
    let err = ia
        .connect("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWPHHzNvCjFeTpxxwQxTKzHgBPjeBQdriQkjFnv51Py36h")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IpfsError::Backend {
                operation: "swarm/connect",
                ..
            }
        ),
        "{err}"
    );
}

/// A backend that flips a bit of every block it returns.
struct Tampering(KuboClient);

#[async_trait::async_trait]
impl Backend for Tampering {
    async fn put_block(&self, codec: u64, data: Vec<u8>) -> Result<Cid, IpfsError> {
        self.0.put_block(codec, data).await
    }
    async fn get_block(&self, cid: &Cid, timeout: Duration) -> Result<Vec<u8>, IpfsError> {
        let mut data = self.0.get_block(cid, timeout).await?;
        data[0] ^= 1;
        Ok(data)
    }
    async fn pin(&self, cid: &Cid) -> Result<(), IpfsError> {
        self.0.pin(cid).await
    }
    async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), IpfsError> {
        self.0.publish(topic, data).await
    }
    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, PubsubMessage>, IpfsError> {
        self.0.subscribe(topic).await
    }
    async fn id(&self) -> Result<NodeInfo, IpfsError> {
        self.0.id().await
    }
    async fn connect(&self, address: &str) -> Result<(), IpfsError> {
        self.0.connect(address).await
    }
    async fn join_routing(&self, bootstrap: &[String]) -> Result<(), IpfsError> {
        self.0.join_routing(bootstrap).await
    }
    async fn connect_peer(&self, peer_id: &str) -> Result<(), IpfsError> {
        self.0.connect_peer(peer_id).await
    }
    async fn reconnect(&self, address: &str) -> Result<(), IpfsError> {
        self.0.reconnect(address).await
    }
}

/// Publishes `probe` from `from` until `to` receives it (gossipsub needs a
/// moment to learn the subscription; js-ipfs refuses to publish to no peer).
/// Waits until `from` reports `to` subscribed to `topic` (its own
/// `pubsub/peers`), then until one probe published by `from` arrives on
/// `stream`: a condition both daemons report, never a guessed delay. Panics
/// with what it waited for and what it saw.
async fn wait_for_mesh(
    from: &JsIpfs,
    to: &JsIpfs,
    stream: &mut BoxStream<'static, PubsubMessage>,
    topic: &str,
) -> Duration {
    let begun = Instant::now();
    let known = tokio::task::block_in_place(|| {
        from.wait_for_topic_peer(topic, to.peer_id(), Duration::from_secs(30))
    });
    // js-ipfs' gossipsub publishes to every known subscriber (flood publish),
    // so one probe suffices once `from` knows the subscription.
    ipfs(from)
        .publish(topic, b"probe".to_vec())
        .await
        .unwrap_or_else(|e| {
            panic!("publish of the probe failed after {known:?} with the subscriber known: {e}")
        });
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(m)) => assert_eq!(m.data, b"probe", "the first message is the probe"),
        Ok(None) => panic!(
            "the subscription on {} closed before the probe",
            to.peer_id()
        ),
        Err(_) => panic!(
            "{} knew {} subscribed to {topic:?} after {known:?}, but the probe did not arrive \
             within 10 s; {}'s swarm/peers: {}",
            from.peer_id(),
            to.peer_id(),
            from.peer_id(),
            from.swarm_peers()
        ),
    }
    begun.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_messages_cross_two_daemons_intact() {
    let (a, b) = connected_pair().await;
    let (ia, ib) = (ipfs(&a), ipfs(&b));
    let a_id = ia.id().await.expect("id of A").peer_id;
    let topic = "/milagro/1/inbox/test-topic";

    let mut stream = ib.subscribe(topic).await.expect("subscribe on B");
    let ready = wait_for_mesh(&a, &b, &mut stream, topic).await;

    // Every byte value, exactly.
    let payload: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    let t = Instant::now();
    ia.publish(topic, payload.clone()).await.expect("publish");
    let m = next_non_probe(&mut stream).await;
    let one_way = t.elapsed();
    assert_eq!(m.data, payload);
    assert_eq!(m.from, a_id);

    // 50 in a row: js-ipfs seqnos drop leading zero bytes, so some are
    // shorter than 8 bytes; none may be lost or break the stream.
    let n = 50;
    let t = Instant::now();
    for i in 0..n {
        ia.publish(topic, format!("message {i:02}").into_bytes())
            .await
            .expect("publish");
    }
    let mut seen = Vec::new();
    while seen.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), next_non_probe(&mut stream))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {n} messages arrived, then none for 10 s: {seen:?}",
                    seen.len()
                )
            });
        seen.push(String::from_utf8(m.data).expect("utf-8"));
    }
    let burst = t.elapsed();
    seen.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("message {i:02}")).collect();
    assert_eq!(seen, expected);
    eprintln!(
        "pubsub: mesh ready after {ready:?}; one message {one_way:?} publish-to-receive; \
         {n} messages in {burst:?}"
    );

    // A second topic on the same daemons is independent of the first.
    let mut other = ib.subscribe("another topic").await.expect("subscribe");
    wait_for_mesh(&a, &b, &mut other, "another topic").await;
    ia.publish(topic, b"on the first topic".to_vec())
        .await
        .unwrap();
    assert_eq!(
        next_non_probe(&mut stream).await.data,
        b"on the first topic"
    );
}

async fn next_non_probe(stream: &mut BoxStream<'static, PubsubMessage>) -> PubsubMessage {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a pubsub message within 10 s of the last one")
            .expect("the subscription is still open");
        if m.data != b"probe" {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_daemon_is_unavailable_not_a_hang() {
    let mut a = tokio::task::spawn_blocking(JsIpfs::start).await.unwrap();
    eprintln!("daemon ready in {:?} (init + start)", a.started_in);
    let ia = ipfs(&a);

    let info = ia.id().await.expect("id");
    assert_eq!(info.peer_id, a.peer_id());
    assert!(
        info.addresses.contains(&a.peer_multiaddr()),
        "{:?} lacks {}",
        info.addresses,
        a.peer_multiaddr()
    );
    let cid = ia.put(RAW, b"before the crash".to_vec()).await.unwrap();
    let mut stream = ia.subscribe("doomed").await.expect("subscribe");

    a.kill();
    let t = Instant::now();
    for result in [
        ia.id().await.map(|_| ()),
        ia.get(&cid).await.map(|_| ()),
        ia.put(RAW, b"after".to_vec()).await.map(|_| ()),
        ia.pin(&cid).await,
        ia.publish("doomed", b"x".to_vec()).await,
        ia.subscribe("doomed").await.map(|_| ()),
        ia.connect("/ip4/127.0.0.1/tcp/1/p2p/x").await,
    ] {
        match result {
            Err(IpfsError::Unavailable(m)) => assert!(m.contains(&a.api_url()), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );

    // The open subscription ends instead of waiting forever.
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the subscription ends when the daemon dies");
    assert!(end.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_daemon_is_unavailable_within_the_timeout() {
    let a = tokio::task::spawn_blocking(JsIpfs::start).await.unwrap();
    let backend = Arc::new(
        KuboClient::new(&a.api_url())
            .unwrap()
            .with_timeout(Duration::from_secs(2)),
    );
    let ia = Ipfs::with_backend(backend, Duration::from_secs(1));
    let cid = ia
        .put(RAW, b"kept across the pause".to_vec())
        .await
        .unwrap();

    a.pause();
    let t = Instant::now();
    match ia.id().await {
        Err(IpfsError::Unavailable(m)) => assert!(m.contains("no answer within"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A fetch the node does not even refuse is not reported as NotFound.
    match ia.get(&cid).await {
        Err(IpfsError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(8), "took {waited:?}");

    // Once it runs again, the same client works.
    a.resume();
    assert_eq!(
        ia.get(&cid).await.expect("get after resume"),
        b"kept across the pause"
    );
}
