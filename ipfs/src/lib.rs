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

//! The IPFS facility: content-addressed blocks (put, verified get, pin) and
//! pubsub, behind one [`Backend`] trait with two implementations:
//!
//! - `embedded` (default): an in-process rust-ipfs node, nothing to install;
//! - `kubo`: an external node over the Kubo RPC API (Kubo, or js-ipfs with
//!   its Kubo-compatible API), through a thin client of our own.
//!
//! [`Ipfs`] wraps whichever backend is configured and does what must not
//! depend on the backend: it computes CIDs itself and checks that every
//! block it returns hashes to the CID that was asked for.
//!
//! Routing (`[ipfs] routing`): with `"none"` a node reaches only the peers it
//! dials; with `"dht"` it joins the IPFS Kademlia DHT through its bootstrap
//! peers, provides the blocks it stores, finds providers of the blocks it
//! lacks and finds peers by ID ([`Ipfs::reach`]). Nothing the DHT says is
//! trusted: a provider is only a place to ask, and every block is still
//! checked against its CID here.

#![forbid(unsafe_code)]

#[cfg(feature = "embedded")]
pub mod dht;
#[cfg(feature = "embedded")]
mod embedded;
mod kubo;

pub use kubo::KuboClient;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::stream::BoxStream;
pub use ipld_core::cid::Cid;
// The CID form of every block (CIDv1, sha2-256, the only hash this facility
// writes or accepts) and the DAG-CBOR codec, as the wire format defines them.
pub use milagro_proto::{DAG_CBOR, SHA2_256, cid_v1};
use serde::Deserialize;

/// Multicodec of raw blocks.
pub const RAW: u64 = 0x55;

#[derive(Debug, thiserror::Error)]
pub enum IpfsError {
    /// The node cannot be reached or is not running (callers answer 503).
    #[error("IPFS node unavailable: {0}")]
    Unavailable(String),
    #[error("block {0} not found before the timeout")]
    NotFound(Box<Cid>),
    #[error("block returned for {expected} hashes to {actual}: refusing it")]
    HashMismatch {
        expected: Box<Cid>,
        actual: Box<Cid>,
    },
    #[error("unsupported CID {cid}: {reason}")]
    Unsupported { cid: Box<Cid>, reason: String },
    #[error("IPFS {operation} failed: {message}")]
    Backend {
        operation: &'static str,
        message: String,
    },
    #[error("invalid IPFS configuration: {0}")]
    Config(String),
    /// A publish reached no peer: none that the node knows of subscribes to
    /// the topic (the recipient is not connected, or its subscription was
    /// never announced to this node; see [`Ipfs::reconnect`]).
    #[error("no connected peer subscribes to pubsub topic {0:?}")]
    NoSubscribers(String),
}

/// A pubsub message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubsubMessage {
    /// Peer ID of the node that published it: the gossipsub source, which
    /// both backends authenticate (every message is signed by its
    /// publisher's libp2p key and unsigned ones are refused); empty if the
    /// backend could not tell.
    pub from: String,
    pub data: Vec<u8>,
}

/// What the node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub peer_id: String,
    /// Addresses it listens on, as multiaddrs ending in `/p2p/<peer_id>`.
    pub addresses: Vec<String>,
}

/// One IPFS node implementation.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Stores `data` as a CIDv1 sha2-256 block of `codec`, pins it, and
    /// returns the CID the node computed.
    async fn put_block(&self, codec: u64, data: Vec<u8>) -> Result<Cid, IpfsError>;
    /// Fetches a block (locally or from peers), giving up after `timeout`.
    async fn get_block(&self, cid: &Cid, timeout: Duration) -> Result<Vec<u8>, IpfsError>;
    async fn pin(&self, cid: &Cid) -> Result<(), IpfsError>;
    async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), IpfsError>;
    /// Messages on `topic` from now on, until the stream is dropped.
    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, PubsubMessage>, IpfsError>;
    async fn id(&self) -> Result<NodeInfo, IpfsError>;
    /// Dials a peer by multiaddr (with `/p2p/<peer_id>`).
    async fn connect(&self, address: &str) -> Result<(), IpfsError>;
    /// Joins the routing (the DHT) through the peers already dialled from
    /// `bootstrap`; called once at start when `routing = "dht"`.
    async fn join_routing(&self, bootstrap: &[String]) -> Result<(), IpfsError>;
    /// Connects to a peer known only by its peer ID, finding its addresses
    /// through the routing; a no-op when it is connected already.
    async fn connect_peer(&self, peer_id: &str) -> Result<(), IpfsError>;
    /// Closes every connection to the peer at `address` (a multiaddr with
    /// `/p2p/<peer_id>`) and dials it again, so that both ends exchange
    /// their pubsub subscriptions afresh.
    async fn reconnect(&self, address: &str) -> Result<(), IpfsError>;
}

