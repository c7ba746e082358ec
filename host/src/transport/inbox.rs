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

//! The durable inbox: every envelope addressed to this node is checked,
//! persisted, then processed once by the plugin that consumes its kind.
//!
//! Receive path: size limit -> CID and hash -> version and CBOR (the kind
//! only `[a-z0-9/._-]`) -> replay cache (sender and message id) -> clock
//! skew -> sender identity resolved and verified -> signature -> recipient
//! check -> persisted, in the transaction that checks and records the
//! sender's message id (acknowledged only now) -> opened and dispatched ->
//! marked done. Envelopes persisted but not done when the node stopped are
//! processed at the next start. Processing is idempotent by CID and message
//! id.
//!
//! Replies: an envelope that its plugin accepted is indexed under each
//! envelope it links to, its kind and its sender. A plugin waiting for a
//! reply names the nodes it may come from; a reply from any other node is
//! ignored by that wait (and counted in [`REPLY_REFUSED`]), so a stranger
//! who saw a request cannot answer it in the expected node's place.
//!
//! An envelope accepted by this run is handed to processing as accepted:
//! verified and opened once, from the bytes just persisted. Only an envelope
//! loaded from the database (left pending by an earlier run) is verified and
//! opened again. The "done" mark is a volatile write: a crash may lose it,
//! and the envelope is then processed again at the next start, which
//! processing allows.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use milagro_proto::{Block, Cid, Envelope, Limits, MessageId, VerifiedEnvelope};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::consumer::{Consumers, Delivered};
use crate::{
    chain::{ChainError, Chains},
    clock::now_ms,
    identity::{NodeIdentity, Resolver},
    store::{Namespace, Write},
};

/// Why an envelope was refused. Nothing refused is persisted or processed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("envelope refused: {0}")]
    Invalid(#[from] milagro_proto::Error),
    #[error("envelope refused: message id {id} was already used by envelope {previous}")]
    Replayed { id: String, previous: String },
    #[error(
        "envelope refused: its time is {skew_ms} ms away from this node's clock (limit {limit_ms} ms)"
    )]
    ClockSkew { skew_ms: u64, limit_ms: u64 },
    #[error("envelope refused: sender identity {sender} does not resolve or verify: {reason}")]
    Sender { sender: String, reason: String },
    #[error("envelope refused: this node ({node}) is not one of its recipients")]
    NotARecipient { node: String },
    /// The sender's key is revoked, its chain forks from a revoked one, or
    /// an `identity/rotated` or `identity/revoked` body does not check out.
    #[error("envelope refused: {0}")]
    Chain(#[from] ChainError),
    #[error("inbox storage failed: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The sender is over a quota (`transport/quota.rs`); nothing is stored.
    #[error("envelope refused: {0}")]
    OverQuota(#[from] super::quota::OverQuota),
    #[error("{0}")]
    Unavailable(String),
}

/// What happened to an accepted delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Persisted now; processing follows.
    New,
    /// Seen before (same CID): nothing to do.
    Duplicate,
}

/// An envelope the inbox holds (now or from before).
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub accepted: Accepted,
    pub cid: Cid,
    /// Who signed it (checked for a new envelope; for a duplicate, the
    /// sender named in the bytes that hash to the CID already checked).
    pub sender: Cid,
}

/// One caller of `await_reply`: whom it takes a reply from, where to send
/// it, and the replies from others it has already counted as refused.
struct Waiter {
    from: Vec<Cid>,
    tx: oneshot::Sender<Cid>,
    counted: Vec<Cid>,
}

type Waiters = HashMap<(Cid, String), Vec<Waiter>>;

