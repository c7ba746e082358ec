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

//! Kademlia for the embedded node: the IPFS DHT as a libp2p behaviour of our
//! own, run inside rust-ipfs' swarm, and the handle the node drives it by.
//!
//! rust-ipfs has a Kademlia of its own, but it speaks only the public DHT's
//! protocol name (`/ipfs/kad/1.0.0`). Kubo runs two DHTs: that public one,
//! whose routing tables keep only peers with public addresses, and a LAN
//! one (`/ipfs/lan/kad/1.0.0`) for private and loopback addresses. A node on
//! a private network, or a test on 127.0.0.1, can only join the LAN one, so
//! the protocol is chosen by `[ipfs] routing` ("dht" or "lan-dht") here.
//!
//! The behaviour is a DHT server (it answers queries: a node that receives
//! envelopes must be reachable anyway). It keeps provider records in memory;
//! the node provides its blocks again at every start. Every answer from the
//! DHT is a claim: providers are only peers to ask (blocks are checked
//! against their CID), and addresses found for a peer ID lead only to a
//! transport handshake that must prove that peer ID.

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use connexa::prelude::swarm::derive_prelude::{Endpoint, PortUse};
use connexa::prelude::{
    dht::{
        self, Behaviour as Kademlia, Event, GetClosestPeersError, GetProvidersOk, Mode, QueryId,
        QueryResult, RecordKey,
        store::{MemoryStore, MemoryStoreConfig},
    },
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
};
use rust_ipfs::{Multiaddr, PeerId};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::Cid;

/// The public IPFS DHT's protocol.
pub const PUBLIC_PROTOCOL: &str = "/ipfs/kad/1.0.0";
/// Kubo's LAN DHT's protocol (private and loopback addresses).
pub const LAN_PROTOCOL: &str = "/ipfs/lan/kad/1.0.0";
/// Blocks this node announces at most (a record each, in memory).
const MAX_PROVIDED: usize = 100_000;
/// Providers of one block tried at most.
pub const MAX_PROVIDERS: usize = 8;
/// Bound on one DHT query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Provider announcements in flight at most: each is a DHT query, and a
/// busy node stores blocks faster than queries finish.
const CONCURRENT_PROVIDES: usize = 16;

/// What went wrong in a DHT operation, in words (the node wraps it).
pub type DhtResult<T> = Result<T, String>;

enum Command {
    AddAddress(PeerId, Multiaddr),
    Bootstrap(oneshot::Sender<DhtResult<()>>),
    Provide(Cid, oneshot::Sender<DhtResult<()>>),
    Providers(Cid, oneshot::Sender<DhtResult<Vec<PeerId>>>),
    FindPeer(PeerId, oneshot::Sender<DhtResult<Vec<Multiaddr>>>),
}

/// A query waiting for its result, and who to tell.
enum Pending {
    Bootstrap(oneshot::Sender<DhtResult<()>>),
    Provide(oneshot::Sender<DhtResult<()>>),
    Providers(oneshot::Sender<DhtResult<Vec<PeerId>>>),
    FindPeer(PeerId, oneshot::Sender<DhtResult<Vec<Multiaddr>>>),
}

/// The node's side: sends commands to the behaviour in the swarm.
#[derive(Clone)]
pub struct Dht {
    commands: mpsc::UnboundedSender<Command>,
    provides: Arc<Semaphore>,
}

/// The swarm's side (in a `Toggle`, disabled when routing is off).
pub struct DhtBehaviour {
    kad: Kademlia<MemoryStore>,
    commands: mpsc::UnboundedReceiver<Command>,
    pending: HashMap<QueryId, Pending>,
}

/// A DHT speaking `protocol` for the node `peer_id`.
pub fn new(peer_id: PeerId, protocol: &'static str) -> (Dht, Option<DhtBehaviour>) {
    let mut config = dht::Config::new(connexa::prelude::swarm::StreamProtocol::new(protocol));
    config.set_query_timeout(QUERY_TIMEOUT);
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_provided_keys: MAX_PROVIDED,
            ..MemoryStoreConfig::default()
        },
    );
    let mut kad = Kademlia::with_config(peer_id, store, config);
    kad.set_mode(Some(Mode::Server));
    let (sender, commands) = mpsc::unbounded_channel();
    let behaviour = DhtBehaviour {
        kad,
        commands,
        pending: HashMap::new(),
    };
    let dht = Dht {
        commands: sender,
        provides: Arc::new(Semaphore::new(CONCURRENT_PROVIDES)),
    };
    (dht, Some(behaviour))
}

impl Dht {
    /// Adds a peer (a bootstrap peer) to the routing table.
    pub fn add_address(&self, peer: PeerId, address: Multiaddr) -> DhtResult<()> {
        self.commands
            .send(Command::AddAddress(peer, address))
            .map_err(|_| stopped())
    }

    /// Looks this node up, which fills the routing table and announces it.
    pub async fn bootstrap(&self) -> DhtResult<()> {
        self.ask(Command::Bootstrap).await?
    }

