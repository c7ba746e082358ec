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

//! The `embedded` backend: an in-process rust-ipfs node.
//!
//! The node keeps its blocks, pins and libp2p identity in the repo directory
//! (`blockstore/`, `datastore/` and `identity.key`, written by us: rust-ipfs
//! does not persist the keypair itself), listens on the configured tcp
//! multiaddrs, and runs identify, ping, bitswap and gossipsub; with a DHT
//! routing also Kademlia ([`crate::dht`]). Never mDNS, public bootstrap
//! peers of its own, relays or autonat. Without the DHT, peers are reached
//! only by dialing them ([`Backend::connect`], or `bootstrap` in the
//! config). With it, the node joins the DHT through its bootstrap peers,
//! provides every block it stores (again at every start), fetches a block
//! it lacks from the providers the DHT names as well as from its connected
//! peers, and finds a peer's addresses by ID ([`Backend::connect_peer`]).
//!
//! Blocks fetched from peers are cached unpinned; no garbage collector runs.
//! Pins are direct (this facility stores single blocks; it never asks a node
//! to pin a whole DAG).
//!
//! Pubsub is libp2p gossipsub: a node does not receive its own messages, and
//! a subscriber that falls more than 50 messages behind loses messages (the
//! libp2p layer's per-listener buffer). Callers must tolerate lost messages.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use connexa::prelude::{ConnexaSwarmEvent, swarm::behaviour::toggle::Toggle};
use futures::{FutureExt, Stream, StreamExt, stream::BoxStream};
use libp2p_gossipsub::PublishError;
use rust_ipfs::{
    Block, ConnectedPoint, ConnectionId, DialOpts, Ipfs as RustIpfs, Keypair, Multiaddr, PeerId,
    Protocol,
    builder::IpfsBuilder,
    p2p::{IdentifyConfiguration, PubsubConfig},
    repo::LockError,
};
use tokio::sync::Mutex;

use crate::{
    Backend, Cid, IpfsConfig, IpfsError, NodeInfo, PubsubMessage, Routing, cid_v1,
    dht::{self, Dht, DhtBehaviour},
};

/// File in the repo holding the node's libp2p keypair (protobuf encoding).
const IDENTITY_FILE: &str = "identity.key";
/// How long `start` waits for the listeners to report their addresses.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// How long `start` waits for a repo lock held by a node being stopped.
const REPO_LOCK_WAIT: Duration = Duration::from_secs(2);
/// Connections without traffic stay open this long (libp2p's default closes
/// them within seconds, which would drop the peers we were told to dial).
const IDLE_CONNECTION_TIMEOUT_SECS: u64 = 600;
/// A connection to a peer that arrives while another, older than this, is
/// up means the peer's view of the older one has diverged from ours.
const OVERLAP_GRACE: Duration = Duration::from_secs(2);
/// Largest pubsub message accepted or sent (rust-ipfs' default).
const MAX_PUBSUB_MESSAGE: usize = 2 * 1024 * 1024;

/// An in-process IPFS node.
pub struct EmbeddedNode {
    ipfs: RustIpfs,
    peer_id: PeerId,
    /// Bound on `connect` and on fetching a block for `pin`.
    timeout: Duration,
    /// The DHT, when routing is on.
    dht: Option<Dht>,
    /// Live subscription streams per topic: the node subscribes on the first
    /// and unsubscribes when the last one is dropped.
    topics: Arc<Mutex<HashMap<String, usize>>>,
}