/// Gauge: (envelope, kind) pairs that a caller of `await_reply` waits on.
pub const REPLY_WAITERS: &str = "milagro_reply_waiters";
/// Counter: replies a waiting plugin did not take, by reason
/// (`unexpected_sender`: signed by a node the wait did not name;
/// `not_processed`: its plugin refused it, so it was not indexed).
pub const REPLY_REFUSED: &str = "milagro_reply_refused_total";
/// Counter: envelopes the inbox refused, by reason (`kind`, `replayed`,
/// `invalid`, `clock_skew`, `sender`, `not_recipient`, `revoked`: signed by
/// a revoked key after its revocation or by a fork of a revoked chain,
/// `chain`: an `identity/rotated` or `identity/revoked` body refused).
pub const INBOX_REFUSED: &str = "milagro_inbox_refused_total";
/// Counter: envelopes whose plugin did not finish with them within
/// `[transport] envelope_timeout_ms` (recorded as failed, the handler dropped).
pub const ENVELOPE_TIMEOUTS: &str = "milagro_envelope_timeouts_total";
/// Counter: envelopes processed, by outcome (`done`: its plugin accepted
/// it; `failed`: refused, failed or timed out, see the node's log).
pub const INBOX_PROCESSED: &str = "milagro_inbox_processed_total";

/// At most this many replies from unexpected senders are read (and counted)
/// when a wait starts; the expected senders' replies are looked up directly.
const REFUSED_SCAN: usize = 64;

fn set_waiters_gauge(waiters: &Waiters) {
    metrics::gauge!(REPLY_WAITERS).set(waiters.len() as f64);
}

/// One `await_reply` call's entry in the waiters, removed however the call
/// ends: answered, timed out, failed, or dropped by its caller. (Before,
/// a reply found already stored or a wait abandoned by its caller left the
/// entry behind for the life of the process: one per order.)
struct RegisteredWaiter<'a> {
    inbox: &'a Inbox,
    key: (Cid, String),
}

impl Drop for RegisteredWaiter<'_> {
    fn drop(&mut self) {
        self.inbox.forget_closed_waiters(&self.key);
    }
}

/// An envelope as [`Inbox::accept`] checked it: verified, and its sealed
/// body (if any) opened for this node.
struct Opened {
    verified: VerifiedEnvelope,
    sealed: Option<Zeroizing<Vec<u8>>>,
}

pub struct Inbox {
    store: Namespace,
    identity: Arc<NodeIdentity>,
    resolver: Arc<Resolver>,
    chains: Arc<Chains>,
    limits: Limits,
    max_skew_ms: u64,
    /// How long a plugin's `on_envelope` may take: a handler stuck on a
    /// stranger's tarpit (or a bug) must not hold a task, or a slot of the
    /// resume queue, for ever.
    envelope_timeout: Duration,
    waiters: Mutex<Waiters>,
    /// Envelopes accepted by this run and not yet processed.
    accepted: Mutex<HashMap<Cid, Opened>>,
}

fn key(prefix: &str, cid: &Cid) -> Vec<u8> {
    [prefix.as_bytes(), &cid.to_bytes()].concat()
}

/// Appends `part` to `key`, its length first, so that no part can end
/// early or run into the next whatever bytes it holds.
fn push_part(key: &mut Vec<u8>, part: &[u8]) {
    let len = u32::try_from(part.len()).expect("key parts are far below 4 GiB");
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(part);
}

/// Splits a length-prefixed part off the front of `key`.
fn split_part(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = key.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The replay cache's key: a message id is unique per sender only, so one
/// sender's ids never get another's envelopes refused.
fn seen_key(sender: &Cid, id: &MessageId) -> Vec<u8> {
    let mut key = b"seen/".to_vec();
    push_part(&mut key, &sender.to_bytes());
    push_part(&mut key, &id.0);
    key
}

/// The reply index: `reply/`, then the linked envelope, the kind and (if
/// given) the sender, each length-prefixed; the reply's CID ends the key.
fn reply_prefix(linked: &Cid, kind: &str, sender: Option<&Cid>) -> Vec<u8> {
    let mut key = b"reply/".to_vec();
    push_part(&mut key, &linked.to_bytes());
    push_part(&mut key, kind.as_bytes());
    if let Some(sender) = sender {
        push_part(&mut key, &sender.to_bytes());
    }
    key
}

/// The sender and reply CID of a reply index key under `prefix` (the
/// prefix of a linked envelope and kind).
fn parse_reply(prefix: &[u8], key: &[u8]) -> Option<(Cid, Cid)> {
    let (sender, reply) = split_part(key.strip_prefix(prefix)?)?;
    Some((Cid::try_from(sender).ok()?, Cid::try_from(reply).ok()?))
}

/// The label of [`INBOX_REFUSED`] for a refusal; `None` for what is not the
/// envelope's fault (storage) or is counted elsewhere (quotas).
fn refusal_reason(e: &InboxError) -> Option<&'static str> {
    Some(match e {
        InboxError::Invalid(milagro_proto::Error::InvalidField { field: "kind", .. }) => "kind",
        InboxError::Invalid(_) => "invalid",
        InboxError::Replayed { .. } => "replayed",
        InboxError::ClockSkew { .. } => "clock_skew",
        InboxError::Sender { .. } => "sender",
        InboxError::NotARecipient { .. } => "not_recipient",
        InboxError::Chain(ChainError::Revoked { .. } | ChainError::Fork { .. }) => "revoked",
        InboxError::Chain(ChainError::Store(_)) => return None,
        InboxError::Chain(_) => "chain",
        InboxError::Store(_) | InboxError::OverQuota(_) | InboxError::Unavailable(_) => {
            return None;
        }
    })
}