/// `[ipfs]` in host.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpfsConfig {
    pub mode: Mode,
    /// Kubo mode: base URL of the RPC API.
    pub api: String,
    /// Embedded mode: listen multiaddrs.
    pub listen: Vec<String>,
    /// Peers to dial at start (multiaddrs with `/p2p/<peer_id>`); with
    /// `routing = "dht"`, where the node joins the DHT.
    pub bootstrap: Vec<String>,
    /// How peers and blocks are found beyond the dialled peers.
    pub routing: Routing,
    /// How often the bootstrap peers are dialled again while the node runs
    /// (a peer, or the IPFS node itself in kubo mode, may have restarted);
    /// 0 dials them only at start.
    pub reconnect_ms: u64,
    /// Embedded mode: repo directory; default `<data_dir>/ipfs`.
    pub repo: Option<std::path::PathBuf>,
    /// How long a block fetch may take.
    pub timeout_ms: u64,
}

/// `[ipfs] routing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Only the peers dialled (bootstrap, or named by identity documents).
    #[default]
    None,
    /// The public IPFS Kademlia DHT (`/ipfs/kad/1.0.0`): in the embedded
    /// node, a DHT server; in kubo mode, whatever routing the external node
    /// runs.
    Dht,
    /// Kubo's LAN DHT (`/ipfs/lan/kad/1.0.0`), the one Kubo nodes on
    /// private or loopback addresses form (the public one keeps only peers
    /// with public addresses). Embedded mode only.
    LanDht,
}

impl Routing {
    /// Whether the node runs a DHT.
    pub fn is_dht(self) -> bool {
        self != Routing::None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Embedded,
    Kubo,
}

impl Default for IpfsConfig {
    fn default() -> Self {
        IpfsConfig {
            mode: Mode::Embedded,
            api: "http://127.0.0.1:5001".into(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap: Vec::new(),
            routing: Routing::None,
            reconnect_ms: 5_000,
            repo: None,
            timeout_ms: 10_000,
        }
    }
}

/// The shortest time between two [`Ipfs::reconnect`]s of the same peer: a
/// burst of failing deliveries to one peer resets its connection once.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(10);

/// The node's IPFS facility.
#[derive(Clone)]
pub struct Ipfs {
    backend: Arc<dyn Backend>,
    timeout: Duration,
    routing: Routing,
    /// When each peer (by the text of its `/p2p/` address suffix) was last
    /// reconnected.
    reconnected: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Ipfs {
    /// Starts (embedded) or connects to (kubo) the configured node and dials
    /// the bootstrap peers.
    pub async fn open(config: &IpfsConfig, data_dir: &Path) -> Result<Ipfs, IpfsError> {
        if config.routing.is_dht() && config.bootstrap.is_empty() {
            return Err(IpfsError::Config(
                "a DHT routing needs at least one bootstrap peer: the node joins the DHT through them \
                 (docs/ipfs.md lists the public IPFS bootstrap peers)"
                    .into(),
            ));
        }
        if config.mode == Mode::Kubo && config.routing == Routing::LanDht {
            return Err(IpfsError::Config(
                "routing = \"lan-dht\" is for the embedded node; in kubo mode the external node routes \
                 (use routing = \"dht\")"
                    .into(),
            ));
        }
        let backend: Arc<dyn Backend> = match config.mode {
            Mode::Kubo => Arc::new(kubo::KuboClient::new(&config.api)?),
            #[cfg(feature = "embedded")]
            Mode::Embedded => {
                let repo = config.repo.clone().unwrap_or_else(|| data_dir.join("ipfs"));
                Arc::new(embedded::EmbeddedNode::start(config, &repo).await?)
            }
            #[cfg(not(feature = "embedded"))]
            Mode::Embedded => {
                let _ = data_dir;
                return Err(IpfsError::Config(
                    "mode \"embedded\" needs milagro built with the `embedded-ipfs` feature; use mode = \"kubo\"".into(),
                ));
            }
        };
        let mut ipfs = Ipfs::with_backend(backend, Duration::from_millis(config.timeout_ms));
        ipfs.routing = config.routing;
        for peer in &config.bootstrap {
            if let Err(e) = ipfs.backend.connect(peer).await {
                tracing::warn!(peer = %peer, "bootstrap peer not reached: {e}");
            }
        }
        if config.routing.is_dht() {
            // Not fatal: the DHT fills in as peers come and go.
            if let Err(e) = ipfs.backend.join_routing(&config.bootstrap).await {
                tracing::warn!("joining the DHT: {e}");
            }
        }
        Ok(ipfs)
    }

    /// Keeps dialling the bootstrap peers every `reconnect_ms` for as long
    /// as it runs; a peer already connected costs one check. Logs when a
    /// peer is lost and when it is reached again, not at every attempt.
    pub async fn keep_connected(&self, config: &IpfsConfig) {
        if config.reconnect_ms == 0 || config.bootstrap.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(config.reconnect_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unreached = std::collections::HashSet::new();
        loop {
            tick.tick().await;
            for peer in &config.bootstrap {
                match self.backend.connect(peer).await {
                    Ok(()) if unreached.remove(peer) => {
                        tracing::info!(peer = %peer, "bootstrap peer reached again");
                    }
                    Ok(()) => {}
                    Err(e) if unreached.insert(peer.clone()) => {
                        tracing::warn!(peer = %peer, "bootstrap peer unreachable, retrying: {e}");
                    }
                    Err(_) => {}
                }
            }
        }
    }

    pub fn with_backend(backend: Arc<dyn Backend>, timeout: Duration) -> Ipfs {
        Ipfs {
            backend,
            timeout,
            routing: Routing::None,
            reconnected: Arc::default(),
        }
    }

    /// Stores and pins a block; the CID is computed here and must match the node's.
    pub async fn put(&self, codec: u64, data: Vec<u8>) -> Result<Cid, IpfsError> {
        let expected = cid_v1(codec, &data);
        let stored = self.backend.put_block(codec, data).await?;
        if stored != expected {
            return Err(IpfsError::HashMismatch {
                expected: Box::new(expected),
                actual: Box::new(stored),
            });
        }
        Ok(expected)
    }

    /// Fetches a block and checks that it hashes to `cid`.
    pub async fn get(&self, cid: &Cid) -> Result<Vec<u8>, IpfsError> {
        if cid.hash().code() != SHA2_256 {
            return Err(IpfsError::Unsupported {
                cid: Box::new(*cid),
                reason: "only sha2-256 multihashes are accepted".into(),
            });
        }
        let data = self.backend.get_block(cid, self.timeout).await?;
        let actual = cid_v1(cid.codec(), &data);
        if actual.hash() != cid.hash() {
            return Err(IpfsError::HashMismatch {
                expected: Box::new(*cid),
                actual: Box::new(actual),
            });
        }
        Ok(data)
    }

    pub async fn pin(&self, cid: &Cid) -> Result<(), IpfsError> {
        self.backend.pin(cid).await
    }

    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), IpfsError> {
        self.backend.publish(topic, data).await
    }

    pub async fn subscribe(
        &self,
        topic: &str,
    ) -> Result<BoxStream<'static, PubsubMessage>, IpfsError> {
        self.backend.subscribe(topic).await
    }

