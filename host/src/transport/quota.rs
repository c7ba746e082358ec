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

//! Per-sender quotas on what other nodes can make this node store.
//!
//! Anyone can make an identity and send envelopes; every envelope accepted
//! is kept (the inbox is the audit trail) and handed to a plugin, which may
//! keep more (early releases, DKG deals, D-TA replies). The inbox admits an
//! envelope of a sender only while that sender is within:
//!
//! - **pending**: envelopes accepted and not yet processed, by count and
//!   bytes (a flood cannot pile up faster than the plugins work through it);
//! - **stored**: envelopes accepted in the current window (`window_ms`),
//!   by count and bytes: what one sender can add to the disk per window,
//!   plugin state included, since plugins store only in answer to envelopes;
//! - **identities**: identities not seen before that one delivering peer
//!   (the libp2p peer a pubsub message came from; over HTTP, the client
//!   address of `POST /v1/inbox` or `GET /v1/identity/{cid}`) makes this
//!   node resolve, fetch and cache per window.
//!
//! The sender is counted only once its envelope was accepted (signature
//! checked), so a forged envelope naming someone else cannot spend their
//! quota; the check before acceptance and the charge after it are separate
//! steps, so concurrent deliveries of one sender can overshoot a limit by
//! as many as are in flight at once. This node's own envelopes are exempt.
//! Refusals are counted in [`REFUSED`] by quota.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use milagro_proto::Cid;
use serde::Deserialize;

/// Prometheus counter of envelopes refused for being over a quota, by `quota`.
pub const REFUSED: &str = "milagro_quota_refused_total";

/// `[transport.quota]` in host.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Envelopes of one sender accepted and not yet processed.
    pub pending_per_sender: u64,
    /// Their bytes.
    pub pending_bytes_per_sender: u64,
    /// Envelopes of one sender accepted per window.
    pub stored_per_sender: u64,
    /// Their bytes.
    pub stored_bytes_per_sender: u64,
    /// New identities one delivering peer (a libp2p peer, or over HTTP a
    /// client address) may make this node resolve per window.
    pub new_identities_per_peer: u64,
    /// Length of the window of the `stored` and `identities` quotas.
    pub window_ms: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            pending_per_sender: 256,
            pending_bytes_per_sender: 64 * 1024 * 1024,
            stored_per_sender: 100_000,
            stored_bytes_per_sender: 1024 * 1024 * 1024,
            new_identities_per_peer: 256,
            window_ms: 60 * 60 * 1000,
        }
    }
}

/// Which quota refused an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Pending,
    PendingBytes,
    Stored,
    StoredBytes,
    Identities,
}

impl Quota {
    /// The `quota` label of [`REFUSED`].
    pub fn label(self) -> &'static str {
        match self {
            Quota::Pending => "pending",
            Quota::PendingBytes => "pending_bytes",
            Quota::Stored => "stored",
            Quota::StoredBytes => "stored_bytes",
            Quota::Identities => "identities",
        }
    }
}

/// An envelope refused for being over a quota.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{who} is over its {} quota ({used} of {limit}{}); refused", .quota.label(), .quota.unit())]
pub struct OverQuota {
    pub quota: Quota,
    /// The sender (or, for [`Quota::Identities`], the delivering peer).
    pub who: String,
    pub used: u64,
    pub limit: u64,
}

