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

//! Which libp2p peer speaks for which identity, and what a failing pubsub
//! delivery may do about its connections.
//!
//! An identity document is signed by its own key only: its `multiaddrs`
//! and `peer_id` are claims, and anyone can publish a document claiming the
//! addresses of somebody else's peers. Resetting a connection (closing it
//! and dialling again, [`milagro_ipfs::Ipfs::reconnect`]) on such a claim let
//! one envelope from a crafted identity cut this node off from its real
//! peers. So a connection is reset only to a peer proven to act for the
//! identity: the peer a pubsub message came from (gossipsub signs every
//! message with its publisher's libp2p key, and the embedded node and Kubo
//! refuse unsigned ones), either the one that just delivered, or the one
//! bound to the identity by the first delivery of a new envelope or of an
//! awaited receipt that identity signed. For any other identity the
//! advertised addresses are only dialled, which never closes a connection.
//! Either happens at most once per [`RECONNECT_INTERVAL`] per identity.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use milagro_proto::{Cid, VerifiedIdentity};

pub use milagro_ipfs::RECONNECT_INTERVAL;

/// Prometheus counter of IPFS connections reset by the transport, by
/// `peer`: `delivering` (the peer that delivered the envelope being
/// answered) or `bound` (the peer proven to act for the recipient).
pub const RESETS: &str = "milagro_ipfs_connection_resets_total";
/// Prometheus counter of connection resets the transport did not do, by
/// `reason`: `unproven` (no peer is proven to act for the identity: its
/// addresses were only dialled) or `rate_limited`.
pub const RESETS_REFUSED: &str = "milagro_ipfs_connection_resets_refused_total";

/// Identities whose peer is remembered (the oldest binding goes first).
const MAX_BINDINGS: usize = 4096;
/// Advertised addresses of an unproven identity dialled at most.
const MAX_DIALS: usize = 4;

/// What to do about an identity whose pubsub delivery failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Close the connections to this proven peer and dial it at these of
    /// the identity's addresses (all ending in `/p2p/<peer>`).
    Reset {
        peer: String,
        addresses: Vec<String>,
        delivering: bool,
    },
    /// Only dial these addresses (a no-op for a peer already connected).
    Dial(Vec<String>),
    /// Nothing: this identity was handled less than an interval ago.
    RateLimited,
}

#[derive(Default)]
struct Book {
    /// Identity -> (peer, when bound).
    bound: HashMap<Cid, (String, Instant)>,
    /// Identity -> when last handled.
    handled: HashMap<Cid, Instant>,
}

/// Bindings of identities to peers, and the per-identity rate limit.
#[derive(Default)]
pub struct Peers {
    book: Mutex<Book>,
    interval: Option<Duration>,
}

/// The peer ID an address ends in (`.../p2p/<peer>`).
fn peer_of(address: &str) -> Option<&str> {
    address.rsplit_once("/p2p/").map(|(_, peer)| peer)
}

impl Peers {
    fn interval(&self) -> Duration {
        self.interval.unwrap_or(RECONNECT_INTERVAL)
    }