impl EmbeddedNode {
    /// Opens (or creates) the repo at `repo`, starts the node and waits until
    /// it listens on every configured address.
    pub async fn start(config: &IpfsConfig, repo: &Path) -> Result<EmbeddedNode, IpfsError> {
        let listen = config
            .listen
            .iter()
            .map(|addr| {
                addr.parse::<Multiaddr>()
                    .map_err(|e| IpfsError::Config(format!("listen address {addr:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        std::fs::create_dir_all(repo).map_err(|e| {
            IpfsError::Config(format!("creating IPFS repo {}: {e}", repo.display()))
        })?;
        let keypair = load_or_create_identity(&repo.join(IDENTITY_FILE))?;
        let peer_id = keypair.public().to_peer_id();

        let (ipfs, dht) = start_node(&keypair, repo, &listen, config.routing).await?;
        let node = EmbeddedNode {
            ipfs,
            peer_id,
            timeout: Duration::from_millis(config.timeout_ms),
            dht,
            topics: Arc::default(),
        };
        node.wait_listening(listen.len()).await?;
        if node.dht.is_some() {
            node.announce_listen_addresses().await?;
        }
        let events = node
            .ipfs
            .swarm_events()
            .await
            .map_err(|e| backend("swarm_events", e))?;
        tokio::spawn(reset_overlapping_connections(
            node.ipfs.clone(),
            events,
            node.timeout,
        ));
        tracing::info!(peer_id = %peer_id, repo = %repo.display(), "embedded IPFS node started");
        Ok(node)
    }

    /// Waits until the node reports at least `count` listen addresses.
    async fn wait_listening(&self, count: usize) -> Result<(), IpfsError> {
        let deadline = Instant::now() + LISTEN_WAIT;
        loop {
            let addrs = self
                .ipfs
                .listening_addresses()
                .await
                .map_err(|e| backend("listening_addresses", e))?;
            if addrs.len() >= count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(IpfsError::Unavailable(format!(
                    "the embedded node listens on {} of {count} configured addresses after {LISTEN_WAIT:?} \
                     (address in use or not local?)",
                    addrs.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl EmbeddedNode {
    /// Makes the listen addresses the ones the DHT tells others: Kademlia
    /// puts only confirmed external addresses in provider records and peer
    /// answers, and Kubo drops a provider record without addresses. Nothing
    /// here runs autonat, so nothing else would confirm them.
    async fn announce_listen_addresses(&self) -> Result<(), IpfsError> {
        let addrs = self
            .ipfs
            .listening_addresses()
            .await
            .map_err(|e| backend("listening_addresses", e))?;
        for addr in addrs {
            self.ipfs
                .add_external_address(addr)
                .await
                .map_err(|e| backend("add_external_address", e))?;
        }
        Ok(())
    }
}

impl Drop for EmbeddedNode {
    /// Stops the node so that its repo lock and ports are released.
    fn drop(&mut self) {
        let ipfs = self.ipfs.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(ipfs.exit_daemon());
            }
            // The runtime is gone, and the node's tasks with it.
            Err(_) => drop(ipfs),
        }
    }
}

#[async_trait::async_trait]
impl Backend for EmbeddedNode {
    async fn put_block(&self, codec: u64, data: Vec<u8>) -> Result<Cid, IpfsError> {
        let cid = cid_v1(codec, &data);
        let block =
            Block::new(cid, data).map_err(|e| backend("put_block", format!("{cid}: {e}")))?;
        let stored = self
            .ipfs
            .put_block(&block)
            .await
            .map_err(|e| backend("put_block", format!("{cid}: {e:#}")))?;
        self.pin_local(&stored).await?;
        if let Some(dht) = &self.dht {
            // In the background: a provider record takes a DHT query, and a
            // block stored is usable at once by peers already connected.
            let dht = dht.clone();
            tokio::spawn(async move {
                if let Err(e) = dht.provide(stored).await {
                    tracing::debug!(cid = %stored, "providing to the DHT: {e}");
                }
            });
        }
        Ok(stored)
    }

    async fn get_block(&self, cid: &Cid, timeout: Duration) -> Result<Vec<u8>, IpfsError> {
        let Some(dht) = &self.dht else {
            return self.fetch(cid, &[], timeout).await;
        };
        // From the connected peers, and from the providers the DHT names,
        // whichever answers first.
        let started = Instant::now();
        let connected = self.fetch(cid, &[], timeout);
        let routed = async {
            let providers = self.dial_providers(dht, cid, started + timeout).await;
            if providers.is_empty() {
                return Err(IpfsError::NotFound(Box::new(*cid)));
            }
            self.fetch(cid, &providers, timeout.saturating_sub(started.elapsed()))
                .await
        };
        futures::future::select_ok([connected.boxed(), routed.boxed()])
            .await
            .map(|(block, _)| block)
    }

    async fn pin(&self, cid: &Cid) -> Result<(), IpfsError> {
        if self.is_pinned(cid).await? {
            return Ok(());
        }
        if self.dht.is_some() {
            // rust-ipfs' pin asks the connected peers only.
            self.get_block(cid, self.timeout).await?;
            return self.pin_local(cid).await;
        }
        let started = Instant::now();
        let pin = self.ipfs.insert_pin(cid).timeout(self.timeout);
        match tokio::time::timeout(self.timeout, pin).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) if started.elapsed() >= self.timeout => {
                Err(IpfsError::NotFound(Box::new(*cid)))
            }
            Ok(Err(e)) => Err(backend("pin", format!("{cid}: {e:#}"))),
            Err(_) => Err(IpfsError::NotFound(Box::new(*cid))),
        }
    }

    async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), IpfsError> {
        self.ipfs.pubsub_publish(topic, data).await.map_err(|e| {
            match e.downcast_ref::<connexa::error::Error>() {
                Some(connexa::error::Error::Gossipsub(
                    connexa::error::gossipsub::Error::Publish(
                        PublishError::NoPeersSubscribedToTopic,
                    ),
                )) => IpfsError::NoSubscribers(topic.to_string()),
                _ => backend("publish", format!("topic {topic:?}: {e:#}")),
            }
        })
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, PubsubMessage>, IpfsError> {
        let mut topics = self.topics.lock().await;
        // The listener first, so nothing that arrives after the subscription is missed.
        let events = self
            .ipfs
            .pubsub_listener(topic)
            .await
            .map_err(|e| backend("subscribe", format!("topic {topic:?}: {e:#}")))?;
        let count = topics.entry(topic.to_string()).or_insert(0);
        if *count == 0 {
            self.ipfs
                .pubsub_subscribe(topic)
                .await
                .map_err(|e| backend("subscribe", format!("topic {topic:?}: {e:#}")))?;
        }
        *count += 1;
        let messages = events.filter_map(|event| {
            futures::future::ready(match event {
                // Strict validation: `source` is the signed publisher; the
                // peer that forwarded the message is no proof of anything.
                connexa::prelude::GossipsubEvent::Message { message } => Some(PubsubMessage {
                    from: message.source.map(|p| p.to_string()).unwrap_or_default(),
                    data: message.data.to_vec(),
                }),
                _ => None,
            })
        });
        Ok(Box::pin(Subscription {
            inner: Box::pin(messages),
            topic: topic.to_string(),
            topics: Arc::clone(&self.topics),
            ipfs: self.ipfs.clone(),
        }))
    }

    async fn id(&self) -> Result<NodeInfo, IpfsError> {
        let addrs = self
            .ipfs
            .listening_addresses()
            .await
            .map_err(|e| backend("id", e))?;
        let addresses = addrs
            .into_iter()
            .map(|addr| with_peer_id(addr, self.peer_id).to_string())
            .collect();
        Ok(NodeInfo {
            peer_id: self.peer_id.to_string(),
            addresses,
        })
    }

    async fn connect(&self, address: &str) -> Result<(), IpfsError> {
        let (addr, peer) = self.peer_address(address)?;
        if self.is_connected(peer).await? {
            return Ok(());
        }
        let dial = DialOpts::peer_id(peer).addresses(vec![addr]).build();
        match tokio::time::timeout(self.timeout, self.ipfs.connect(dial)).await {
            Ok(Ok(_)) => Ok(()),
            // A concurrent dial to the same peer may have won.
            Ok(Err(_)) if self.is_connected(peer).await? => Ok(()),
            Ok(Err(e)) => Err(backend("connect", format!("{address}: {e:#}"))),
            Err(_) => Err(backend(
                "connect",
                format!("{address}: no connection after {:?}", self.timeout),
            )),
        }
    }

    async fn join_routing(&self, bootstrap: &[String]) -> Result<(), IpfsError> {
        let Some(dht) = &self.dht else {
            return Ok(());
        };
        for address in bootstrap {
            let (addr, peer) = self.peer_address(address)?;
            let addr: Multiaddr = addr
                .iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect();
            dht.add_address(peer, addr)
                .map_err(|e| backend("dht bootstrap", e))?;
        }
        match tokio::time::timeout(self.timeout, dht.bootstrap()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(backend("dht bootstrap", e)),
            Err(_) => {
                return Err(backend(
                    "dht bootstrap",
                    format!("not done after {:?}", self.timeout),
                ));
            }
        }
        // Provider records live in the DHT's memory: announce the blocks
        // kept from earlier runs again, in the background.
        let (ipfs, dht) = (self.ipfs.clone(), dht.clone());
        tokio::spawn(async move {
            let cids = futures::stream::iter(ipfs.refs_local().await);
            cids.for_each_concurrent(None, |cid| {
                let dht = dht.clone();
                async move {
                    if let Err(e) = dht.provide(cid).await {
                        tracing::debug!(%cid, "providing to the DHT: {e}");
                    }
                }
            })
            .await;
        });
        Ok(())
    }

    async fn connect_peer(&self, peer_id: &str) -> Result<(), IpfsError> {
        let peer: PeerId = peer_id
            .parse()
            .map_err(|e| IpfsError::Config(format!("{peer_id:?} is not a peer ID: {e}")))?;
        let Some(dht) = &self.dht else {
            return Err(IpfsError::Config(format!(
                "cannot look peer {peer} up: routing is off"
            )));
        };
        if self
            .reach_peer(dht, peer, Instant::now() + self.timeout)
            .await?
        {
            Ok(())
        } else {
            Err(backend(
                "find_peer",
                format!("{peer}: the DHT knows no address that answers as it"),
            ))
        }
    }

    async fn reconnect(&self, address: &str) -> Result<(), IpfsError> {
        let (_, peer) = self.peer_address(address)?;
        if self.is_connected(peer).await? {
            self.ipfs
                .disconnect(peer)
                .await
                .map_err(|e| backend("disconnect", format!("{peer}: {e:#}")))?;
            // `connect` must not find the closing connection still there.
            let deadline = Instant::now() + self.timeout;
            while self.is_connected(peer).await? {
                if Instant::now() >= deadline {
                    return Err(backend(
                        "disconnect",
                        format!("{peer}: still connected after {:?}", self.timeout),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.connect(address).await
    }
}

impl EmbeddedNode {
    /// Parses a peer's multiaddr, which must end in `/p2p/<peer id>` of a
    /// node other than this one.
    fn peer_address(&self, address: &str) -> Result<(Multiaddr, PeerId), IpfsError> {
        let addr: Multiaddr = address
            .parse()
            .map_err(|e| IpfsError::Config(format!("peer address {address:?}: {e}")))?;
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(IpfsError::Config(format!(
                "peer address {address:?} does not end in /p2p/<peer id>"
            )));
        };
        if peer == self.peer_id {
            return Err(IpfsError::Config(format!(
                "peer address {address:?} is this node's own"
            )));
        }
        Ok((addr, peer))
    }

    /// Fetches a block through bitswap from the connected peers and from
    /// `providers`, giving up after `timeout`.
    async fn fetch(
        &self,
        cid: &Cid,
        providers: &[PeerId],
        timeout: Duration,
    ) -> Result<Vec<u8>, IpfsError> {
        let started = Instant::now();
        let fetch = self
            .ipfs
            .get_block(cid)
            .providers(providers)
            .timeout(timeout);
        match tokio::time::timeout(timeout, fetch).await {
            Ok(Ok(block)) => Ok(block.into_inner().1.to_vec()),
            // rust-ipfs' own deadline fired first (it reports that as an error).
            Ok(Err(_)) if started.elapsed() >= timeout => Err(IpfsError::NotFound(Box::new(*cid))),
            Ok(Err(e)) => Err(backend("get_block", format!("{cid}: {e:#}"))),
            Err(_) => Err(IpfsError::NotFound(Box::new(*cid))),
        }
    }

    /// Asks the DHT for providers of `cid` and connects to those it can
    /// reach by `deadline`; returns the connected ones.
    async fn dial_providers(&self, dht: &Dht, cid: &Cid, deadline: Instant) -> Vec<PeerId> {
        let providers = match tokio::time::timeout_at(deadline.into(), dht.providers(*cid)).await {
            Ok(Ok(providers)) => providers,
            Ok(Err(e)) => {
                tracing::debug!(%cid, "finding providers: {e}");
                return Vec::new();
            }
            Err(_) => return Vec::new(),
        };
        let reached = providers
            .into_iter()
            .filter(|peer| *peer != self.peer_id)
            .map(|peer| async move {
                match self.reach_peer(dht, peer, deadline).await {
                    Ok(true) => Some(peer),
                    _ => None,
                }
            });
        futures::future::join_all(reached)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Connects to `peer` at the addresses the DHT knows for it, by
    /// `deadline`; `Ok(false)` if it knows none that answer. The noise
    /// handshake proves the peer ID, so a forged address yields nothing.
    async fn reach_peer(
        &self,
        dht: &Dht,
        peer: PeerId,
        deadline: Instant,
    ) -> Result<bool, IpfsError> {
        if peer == self.peer_id || self.is_connected(peer).await? {
            return Ok(true);
        }
        let addresses = match tokio::time::timeout_at(deadline.into(), dht.find_peer(peer)).await {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(e)) => return Err(backend("find_peer", format!("{peer}: {e}"))),
            Err(_) => return Ok(false),
        };
        if addresses.is_empty() {
            return Ok(false);
        }
        let dial = DialOpts::peer_id(peer).addresses(addresses).build();
        match tokio::time::timeout_at(deadline.into(), self.ipfs.connect(dial)).await {
            Ok(Ok(_)) => Ok(true),
            _ => self.is_connected(peer).await,
        }
    }

    async fn is_pinned(&self, cid: &Cid) -> Result<bool, IpfsError> {
        self.ipfs
            .is_pinned(cid)
            .await
            .map_err(|e| backend("pin", format!("{cid}: {e:#}")))
    }

    /// Pins a block that is in the local blockstore.
    async fn pin_local(&self, cid: &Cid) -> Result<(), IpfsError> {
        if self.is_pinned(cid).await? {
            return Ok(());
        }
        self.ipfs
            .insert_pin(cid)
            .local()
            .await
            .map_err(|e| backend("pin", format!("{cid}: {e:#}")))
    }

    async fn is_connected(&self, peer: PeerId) -> Result<bool, IpfsError> {
        self.ipfs
            .is_connected(peer)
            .await
            .map_err(|e| backend("connect", format!("{peer}: {e:#}")))
    }
}

/// The messages of one `subscribe` call; dropping it releases the topic.
struct Subscription {
    inner: BoxStream<'static, PubsubMessage>,
    topic: String,
    topics: Arc<Mutex<HashMap<String, usize>>>,
    ipfs: RustIpfs,
}

impl Stream for Subscription {
    type Item = PubsubMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PubsubMessage>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let topic = std::mem::take(&mut self.topic);
        let topics = Arc::clone(&self.topics);
        let ipfs = self.ipfs.clone();
        handle.spawn(async move {
            let mut topics = topics.lock().await;
            let Some(count) = topics.get_mut(&topic) else {
                return;
            };
            *count -= 1;
            if *count == 0 {
                topics.remove(&topic);
                if let Err(e) = ipfs.pubsub_unsubscribe(topic.as_str()).await {
                    tracing::debug!(topic = %topic, "pubsub unsubscribe: {e:#}");
                }
            }
        });
    }
}

/// Watches the node's connections and resets a peer's when a new connection
/// to it arrives while an older one (up for more than [`OVERLAP_GRACE`])
/// still stands: the peer has restarted, or lost its side of the old
/// connection, which this node has not noticed (rust-ipfs closes nothing on
/// failed pings). gossipsub announces our subscriptions only on the first
/// connection to a peer, so the newcomer would never learn them and could
/// not publish to us for as long as the old connection looks alive.
/// Closing every connection and dialling again makes both ends start
/// afresh. Connections that overlap by less (both ends dialling at once)
/// are left alone. Ends with the node.
async fn reset_overlapping_connections(
    ipfs: RustIpfs,
    mut events: BoxStream<'static, ConnexaSwarmEvent>,
    timeout: Duration,
) {
    // Per peer: when each of its connections was established, and the last
    // address we dialled it at.
    let mut connections: HashMap<PeerId, HashMap<ConnectionId, Instant>> = HashMap::new();
    let mut dialled: HashMap<PeerId, Multiaddr> = HashMap::new();
    while let Some(event) = events.next().await {
        match event {
            ConnexaSwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = endpoint {
                    dialled.insert(peer_id, address);
                }
                let now = Instant::now();
                let peer = connections.entry(peer_id).or_default();
                let stale = peer
                    .values()
                    .any(|since| now.duration_since(*since) > OVERLAP_GRACE);
                peer.insert(connection_id, now);
                if stale {
                    tracing::info!(peer = %peer_id, "a peer connected again over an older connection; resetting its connections");
                    tokio::spawn(reset_peer(
                        ipfs.clone(),
                        peer_id,
                        dialled.get(&peer_id).cloned(),
                        timeout,
                    ));
                }
            }
            ConnexaSwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                if let Some(peer) = connections.get_mut(&peer_id) {
                    peer.remove(&connection_id);
                    if peer.is_empty() {
                        connections.remove(&peer_id);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Closes every connection to `peer`, then dials it at `address` if we
/// have one (else the peer, which just dialled us, dials again).
async fn reset_peer(ipfs: RustIpfs, peer: PeerId, address: Option<Multiaddr>, timeout: Duration) {
    if let Err(e) = ipfs.disconnect(peer).await {
        tracing::debug!(%peer, "disconnect: {e:#}");
        return;
    }
    let Some(address) = address else { return };
    let deadline = Instant::now() + timeout;
    while matches!(ipfs.is_connected(peer).await, Ok(true)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dial = DialOpts::peer_id(peer).addresses(vec![address]).build();
    if let Ok(Err(e)) = tokio::time::timeout(timeout, ipfs.connect(dial)).await {
        tracing::debug!(%peer, "dialling again after the reset: {e:#}");
    }
}

/// Starts rust-ipfs on `repo`. A node of this process that was just dropped
/// releases the repo lock a moment later, so a busy lock is retried briefly.
async fn start_node(
    keypair: &Keypair,
    repo: &Path,
    listen: &[Multiaddr],
    routing: Routing,
) -> Result<(RustIpfs, Option<Dht>), IpfsError> {
    let deadline = Instant::now() + REPO_LOCK_WAIT;
    loop {
        let pubsub = PubsubConfig {
            max_transmit_size: MAX_PUBSUB_MESSAGE,
            ..Default::default()
        };
        let protocol = match routing {
            Routing::None => None,
            Routing::Dht => Some(dht::PUBLIC_PROTOCOL),
            Routing::LanDht => Some(dht::LAN_PROTOCOL),
        };
        let (handle, behaviour) = match protocol {
            Some(protocol) => {
                let (handle, behaviour) = dht::new(keypair.public().to_peer_id(), protocol);
                (Some(handle), Toggle::from(behaviour))
            }
            None => (None, None.into()),
        };
        let builder = IpfsBuilder::<Toggle<DhtBehaviour>>::with_keypair(keypair)
            .map_err(|e| IpfsError::Config(format!("identity key: {e}")))?
            .set_path(repo)
            .enable_tcp()
            .with_identify(IdentifyConfiguration {
                agent_version: format!("milagro/{}", env!("CARGO_PKG_VERSION")),
                ..Default::default()
            })
            .with_ping(Default::default())
            .with_bitswap()
            .with_pubsub(pubsub)
            .set_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT_SECS)
            .set_listening_addrs(listen.to_vec())
            .with_custom_behaviour(move |_| Ok(behaviour));
        match builder.start().await {
            Ok(ipfs) => return Ok((ipfs, handle)),
            Err(e) if matches!(e.downcast_ref::<LockError>(), Some(LockError::RepoInUse)) => {
                if Instant::now() >= deadline {
                    return Err(IpfsError::Unavailable(format!(
                        "IPFS repo {} is in use by another node (waited {REPO_LOCK_WAIT:?})",
                        repo.display()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(IpfsError::Unavailable(format!(
                    "starting the embedded node on repo {}: {e:#}",
                    repo.display()
                )));
            }
        }
    }
}

/// Loads the node's keypair from `path`, or creates one and stores it there
/// (readable by the owner only).
fn load_or_create_identity(path: &Path) -> Result<Keypair, IpfsError> {
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| IpfsError::Config(format!("identity key {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| IpfsError::Config(format!("encoding the identity key: {e}")))?;
            write_private(path, &bytes).map_err(|e| {
                IpfsError::Config(format!("writing identity key {}: {e}", path.display()))
            })?;
            Ok(keypair)
        }
        Err(e) => Err(IpfsError::Config(format!(
            "reading identity key {}: {e}",
            path.display()
        ))),
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// `addr` ending in `/p2p/<peer>`.
fn with_peer_id(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(Protocol::P2p(_)) => addr,
        _ => addr.with(Protocol::P2p(peer)),
    }
}

fn backend(operation: &'static str, message: impl std::fmt::Display) -> IpfsError {
    IpfsError::Backend {
        operation,
        message: message.to_string(),
    }
}