    /// Announces this node as a provider of `cid` (keyed by its multihash,
    /// as Kubo does, so that any CID of the same bytes finds it).
    /// At most [`CONCURRENT_PROVIDES`] at a time; the others wait.
    pub async fn provide(&self, cid: Cid) -> DhtResult<()> {
        let _permit = self.provides.acquire().await.map_err(|_| stopped())?;
        self.ask(|reply| Command::Provide(cid, reply)).await?
    }

    /// The first providers of `cid` the DHT names (at most [`MAX_PROVIDERS`]);
    /// empty if it names none.
    pub async fn providers(&self, cid: Cid) -> DhtResult<Vec<PeerId>> {
        self.ask(|reply| Command::Providers(cid, reply)).await?
    }

    /// The addresses the DHT knows for `peer`; empty if none.
    pub async fn find_peer(&self, peer: PeerId) -> DhtResult<Vec<Multiaddr>> {
        self.ask(|reply| Command::FindPeer(peer, reply)).await?
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> DhtResult<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

fn stopped() -> String {
    "the node has stopped".into()
}

fn key_of(cid: &Cid) -> RecordKey {
    RecordKey::new(&cid.hash().to_bytes())
}

impl DhtBehaviour {
    fn start(&mut self, command: Command) {
        match command {
            Command::AddAddress(peer, address) => {
                self.kad.add_address(&peer, address);
            }
            Command::Bootstrap(reply) => match self.kad.bootstrap() {
                Ok(id) => self.wait(id, Pending::Bootstrap(reply)),
                Err(e) => drop(reply.send(Err(e.to_string()))),
            },
            Command::Provide(cid, reply) => match self.kad.start_providing(key_of(&cid)) {
                Ok(id) => self.wait(id, Pending::Provide(reply)),
                Err(e) => drop(reply.send(Err(format!("{e:?}")))),
            },
            Command::Providers(cid, reply) => {
                let id = self.kad.get_providers(key_of(&cid));
                self.wait(id, Pending::Providers(reply));
            }
            Command::FindPeer(peer, reply) => {
                let known = self.known_addresses(&peer);
                if known.is_empty() {
                    let id = self.kad.get_closest_peers(peer);
                    self.wait(id, Pending::FindPeer(peer, reply));
                } else {
                    let _ = reply.send(Ok(known));
                }
            }
        }
    }

    fn wait(&mut self, id: QueryId, pending: Pending) {
        self.pending.insert(id, pending);
    }

    /// `peer`'s addresses in the routing table.
    fn known_addresses(&mut self, peer: &PeerId) -> Vec<Multiaddr> {
        for bucket in self.kad.kbuckets() {
            for entry in bucket.iter() {
                if entry.node.key.preimage() == peer {
                    return entry.node.value.iter().cloned().collect();
                }
            }
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) {
        let Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        match (pending, result) {
            (Pending::Bootstrap(reply), QueryResult::Bootstrap(result)) => {
                if step.last {
                    let _ = reply.send(result.map(|_| ()).map_err(|e| format!("{e:?}")));
                } else {
                    self.pending.insert(id, Pending::Bootstrap(reply));
                }
            }
            (Pending::Provide(reply), QueryResult::StartProviding(result)) => {
                let _ = reply.send(result.map(|_| ()).map_err(|e| format!("{e:?}")));
            }
            (Pending::Providers(reply), QueryResult::GetProviders(result)) => match result {
                Ok(GetProvidersOk::FoundProviders { providers, .. }) if !providers.is_empty() => {
                    // The first that answer are enough: the fetch tries them.
                    if let Some(mut query) = self.kad.query_mut(&id) {
                        query.finish();
                    }
                    let providers: HashSet<PeerId> = providers;
                    let _ = reply.send(Ok(providers.into_iter().take(MAX_PROVIDERS).collect()));
                }
                Ok(_) if !step.last => {
                    self.pending.insert(id, Pending::Providers(reply));
                }
                Ok(_) => drop(reply.send(Ok(Vec::new()))),
                Err(e) => drop(reply.send(Err(format!("{e:?}")))),
            },
            (Pending::FindPeer(peer, reply), QueryResult::GetClosestPeers(result)) => {
                let peers = match result {
                    Ok(ok) => ok.peers,
                    Err(GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let addresses = peers
                    .into_iter()
                    .find(|info| info.peer_id == peer)
                    .map(|info| info.addrs)
                    .unwrap_or_default();
                let _ = reply.send(Ok(addresses));
            }
            (pending, _) => {
                self.pending.insert(id, pending);
            }
        }
    }
}

impl NetworkBehaviour for DhtBehaviour {
    type ConnectionHandler = THandler<Kademlia<MemoryStore>>;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.kad
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.kad
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.kad.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.kad.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.kad.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.kad
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        while let Poll::Ready(Some(command)) = self.commands.poll_recv(cx) {
            self.start(command);
        }
        loop {
            match self.kad.poll(cx) {
                Poll::Ready(ToSwarm::GenerateEvent(event)) => self.on_event(event),
                Poll::Ready(other) => {
                    return Poll::Ready(other.map_out(|_| unreachable!("handled above")));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