impl Inbox {
    pub fn new(
        store: Namespace,
        identity: Arc<NodeIdentity>,
        resolver: Arc<Resolver>,
        chains: Arc<Chains>,
        limits: Limits,
        max_skew_ms: u64,
        envelope_timeout: Duration,
    ) -> Inbox {
        Inbox {
            store,
            identity,
            resolver,
            chains,
            limits,
            max_skew_ms,
            envelope_timeout,
            waiters: Mutex::new(HashMap::new()),
            accepted: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_block_bytes(&self) -> usize {
        self.limits.max_envelope_bytes
    }

    /// Whether the inbox already holds envelope `cid`.
    pub fn holds(&self, cid: &Cid) -> Result<bool, InboxError> {
        Ok(self.store.get(&key("env/", cid))?.is_some())
    }

    /// Checks and persists an envelope block. Returns once it is durable;
    /// the caller then runs [`Inbox::process`].
    pub async fn accept(&self, block: Block) -> Result<Admission, InboxError> {
        let result = self.check_and_persist(block).await;
        if let Err(e) = &result
            && let Some(reason) = refusal_reason(e)
        {
            metrics::counter!(INBOX_REFUSED, "reason" => reason).increment(1);
        }
        result
    }

    async fn check_and_persist(&self, block: Block) -> Result<Admission, InboxError> {
        let cid = *block.cid();
        let envelope = Envelope::from_block(block, &self.limits)?;
        let sender = *envelope.sender();
        if self.store.get(&key("env/", &cid))?.is_some() {
            return Ok(Admission {
                accepted: Accepted::Duplicate,
                cid,
                sender,
            });
        }
        let id = envelope.id();
        let id_key = seen_key(&sender, &id);
        let replayed = |previous: Vec<u8>| InboxError::Replayed {
            id: id.to_string(),
            previous: Cid::try_from(previous.as_slice())
                .map(|c| c.to_string())
                .unwrap_or_else(|_| "?".into()),
        };
        // Refused early, before the costly checks; the write below checks
        // again, in its own transaction.
        if let Some(previous) = self.store.get(&id_key)? {
            return Err(replayed(previous));
        }
        let skew_ms = now_ms().abs_diff(envelope.time_ms());
        if skew_ms > self.max_skew_ms {
            return Err(InboxError::ClockSkew {
                skew_ms,
                limit_ms: self.max_skew_ms,
            });
        }
        let sender_doc = self
            .resolver
            .resolve(&sender)
            .await
            .map_err(|e| InboxError::Sender {
                sender: sender.to_string(),
                reason: e.to_string(),
            })?;
        let verified = envelope.verify(&sender_doc)?;
        // A revoked key (after its revocation), or a fork of a revoked chain.
        self.chains.admit(&sender, verified.time_ms()).await?;
        // A sealed body that does not open for us (re-signed by another
        // identity, re-addressed) is refused now, not acknowledged and then
        // dropped. The plaintext (zeroized when dropped) goes to processing.
        let sealed = self.open_for_this_node(&verified)?;
        // Rotation announcements and revocations are the host's: checked
        // and applied now, so a bad one is refused, not stored.
        self.chains.accept_envelope(&verified).await?;
        // The message id is checked and recorded in the transaction that
        // persists the envelope: of two deliveries at once with one sender
        // and id, only one gets in (both passed the check above).
        let writes = [
            Write::Put(key("env/", &cid), verified.block().bytes().to_vec()),
            Write::Put(key("pending/", &cid), Vec::new()),
            Write::Put(id_key.clone(), cid.to_bytes()),
        ];
        match self.store.write_unless_present(&id_key, &writes)? {
            None => {}
            // The same envelope, delivered twice at once.
            Some(previous) if previous == cid.to_bytes() => {
                return Ok(Admission {
                    accepted: Accepted::Duplicate,
                    cid,
                    sender,
                });
            }
            Some(previous) => return Err(replayed(previous)),
        }
        tracing::debug!(%cid, kind = verified.kind(), %sender, "envelope accepted");
        self.accepted
            .lock()
            .expect("accepted lock")
            .insert(cid, Opened { verified, sealed });
        Ok(Admission {
            accepted: Accepted::New,
            cid,
            sender,
        })
    }

    /// Checks that the envelope is addressed to an ID of this node's chain
    /// (the current one or an earlier generation whose keys it keeps) and
    /// opens its sealed body, if any, with that generation's keys.
    fn open_for_this_node(
        &self,
        verified: &VerifiedEnvelope,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, InboxError> {
        let not_recipient = || InboxError::NotARecipient {
            node: self.identity.id().to_string(),
        };
        let (id, (ecdh, kem)) = self
            .identity
            .ids()
            .into_iter()
            .filter(|id| verified.is_recipient(id))
            .find_map(|id| Some((id, self.identity.decryption_keys(&id)?)))
            .ok_or_else(not_recipient)?;
        if !verified.is_sealed() {
            return Ok(None);
        }
        Ok(Some(verified.open(&id, ecdh, kem)?))
    }

    /// Whether a reply from `sender` answers a wait on `from`: one of them,
    /// or a later ID of one of their chains (already verified when its
    /// envelope was accepted).
    fn answers(&self, from: &[Cid], sender: &Cid) -> bool {
        from.contains(sender)
            || self
                .resolver
                .known_lineage(sender)
                .iter()
                .any(|id| from.contains(id))
    }

    /// Envelopes persisted but not yet processed (after a restart).
    pub fn pending(&self) -> Result<Vec<Cid>, InboxError> {
        Ok(self
            .store
            .scan(b"pending/", None, usize::MAX)?
            .into_iter()
            .filter_map(|(k, _)| Cid::try_from(&k[b"pending/".len()..]).ok())
            .collect())
    }

    /// Loads a stored envelope, re-verified, and opens it for a plugin.
    async fn load(&self, cid: &Cid) -> Result<(VerifiedEnvelope, Delivered), InboxError> {
        let bytes = self.store.get(&key("env/", cid))?.ok_or_else(|| {
            InboxError::Unavailable(format!("envelope {cid} is not in the inbox"))
        })?;
        let envelope = Envelope::decode(cid, &bytes, &self.limits)?;
        let sender = self
            .resolver
            .resolve(envelope.sender())
            .await
            .map_err(|e| InboxError::Sender {
                sender: envelope.sender().to_string(),
                reason: e.to_string(),
            })?;
        let verified = envelope.verify(&sender)?;
        let sealed = self.open_for_this_node(&verified)?;
        let delivered = Delivered::new(cid, &verified, sealed.as_deref().map(Vec::as_slice));
        Ok((verified, delivered))
    }

    /// Hands a persisted envelope to its consumer among `consumers` and
    /// marks it done. Safe to call again for the same CID: a done envelope
    /// is not processed twice.
    pub async fn process(&self, cid: Cid, consumers: &Consumers) -> Result<(), InboxError> {
        // Taken first, so no path leaves the opened envelope in memory.
        let accepted = self.accepted.lock().expect("accepted lock").remove(&cid);
        if self.store.get(&key("pending/", &cid))?.is_none() {
            return Ok(());
        }
        let (verified, delivered) = match accepted {
            Some(Opened { verified, sealed }) => {
                let delivered =
                    Delivered::new(&cid, &verified, sealed.as_deref().map(Vec::as_slice));
                (verified, delivered)
            }
            None => self.load(&cid).await?,
        };
        let kind = verified.kind().to_string();
        let outcome = match consumers.of(&kind) {
            // Applied by the host when accepted (`Chains::accept_envelope`).
            None if [milagro_proto::ROTATED_KIND, milagro_proto::REVOKED_KIND]
                .contains(&kind.as_str()) =>
            {
                Ok(())
            }
            // Taken by a plugin's `await_reply` (e.g. the mpin plugin's
            // dta/share on a node without the dta plugin).
            None if consumers.awaits(&kind) => Ok(()),
            None => Err(format!("no plugin consumes kind {kind}")),
            Some(consumer) => {
                let task = tokio::spawn(consumer.consume(delivered));
                let abort = task.abort_handle();
                match tokio::time::timeout(self.envelope_timeout, task).await {
                    Ok(Ok(r)) => r.map_err(|e| format!("plugin {} failed: {e}", consumer.name())),
                    Ok(Err(e)) => Err(format!("plugin {} failed: {e}", consumer.name())),
                    Err(_) => {
                        abort.abort();
                        metrics::counter!(ENVELOPE_TIMEOUTS).increment(1);
                        Err(format!(
                            "plugin {} did not finish within {} ms",
                            consumer.name(),
                            self.envelope_timeout.as_millis()
                        ))
                    }
                }
            }
        };
        let mut writes = vec![Write::Delete(key("pending/", &cid))];
        match &outcome {
            Ok(()) => writes.push(Write::Put(key("done/", &cid), Vec::new())),
            Err(reason) => {
                tracing::warn!(%cid, %kind, "envelope not processed: {reason}");
                writes.push(Write::Put(
                    key("failed/", &cid),
                    reason.clone().into_bytes(),
                ));
            }
        }
        // Only what its plugin accepted (or a kind only awaited) answers a
        // wait: a reply its plugin refused is not indexed.
        let sender = *verified.sender();
        if outcome.is_ok() {
            self.chains.note_counterparties(&[sender]);
            for linked in verified.links() {
                let mut reply_key = reply_prefix(linked, &kind, Some(&sender));
                reply_key.extend_from_slice(&cid.to_bytes());
                writes.push(Write::Put(reply_key, Vec::new()));
            }
        }
        // Volatile: a crash that loses this leaves the envelope pending, to
        // be processed again at the next start (see the module notes).
        self.store.write_volatile(&writes)?;
        self.notify(verified.links(), &kind, &sender, cid, outcome.is_ok());
        // Counted once indexed: a reply counted here answers a wait.
        let outcome = if outcome.is_ok() { "done" } else { "failed" };
        metrics::counter!(INBOX_PROCESSED, "outcome" => outcome).increment(1);
        Ok(())
    }

    /// Hands reply `cid` (of `kind`, from `sender`) to the waiters on the
    /// envelopes it links to that take a reply from `sender`; counts it as
    /// refused where others wait and none takes it.
    fn notify(&self, links: &[Cid], kind: &str, sender: &Cid, cid: Cid, indexed: bool) {
        let mut waiters = self.waiters.lock().expect("waiters lock");
        for linked in links {
            let key = (*linked, kind.to_string());
            let Some(list) = waiters.get_mut(&key) else {
                continue;
            };
            let waiting = list.iter().any(|w| !w.tx.is_closed());
            if !indexed {
                if waiting {
                    metrics::counter!(REPLY_REFUSED, "reason" => "not_processed").increment(1);
                }
                continue;
            }
            let (taken, left): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(list)
                .into_iter()
                .partition(|w| self.answers(&w.from, sender));
            let refused = taken.is_empty()
                && left
                    .iter()
                    .any(|w| !w.tx.is_closed() && !w.counted.contains(&cid));
            if refused {
                tracing::info!(%cid, %kind, %sender, %linked,
                    "reply ignored: its sender is not one the waiting plugin named");
                metrics::counter!(REPLY_REFUSED, "reason" => "unexpected_sender").increment(1);
            }
            for waiter in taken {
                let _ = waiter.tx.send(cid);
            }
            if left.is_empty() {
                waiters.remove(&key);
            } else {
                *list = left;
            }
        }
        set_waiters_gauge(&waiters);
    }

    /// Drops waiters that gave up, so unanswered requests do not pile up.
    fn forget_closed_waiters(&self, key: &(Cid, String)) {
        let mut waiters = self.waiters.lock().expect("waiters lock");
        if let Some(list) = waiters.get_mut(key) {
            list.retain(|w| !w.tx.is_closed());
            if list.is_empty() {
                waiters.remove(key);
            }
        }
        set_waiters_gauge(&waiters);
    }

    /// Waits up to `timeout` for an envelope of `kind` linking to `linked`
    /// and signed by one of `from` (one already received counts), and
    /// loads it for a plugin.
    pub async fn await_reply(
        &self,
        linked: Cid,
        kind: &str,
        from: &[Cid],
        timeout: Duration,
    ) -> Result<Delivered, InboxError> {
        let cid = self.wait_reply(linked, kind, from, timeout).await?;
        Ok(self.load(&cid).await?.1)
    }

    /// Waits up to `timeout` for an envelope of `kind` linking to `linked`
    /// and signed by one of `from` (one already received counts); returns
    /// its CID. Replies from other senders are ignored (and counted).
    pub async fn wait_reply(
        &self,
        linked: Cid,
        kind: &str,
        from: &[Cid],
        timeout: Duration,
    ) -> Result<Cid, InboxError> {
        if from.is_empty() {
            return Err(InboxError::Unavailable(format!(
                "a wait for a {kind} reply to {linked} names no sender"
            )));
        }
        // Declared before the channel, so dropped after its receiver.
        let registered = RegisteredWaiter {
            inbox: self,
            key: (linked, kind.to_string()),
        };
        let (tx, rx) = oneshot::channel();
        {
            // The index is read under the waiters' lock, and `notify` (which
            // runs after the reply is indexed) skips the replies counted
            // here, so a reply is counted once.
            let mut waiters = self.waiters.lock().expect("waiters lock");
            for sender in from {
                let prefix = reply_prefix(&linked, kind, Some(sender));
                let already = self.store.scan(&prefix, None, 1)?.into_iter().next();
                if let Some(cid) = already.and_then(|(k, _)| Cid::try_from(&k[prefix.len()..]).ok())
                {
                    return Ok(cid);
                }
            }
            let prefix = reply_prefix(&linked, kind, None);
            let others: Vec<(Cid, Cid)> = self
                .store
                .scan(&prefix, None, REFUSED_SCAN)?
                .iter()
                .filter_map(|(k, _)| parse_reply(&prefix, k))
                .filter(|(sender, _)| !from.contains(sender))
                .collect();
            // A later ID of an expected sender's chain answers.
            if let Some((_, reply)) = others.iter().find(|(sender, _)| self.answers(from, sender)) {
                return Ok(*reply);
            }
            let counted: Vec<Cid> = others.into_iter().map(|(_, reply)| reply).collect();
            if !counted.is_empty() {
                metrics::counter!(REPLY_REFUSED, "reason" => "unexpected_sender")
                    .increment(counted.len() as u64);
            }
            waiters
                .entry(registered.key.clone())
                .or_default()
                .push(Waiter {
                    from: from.to_vec(),
                    tx,
                    counted,
                });
            set_waiters_gauge(&waiters);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(cid)) => Ok(cid),
            _ => Err(InboxError::Unavailable(format!(
                "no {kind} reply to {linked} from {} within {} ms",
                names(from),
                timeout.as_millis()
            ))),
        }
    }
}

/// Node IDs for a message: the first few, and how many more.
fn names(ids: &[Cid]) -> String {
    const SHOWN: usize = 3;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(Cid::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}
