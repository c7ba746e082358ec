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

//! Identity chains as one principal: which node IDs are one party, the
//! newest ID of a peer's chain (learnt from its `identity/rotated`
//! announcements), revocations of earlier keys, and the counterparties this
//! node announces its own rotations and revocations to.
//!
//! Kept in the `chains` namespace of the database:
//! - `newest/<id>`: the newest ID of `id`'s chain this node has verified;
//!   senders encrypt to it and publish on its inbox topic.
//! - `revoked/<id>`: the verified [`Revocation`] of `id`'s key (the earliest
//!   one known); envelopes signed by it with a later time are refused.
//! - `peer/<id>`: a counterparty (a recipient of this node's envelopes, or
//!   the sender of one its plugin accepted), at most [`MAX_COUNTERPARTIES`].
//! - `announce/<kind>/<digest>`: an announcement (the envelope body) queued
//!   by `milagro identity rotate|revoke` on the stopped node, sent to every
//!   counterparty at the next start.
//!
//! Two IDs are one party when their verified rotation chains start at the
//! same first document. A chain that leaves a revoked document by another
//! branch than the revoker's (a fork made with the stolen key) is refused.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use milagro_proto::{
    Cid, REVOKED_KIND, ROTATED_KIND, Revocation, Rotated, VerifiedEnvelope, VerifiedIdentity,
};

use crate::{
    identity::{IdentityError, NodeIdentity, Resolver},
    store::{Namespace, StoreError, Write},
};

/// Counterparties remembered (and announced to) at most.
pub const MAX_COUNTERPARTIES: usize = 1024;

const NEWEST: &[u8] = b"newest/";
const REVOKED: &[u8] = b"revoked/";
const PEER: &[u8] = b"peer/";
const ANNOUNCE: &[u8] = b"announce/";

/// Why a chain input was refused, or a sender is no longer trusted.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("{0}")]
    Invalid(#[from] milagro_proto::Error),
    #[error("identity {id} does not resolve or verify: {reason}")]
    Resolve { id: String, reason: String },
    #[error(
        "identity/rotated names {current} as the newest document, but the envelope is signed by {sender}"
    )]
    NotSender { current: String, sender: String },
    #[error("identity/rotated: {current} does not chain to the announced ID {previous}")]
    NotChained { current: String, previous: String },
    #[error(
        "revocation of {revoked}: it is signed by {by}, which is not a later identity of its chain"
    )]
    NotSuccessor { revoked: String, by: String },
    #[error(
        "the key of {sender} was revoked from {revoked_ms} (by {by}); the envelope is dated {time_ms}"
    )]
    Revoked {
        sender: String,
        by: String,
        revoked_ms: u64,
        time_ms: u64,
    },
    #[error("{sender} succeeds {revoked}, revoked by {by}, on another branch than the revoker's")]
    Fork {
        sender: String,
        revoked: String,
        by: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key(prefix: &[u8], id: &Cid) -> Vec<u8> {
    [prefix, &id.to_bytes()].concat()
}

fn resolve_error(id: &Cid) -> impl FnOnce(IdentityError) -> ChainError + '_ {
    move |e| ChainError::Resolve {
        id: id.to_string(),
        reason: e.to_string(),
    }
}

/// Queues an announcement (the body of an envelope of `kind`) for the next
/// start of the node (see the module notes).
pub fn queue_announcement(chains: &Namespace, kind: &str, body: &[u8]) -> Result<(), StoreError> {
    let digest = hex::encode(milagro_proto::block::cid_of(body).to_bytes());
    let key = [ANNOUNCE, kind.as_bytes(), b"/", digest.as_bytes()].concat();
    chains.write(&[Write::Put(key, body.to_vec())])
}

/// Records a verified revocation, unless an earlier one of the same key is
/// already recorded (the earliest time counts).
pub fn store_revocation(chains: &Namespace, revocation: &Revocation) -> Result<(), ChainError> {
    let key = key(REVOKED, revocation.revoked());
    if let Some(existing) = chains.get(&key)?
        && let Ok(existing) = Revocation::decode(&existing)
        && existing.time_ms() <= revocation.time_ms()
    {
        return Ok(());
    }
    chains.write(&[Write::Put(key, revocation.encode()?)])?;
    Ok(())
}

/// An announcement waiting to be sent.
pub struct Announcement {
    key: Vec<u8>,
    pub kind: String,
    pub body: Vec<u8>,
}