impl Quota {
    fn unit(self) -> &'static str {
        match self {
            Quota::Pending => "",
            Quota::PendingBytes => " bytes",
            Quota::Stored => " per window",
            Quota::StoredBytes => " bytes per window",
            Quota::Identities => " new identities per window",
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Usage {
    count: u64,
    bytes: u64,
}

struct State {
    pending: HashMap<Cid, Usage>,
    stored: HashMap<Cid, Usage>,
    identities: HashMap<String, u64>,
    window_started: Instant,
}

/// The quota book of one node.
pub struct Quotas {
    config: QuotaConfig,
    exempt: Cid,
    state: Mutex<State>,
}

impl Quotas {
    /// Quotas for every sender but `exempt` (this node).
    pub fn new(config: QuotaConfig, exempt: Cid) -> Quotas {
        Quotas {
            config,
            exempt,
            state: Mutex::new(State {
                pending: HashMap::new(),
                stored: HashMap::new(),
                identities: HashMap::new(),
                window_started: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().expect("quota lock");
        let window = Duration::from_millis(self.config.window_ms.max(1));
        if state.window_started.elapsed() >= window {
            state.stored.clear();
            state.identities.clear();
            state.window_started = Instant::now();
        }
        state
    }

    fn refuse(quota: Quota, who: String, used: u64, limit: u64) -> OverQuota {
        metrics::counter!(REFUSED, "quota" => quota.label()).increment(1);
        OverQuota {
            quota,
            who,
            used,
            limit,
        }
    }

    /// Whether one more envelope of `bytes` from `sender` is within its
    /// quotas (nothing is charged: see [`Quotas::charge`]).
    pub fn check(&self, sender: &Cid, bytes: u64) -> Result<(), OverQuota> {
        if *sender == self.exempt {
            return Ok(());
        }
        let state = self.lock();
        let c = &self.config;
        let pending = state.pending.get(sender).copied().unwrap_or_default();
        let stored = state.stored.get(sender).copied().unwrap_or_default();
        let checks = [
            (Quota::Pending, pending.count, 1, c.pending_per_sender),
            (
                Quota::PendingBytes,
                pending.bytes,
                bytes,
                c.pending_bytes_per_sender,
            ),
            (Quota::Stored, stored.count, 1, c.stored_per_sender),
            (
                Quota::StoredBytes,
                stored.bytes,
                bytes,
                c.stored_bytes_per_sender,
            ),
        ];
        for (quota, used, more, limit) in checks {
            if used.saturating_add(more) > limit {
                return Err(Self::refuse(quota, sender.to_string(), used, limit));
            }
        }
        Ok(())
    }

    /// Counts an accepted envelope against its sender until the returned
    /// guard is dropped (when processing ends) for `pending`, and for the
    /// window for `stored`.
    pub fn charge(&self, sender: Cid, bytes: u64) -> Pending<'_> {
        if sender != self.exempt {
            let mut guard = self.lock();
            let state = &mut *guard;
            for usage in [
                state.pending.entry(sender).or_default(),
                state.stored.entry(sender).or_default(),
            ] {
                usage.count += 1;
                usage.bytes = usage.bytes.saturating_add(bytes);
            }
        }
        Pending {
            quotas: self,
            sender,
            bytes,
        }
    }

    /// Counts a sender identity not seen before against the peer that
    /// delivered its envelope; refused once the peer is over its quota.
    pub fn new_identity(&self, peer: &str) -> Result<(), OverQuota> {
        let mut state = self.lock();
        let limit = self.config.new_identities_per_peer;
        let used = state.identities.get(peer).copied().unwrap_or(0);
        if used >= limit {
            return Err(Self::refuse(
                Quota::Identities,
                format!("peer {peer}"),
                used,
                limit,
            ));
        }
        state.identities.insert(peer.to_string(), used + 1);
        Ok(())
    }
}

/// An accepted envelope not yet processed; dropping it ends its `pending`
/// charge.
pub struct Pending<'a> {
    quotas: &'a Quotas,
    sender: Cid,
    bytes: u64,
}

impl Pending<'_> {
    /// Detaches the charge from the borrow, for a processing task of its own.
    pub fn into_owned(self, quotas: std::sync::Arc<Quotas>) -> OwnedPending {
        let owned = OwnedPending {
            quotas,
            sender: self.sender,
            bytes: self.bytes,
        };
        std::mem::forget(self);
        owned
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        release(self.quotas, &self.sender, self.bytes);
    }
}

/// [`Pending`] held by a task.
pub struct OwnedPending {
    quotas: std::sync::Arc<Quotas>,
    sender: Cid,
    bytes: u64,
}

impl Drop for OwnedPending {
    fn drop(&mut self) {
        release(&self.quotas, &self.sender, self.bytes);
    }
}

fn release(quotas: &Quotas, sender: &Cid, bytes: u64) {
    if *sender == quotas.exempt {
        return;
    }
    let mut state = quotas.state.lock().expect("quota lock");
    if let Some(usage) = state.pending.get_mut(sender) {
        usage.count = usage.count.saturating_sub(1);
        usage.bytes = usage.bytes.saturating_sub(bytes);
        if usage.count == 0 {
            state.pending.remove(sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        milagro_proto::block::cid_of(&[n])
    }

    fn config() -> QuotaConfig {
        QuotaConfig {
            pending_per_sender: 2,
            pending_bytes_per_sender: 100,
            stored_per_sender: 3,
            stored_bytes_per_sender: 1000,
            new_identities_per_peer: 2,
            window_ms: 60_000,
        }
    }

    #[test]
    fn pending_is_released_when_processing_ends_and_stored_is_not() {
        let quotas = Quotas::new(config(), cid(0));
        let (a, b) = (cid(1), cid(2));
        let first = quotas.charge(a, 10);
        let _second = quotas.charge(a, 10);
        let e = quotas.check(&a, 10).unwrap_err();
        assert_eq!(e.quota, Quota::Pending);
        assert!(e.to_string().contains("pending quota (2 of 2)"), "{e}");
        quotas.check(&b, 10).unwrap(); // another sender is not affected
        drop(first);
        quotas.check(&a, 10).unwrap();
        let _third = quotas.charge(a, 10);
        drop(_third);
        let e = quotas.check(&a, 10).unwrap_err();
        assert_eq!(e.quota, Quota::Stored, "{e}");
    }

    #[test]
    fn bytes_are_counted_and_this_node_is_exempt() {
        let quotas = Quotas::new(config(), cid(0));
        let _big = quotas.charge(cid(1), 95);
        assert_eq!(
            quotas.check(&cid(1), 10).unwrap_err().quota,
            Quota::PendingBytes
        );
        for _ in 0..10 {
            std::mem::forget(quotas.charge(cid(0), 1_000_000));
        }
        quotas.check(&cid(0), 1_000_000).unwrap();
    }

    #[test]
    fn new_identities_are_limited_per_peer_and_the_window_resets() {
        let mut c = config();
        c.window_ms = 50;
        let quotas = Quotas::new(c, cid(0));
        quotas.new_identity("peer-a").unwrap();
        quotas.new_identity("peer-a").unwrap();
        assert_eq!(
            quotas.new_identity("peer-a").unwrap_err().quota,
            Quota::Identities
        );
        quotas.new_identity("peer-b").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        quotas.new_identity("peer-a").unwrap();
    }
}