    /// Records that `peer` delivered something `identity` signed and this
    /// node had not seen (a new envelope, an awaited receipt).
    pub fn bind(&self, identity: Cid, peer: &str) {
        if peer.is_empty() {
            return;
        }
        let mut book = self.book.lock().expect("peers lock");
        if book.bound.len() >= MAX_BINDINGS && !book.bound.contains_key(&identity) {
            let oldest = book
                .bound
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                book.bound.remove(&oldest);
            }
        }
        book.bound
            .insert(identity, (peer.to_string(), Instant::now()));
    }

    /// The peer proven to act for `identity`, if any.
    pub fn bound(&self, identity: &Cid) -> Option<String> {
        let book = self.book.lock().expect("peers lock");
        book.bound.get(identity).map(|(peer, _)| peer.clone())
    }

    /// What to do for `identity` (its verified document) now that a
    /// delivery to it, or a receipt for it, found no subscriber;
    /// `delivering` is the peer that delivered the envelope being answered.
    pub fn plan(&self, identity: &VerifiedIdentity, delivering: Option<&str>) -> Plan {
        let mut book = self.book.lock().expect("peers lock");
        let now = Instant::now();
        let interval = self.interval();
        if book
            .handled
            .get(identity.id())
            .is_some_and(|at| now.duration_since(*at) < interval)
        {
            return Plan::RateLimited;
        }
        book.handled
            .retain(|_, at| now.duration_since(*at) < interval);
        book.handled.insert(*identity.id(), now);
        let advertised = &identity.endpoints().multiaddrs;
        let proven = match delivering.filter(|p| !p.is_empty()) {
            Some(peer) => Some((peer.to_string(), true)),
            None => book
                .bound
                .get(identity.id())
                .map(|(peer, _)| (peer.clone(), false)),
        };
        if let Some((peer, delivering)) = proven {
            let addresses: Vec<String> = advertised
                .iter()
                .filter(|a| peer_of(a) == Some(peer.as_str()))
                .take(MAX_DIALS)
                .cloned()
                .collect();
            if !addresses.is_empty() {
                return Plan::Reset {
                    peer,
                    addresses,
                    delivering,
                };
            }
        }
        Plan::Dial(
            advertised
                .iter()
                .filter(|a| peer_of(a).is_some())
                .take(MAX_DIALS)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use milagro_proto::{
        DecapsulationKey, EcdhKey, IdentityDraft, LocalEcdhKey, LocalSigner, Signer,
    };

    use super::*;

    /// A genuine identity document advertising `multiaddrs`.
    fn identity(multiaddrs: &[&str]) -> VerifiedIdentity {
        let signer = LocalSigner::generate().unwrap();
        let ecdh = LocalEcdhKey::generate().unwrap();
        let kem = DecapsulationKey::generate().unwrap();
        let mut draft = IdentityDraft::new(
            "t",
            1,
            signer.public_key(),
            EcdhKey::public_key(&ecdh),
            kem.public_key(),
        );
        draft.endpoints.multiaddrs = multiaddrs.iter().map(|a| a.to_string()).collect();
        draft.sign(&signer).unwrap()
    }

    const VICTIMS_PEER: &str = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWVictimsPeer";

    #[test]
    fn a_document_claiming_another_nodes_peer_never_gets_it_reset() {
        let peers = Peers::default();
        let crafted = identity(&[VICTIMS_PEER]);
        // Delivered by the attacker's own peer: only the victim's peer is
        // advertised, so it is dialled (a no-op when connected), not reset.
        assert_eq!(
            peers.plan(&crafted, Some("12D3KooWAttacker")),
            Plan::Dial(vec![VICTIMS_PEER.into()])
        );
        // Not proven by any delivery: dialled only, and once per interval.
        let other = identity(&[VICTIMS_PEER]);
        assert_eq!(
            peers.plan(&other, None),
            Plan::Dial(vec![VICTIMS_PEER.into()])
        );
        assert_eq!(peers.plan(&other, None), Plan::RateLimited);
    }

    #[test]
    fn the_proven_peer_is_reset_at_its_own_addresses_only() {
        let peers = Peers {
            interval: Some(Duration::from_millis(20)),
            ..Peers::default()
        };
        let own = "/ip4/127.0.0.1/tcp/2/p2p/12D3KooWHonest";
        let honest = identity(&[VICTIMS_PEER, own]);
        peers.bind(*honest.id(), "12D3KooWHonest");
        assert_eq!(peers.bound(honest.id()).as_deref(), Some("12D3KooWHonest"));
        assert_eq!(
            peers.plan(&honest, None),
            Plan::Reset {
                peer: "12D3KooWHonest".into(),
                addresses: vec![own.into()],
                delivering: false,
            }
        );
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            peers.plan(&honest, Some("12D3KooWHonest")),
            Plan::Reset {
                peer: "12D3KooWHonest".into(),
                addresses: vec![own.into()],
                delivering: true,
            }
        );
    }

    #[test]
    fn bindings_are_bounded() {
        let peers = Peers::default();
        for n in 0..(MAX_BINDINGS + 10) {
            let id = milagro_proto::block::cid_of(&n.to_le_bytes());
            peers.bind(id, "12D3KooWSomeone");
        }
        assert_eq!(peers.book.lock().unwrap().bound.len(), MAX_BINDINGS);
    }
}