    pub async fn id(&self) -> Result<NodeInfo, IpfsError> {
        self.backend.id().await
    }

    pub async fn connect(&self, address: &str) -> Result<(), IpfsError> {
        self.backend.connect(address).await
    }

    /// Makes sure this node is connected to the peer `peer_id`, looking its
    /// addresses up in the DHT if it is not; `Ok` at once when routing is
    /// off (the caller then dials the addresses it was given). Whoever
    /// answers at the addresses found must prove the peer ID in the
    /// transport handshake, so a forged DHT record yields no connection,
    /// never a connection to the wrong peer.
    pub async fn reach(&self, peer_id: &str) -> Result<(), IpfsError> {
        if self.routing.is_dht() {
            self.backend.connect_peer(peer_id).await
        } else {
            Ok(())
        }
    }

    /// Drops the connection to a peer and dials it again at the first of
    /// `addresses` that answers: the peer is the one the first address ends
    /// in (`/p2p/<peer_id>`), and addresses of any other peer are ignored.
    /// At most once per [`RECONNECT_INTERVAL`] per peer, and `Ok(false)`
    /// when skipped for that reason. Callers must know that the peer is
    /// the one they mean: this closes working connections (the transport
    /// resets only peers proven to act for an identity, never on the word
    /// of an identity document).
    ///
    /// Why: libp2p's gossipsub announces this node's subscriptions to a peer
    /// only on the first connection to it. A peer that restarts with the same
    /// peer ID and reconnects before this node has reaped the dead connection
    /// never learns them, so it cannot publish to this node (and vice versa)
    /// until every connection between the two is closed. Callers that see
    /// [`IpfsError::NoSubscribers`] or unanswered deliveries use this.
    pub async fn reconnect(&self, addresses: &[String]) -> Result<bool, IpfsError> {
        let Some(peer) = addresses
            .first()
            .and_then(|address| address.rsplit_once("/p2p/"))
            .map(|(_, peer)| peer.to_string())
        else {
            return Err(IpfsError::Config(
                "no peer address ending in /p2p/<peer_id> to reconnect to".into(),
            ));
        };
        {
            let mut reconnected = self.reconnected.lock().expect("reconnect lock");
            let now = Instant::now();
            if reconnected
                .get(&peer)
                .is_some_and(|at| now.duration_since(*at) < RECONNECT_INTERVAL)
            {
                return Ok(false);
            }
            reconnected.retain(|_, at| now.duration_since(*at) < RECONNECT_INTERVAL);
            reconnected.insert(peer.clone(), now);
        }
        let mut last_error = None;
        let own = addresses
            .iter()
            .filter(|address| address.rsplit_once("/p2p/").map(|(_, p)| p) == Some(peer.as_str()));
        for address in own {
            match self.backend.reconnect(address).await {
                Ok(()) => {
                    tracing::info!(%peer, %address, "reconnected to peer");
                    return Ok(true);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one address was tried"))
    }
}