pub struct Chains {
    store: Namespace,
    resolver: Arc<Resolver>,
    identity: Arc<NodeIdentity>,
    /// Counterparties already recorded (saves a write per envelope).
    known: Mutex<HashSet<Cid>>,
}

impl Chains {
    pub fn new(store: Namespace, resolver: Arc<Resolver>, identity: Arc<NodeIdentity>) -> Chains {
        Chains {
            store,
            resolver,
            identity,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `id` is one of this node's own chain.
    pub fn is_self(&self, id: &Cid) -> bool {
        self.identity.is_self(id)
    }

    /// `id`'s verified chain, newest first; refused if it forks from a
    /// revoked document on another branch than the revoker's.
    pub async fn lineage(&self, id: &Cid) -> Result<Vec<Cid>, ChainError> {
        let lineage = self.resolver.lineage(id).await.map_err(resolve_error(id))?;
        for revoked in lineage.iter().skip(1) {
            let Some(revocation) = self.revocation(revoked)? else {
                continue;
            };
            let by = revocation.by();
            if lineage.contains(by) {
                continue;
            }
            let revoker = self.resolver.lineage(by).await.map_err(resolve_error(by))?;
            if !revoker.contains(id) {
                return Err(ChainError::Fork {
                    sender: id.to_string(),
                    revoked: revoked.to_string(),
                    by: by.to_string(),
                });
            }
        }
        Ok(lineage)
    }

    /// Whether `a` and `b` are IDs of one verified chain (one party).
    pub async fn same_party(&self, a: &Cid, b: &Cid) -> Result<bool, ChainError> {
        if a == b {
            return Ok(true);
        }
        if self.is_self(a) || self.is_self(b) {
            return Ok(self.is_self(a) && self.is_self(b));
        }
        let a = self.lineage(a).await?;
        let b = self.lineage(b).await?;
        Ok(a.last() == b.last())
    }

    /// The newest document of `id`'s chain that this node knows: its own
    /// current document, or the one a verified announcement pointed to.
    pub async fn newest(&self, id: &Cid) -> Result<VerifiedIdentity, ChainError> {
        let mut target = if self.is_self(id) {
            *self.identity.id()
        } else {
            match self.store.get(&key(NEWEST, id))? {
                Some(bytes) => Cid::try_from(bytes.as_slice()).unwrap_or(*id),
                None => *id,
            }
        };
        // A pointer to a branch refused since (a fork of a revoked chain)
        // is not followed.
        if target != *id && !self.is_self(id) && self.lineage(&target).await.is_err() {
            target = *id;
        }
        self.resolver
            .resolve(&target)
            .await
            .map_err(resolve_error(&target))
    }

    fn revocation(&self, id: &Cid) -> Result<Option<Revocation>, ChainError> {
        match self.store.get(&key(REVOKED, id))? {
            Some(bytes) => Ok(Some(Revocation::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether an envelope that `sender` (resolved) signed at `time_ms` may
    /// be accepted: not after a known revocation of its key, and not from
    /// a fork of a revoked chain.
    pub async fn admit(&self, sender: &Cid, time_ms: u64) -> Result<(), ChainError> {
        if let Some(revocation) = self.revocation(sender)?
            && time_ms > revocation.time_ms()
        {
            return Err(ChainError::Revoked {
                sender: sender.to_string(),
                by: revocation.by().to_string(),
                revoked_ms: revocation.time_ms(),
                time_ms,
            });
        }
        self.lineage(sender).await.map(|_| ())
    }

    /// Points every earlier ID of `lineage` (newest first) at its newest,
    /// unless a pointer already goes past it on this chain, or to another
    /// branch that is still valid (the first one seen stays; a branch
    /// refused since, a fork of a revoked chain, is replaced).
    async fn record_newest(&self, lineage: &[Cid]) -> Result<(), ChainError> {
        let Some(newest) = lineage.first() else {
            return Ok(());
        };
        let mut writes = Vec::new();
        for earlier in &lineage[1..] {
            let current = self.store.get(&key(NEWEST, earlier))?;
            let behind = match current.as_deref().map(Cid::try_from) {
                Some(Ok(pointed)) if lineage.contains(&pointed) => pointed != *newest,
                Some(Ok(pointed)) => self.lineage(&pointed).await.is_err(),
                _ => true,
            };
            if behind {
                writes.push(Write::Put(key(NEWEST, earlier), newest.to_bytes()));
            }
        }
        if !writes.is_empty() {
            self.store.write(&writes)?;
        }
        Ok(())
    }

    /// Checks and applies a host-level chain envelope (`identity/rotated`,
    /// `identity/revoked`) before the inbox persists it; other kinds pass.
    pub async fn accept_envelope(&self, envelope: &VerifiedEnvelope) -> Result<(), ChainError> {
        let body = envelope.body().unwrap_or_default();
        match envelope.kind() {
            ROTATED_KIND => self.accept_rotated(envelope.sender(), body).await,
            REVOKED_KIND => self.accept_revocation(body).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    async fn accept_rotated(&self, sender: &Cid, body: &[u8]) -> Result<(), ChainError> {
        let rotated = Rotated::decode(body)?;
        if rotated.current != *sender {
            return Err(ChainError::NotSender {
                current: rotated.current.to_string(),
                sender: sender.to_string(),
            });
        }
        let lineage = self.lineage(&rotated.current).await?;
        if !lineage[1..].contains(&rotated.previous) {
            return Err(ChainError::NotChained {
                current: rotated.current.to_string(),
                previous: rotated.previous.to_string(),
            });
        }
        self.record_newest(&lineage).await
    }

    /// Verifies a revocation (signed by a later ID of the revoked ID's
    /// chain) and records it.
    pub async fn accept_revocation(&self, body: &[u8]) -> Result<Revocation, ChainError> {
        let revocation = Revocation::decode(body)?;
        let by = *revocation.by();
        let lineage = self.lineage(&by).await?;
        if !lineage[1..].contains(revocation.revoked()) {
            return Err(ChainError::NotSuccessor {
                revoked: revocation.revoked().to_string(),
                by: by.to_string(),
            });
        }
        let signer = self
            .resolver
            .resolve(&by)
            .await
            .map_err(resolve_error(&by))?;
        revocation.verify(&signer)?;
        store_revocation(&self.store, &revocation)?;
        self.record_newest(&lineage).await?;
        Ok(revocation)
    }

    /// What this node knows of `id`'s chain, for the REST view: the newest
    /// ID announced, and the revocation of its key.
    pub fn view(&self, id: &Cid) -> Result<serde_json::Value, ChainError> {
        let newest = self
            .store
            .get(&key(NEWEST, id))?
            .and_then(|b| Cid::try_from(b.as_slice()).ok())
            .map(|c| c.to_string());
        let revoked = self
            .revocation(id)?
            .map(|r| serde_json::json!({"by": r.by().to_string(), "time_ms": r.time_ms()}));
        Ok(serde_json::json!({"newest": newest, "revoked": revoked}))
    }

    /// Remembers `ids` (other than this node's) as counterparties.
    pub fn note_counterparties(&self, ids: &[Cid]) {
        let mut known = self.known.lock().expect("counterparties lock");
        let new: Vec<Write> = ids
            .iter()
            .filter(|id| {
                !self.is_self(id) && known.len() < MAX_COUNTERPARTIES && known.insert(**id)
            })
            .map(|id| Write::Put(key(PEER, id), Vec::new()))
            .collect();
        drop(known);
        // Durable (once per new counterparty and run): a node is often
        // stopped for a rotation right after talking to its peers.
        if !new.is_empty()
            && let Err(e) = self.store.write(&new)
        {
            tracing::warn!("counterparties not recorded: {e}");
        }
    }

    /// Loads the counterparties recorded by earlier runs.
    pub fn load_counterparties(&self) -> Result<Vec<Cid>, ChainError> {
        let ids: Vec<Cid> = self
            .store
            .scan(PEER, None, MAX_COUNTERPARTIES)?
            .into_iter()
            .filter_map(|(k, _)| Cid::try_from(&k[PEER.len()..]).ok())
            .filter(|id| !self.is_self(id))
            .collect();
        self.known
            .lock()
            .expect("counterparties lock")
            .extend(ids.iter().copied());
        Ok(ids)
    }

    /// Announcements queued by the CLI and not yet sent.
    pub fn pending_announcements(&self) -> Result<Vec<Announcement>, ChainError> {
        Ok(self
            .store
            .scan(ANNOUNCE, None, usize::MAX)?
            .into_iter()
            .filter_map(|(key, body)| {
                let rest = &key[ANNOUNCE.len()..];
                let slash = rest.iter().rposition(|&b| b == b'/')?;
                let kind = std::str::from_utf8(&rest[..slash]).ok()?.to_string();
                Some(Announcement { key, kind, body })
            })
            .collect())
    }

    /// Removes a sent announcement.
    pub fn announced(&self, announcement: &Announcement) -> Result<(), ChainError> {
        self.store
            .write(&[Write::Delete(announcement.key.clone())])?;
        Ok(())
    }
}
