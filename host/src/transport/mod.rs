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

//! The transport facility: sends envelopes to node IDs and receives the
//! envelopes addressed to this node.
//!
//! Sending signs and seals the envelope, stores and pins its block on IPFS
//! (the audit log), then delivers it to each recipient over pubsub (its
//! inbox topic) or HTTP (`POST <endpoint>/v1/inbox`), with bounded retries.
//! A delivery counts only once the recipient has persisted the envelope: the
//! HTTP answer says so, and over pubsub the recipient publishes a signed
//! [`Receipt`] on the sender's receipt topic, without which the sender
//! publishes the delivery again (pubsub itself drops messages silently).
//! Receiving goes through the [`inbox`].

pub mod consumer;
pub mod inbox;
pub mod peers;
pub mod quota;
mod receipt_wait;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use milagro_ipfs::{DAG_CBOR, Ipfs, IpfsError, PubsubMessage};
use milagro_proto::{
    Cid, EnvelopeDraft, Receipt, VerifiedIdentity, decode_delivery, encode_delivery, inbox_topic,
    receipt_topic, seal,
};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc, oneshot};

use self::{
    consumer::Consumers,
    inbox::{Accepted, Admission, Inbox, InboxError},
    peers::{Peers, Plan},
    quota::{QuotaConfig, Quotas},
    receipt_wait::ReceiptWait,
};
use crate::{
    chain::Chains,
    clock::now_ms,
    identity::{NodeIdentity, Resolver},
    outbound::Outbound,
};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("recipient {id}: {reason}")]
    Recipient { id: String, reason: String },
    #[error("cannot seal the envelope: {0}")]
    Seal(milagro_proto::Error),
    #[error("cannot store the envelope on IPFS: {0}")]
    Ipfs(#[from] milagro_ipfs::IpfsError),
    #[error("delivery failed to {0}")]
    Undelivered(String),
}

/// `[transport]` in host.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportConfig {
    /// `pubsub` (default) or `http` (to each recipient's advertised HTTP endpoint).
    pub mode: TransportMode,
    /// Largest accepted distance between an envelope's time and this node's clock.
    pub max_clock_skew_ms: u64,
    /// How long a delivery is retried before it counts as failed.
    pub delivery_timeout_ms: u64,
    /// How long a plugin may take to handle one received envelope; past it
    /// the envelope is recorded as failed and the handler dropped.
    pub envelope_timeout_ms: u64,
    /// Per-sender limits on what the inbox accepts (`[transport.quota]`).
    pub quota: QuotaConfig,
    /// HTTP mode: how long one delivery attempt may take to connect, and
    /// to be answered (each also cut at the delivery's deadline).
    pub http_connect_timeout_ms: u64,
    pub http_request_timeout_ms: u64,
    /// HTTP mode: deliver to loopback, private and link-local addresses
    /// too. Off by default: an identity document is anybody's to write, so
    /// its endpoint must not point the node at its own network.
    pub allow_private_endpoints: bool,
    /// Non-public addresses or CIDR networks deliveries may go to anyway
    /// (e.g. `["127.0.0.1"]` for nodes on one machine, `["10.1.0.0/16"]`).
    pub allowed_endpoints: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportMode {
    Pubsub,
    Http,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            mode: TransportMode::Pubsub,
            max_clock_skew_ms: 5 * 60 * 1000,
            delivery_timeout_ms: 10_000,
            envelope_timeout_ms: 120_000,
            quota: QuotaConfig::default(),
            http_connect_timeout_ms: 2_000,
            http_request_timeout_ms: 5_000,
            allow_private_endpoints: false,
            allowed_endpoints: Vec::new(),
        }
    }
}

/// What a plugin asks to send.
pub struct Outgoing<'a> {
    pub kind: &'a str,
    pub recipients: &'a [Cid],
    pub links: &'a [Cid],
    pub body: Option<&'a [u8]>,
    pub secret_body: Option<&'a [u8]>,
}

pub struct Transport {
    /// Deliveries to this node itself, for the receiver.
    local: mpsc::UnboundedSender<Cid>,
    ipfs: Ipfs,
    identity: Arc<NodeIdentity>,
    resolver: Arc<Resolver>,
    chains: Arc<Chains>,
    pub inbox: Arc<Inbox>,
    config: TransportConfig,
    /// HTTP-mode deliveries (see [`crate::outbound`]).
    http: Outbound,
    /// Pubsub deliveries waiting for their receipt, by (envelope, recipient).
    awaiting_receipts: Mutex<HashMap<(Cid, Cid), Arc<Notify>>>,
    receipt_wait: ReceiptWait,
    /// Which peer acts for which identity (what reconnects may reset).
    peers: Peers,
    /// Per-sender limits on what the inbox accepts.
    quotas: Arc<Quotas>,
}

/// Why one pubsub delivery attempt failed.
#[derive(Debug, thiserror::Error)]
enum PubsubAttempt {
    #[error("{0}")]
    Publish(IpfsError),
    #[error("published, but no receipt within {} ms", .0.as_millis())]
    NoReceipt(Duration),
}

/// Why a receipt was not sent.
#[derive(Debug, thiserror::Error)]
enum ReceiptError {
    #[error("cannot sign it: {0}")]
    Sign(milagro_proto::Error),
    #[error("{0}")]
    Publish(IpfsError),
}

/// After this many unanswered publishes in a row, a delivery resets the
/// IPFS connection to the recipient once: its receipts may be unable to
/// reach us (see [`Ipfs::reconnect`]).
const RECONNECT_AFTER_MISSED_RECEIPTS: u32 = 2;
/// Delay between delivery attempts.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// Prometheus counter of pubsub deliveries published again for want of a
/// receipt.
pub const REPUBLISHED: &str = "milagro_pubsub_republished_total";
/// How many pending envelopes a restarted node processes at once.
const RESUME_CONCURRENCY: usize = 16;
/// Delay before subscribing again to a topic.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// Removes a delivery's receipt waiter however the delivery ends.
struct AwaitingReceipt<'a> {
    transport: &'a Transport,
    key: (Cid, Cid),
    notify: Arc<Notify>,
}

impl Drop for AwaitingReceipt<'_> {
    fn drop(&mut self) {
        self.transport
            .awaiting_receipts
            .lock()
            .expect("receipts lock")
            .remove(&self.key);
    }
}

/// Envelopes this node sent to itself, accepted into its inbox and waiting
/// for [`Transport::run_receiver`], which holds the consumers, to process
/// them.
pub type LocalDeliveries = mpsc::UnboundedReceiver<Cid>;

impl Transport {
    /// The transport, and the queue of its deliveries to this node itself
    /// (for [`Transport::run_receiver`]).
    pub fn new(
        ipfs: Ipfs,
        identity: Arc<NodeIdentity>,
        resolver: Arc<Resolver>,
        chains: Arc<Chains>,
        inbox: Arc<Inbox>,
        config: TransportConfig,
        http: Outbound,
    ) -> (Transport, LocalDeliveries) {
        let quotas = Arc::new(Quotas::new(config.quota.clone(), *identity.id()));
        let (local, local_deliveries) = mpsc::unbounded_channel();
        let transport = Transport {
            local,
            ipfs,
            identity,
            resolver,
            chains,
            inbox,
            config,
            http,
            awaiting_receipts: Mutex::new(HashMap::new()),
            receipt_wait: ReceiptWait::default(),
            peers: Peers::default(),
            quotas,
        };
        (transport, local_deliveries)
    }

    /// Seals, stores and delivers an envelope; returns its CID once every
    /// recipient has it (or the delivery timeout names who does not). A
    /// recipient whose chain announced a newer ID gets the envelope as that
    /// ID: sealed to its newest keys, on its newest inbox topic.
    pub async fn send(&self, outgoing: Outgoing<'_>, now_ms: u64) -> Result<Cid, TransportError> {
        let mut recipients: Vec<VerifiedIdentity> = Vec::with_capacity(outgoing.recipients.len());
        for id in outgoing.recipients {
            let doc = self
                .chains
                .newest(id)
                .await
                .map_err(|e| TransportError::Recipient {
                    id: id.to_string(),
                    reason: e.to_string(),
                })?;
            // Two names of one chain are one recipient.
            if !recipients.iter().any(|r| r.id() == doc.id()) {
                recipients.push(doc);
            }
        }
        let ids: Vec<Cid> = recipients.iter().map(|r| *r.id()).collect();
        self.chains.note_counterparties(&ids);
        let recipient_refs: Vec<&VerifiedIdentity> = recipients.iter().collect();
        let draft = EnvelopeDraft {
            links: outgoing.links,
            body: outgoing.body,
            secret_body: outgoing.secret_body,
            ..EnvelopeDraft::new(outgoing.kind, now_ms)
        };
        let envelope = seal(
            &self.identity.signer,
            &self.identity.document,
            &recipient_refs,
            &draft,
        )
        .map_err(TransportError::Seal)?;
        let block = envelope.block().clone();
        self.ipfs.put(DAG_CBOR, block.bytes().to_vec()).await?;

        let deliveries = recipients.iter().map(|r| self.deliver(r, &block));
        let failed: Vec<String> = futures::future::join_all(deliveries)
            .await
            .into_iter()
            .zip(&recipients)
            .filter_map(|(result, r)| result.err().map(|e| format!("{} ({e})", r.id())))
            .collect();
        if failed.is_empty() {
            Ok(*block.cid())
        } else {
            Err(TransportError::Undelivered(failed.join(", ")))
        }
    }

    /// Delivers one block to one recipient, retrying until the timeout.
    async fn deliver(
        &self,
        recipient: &VerifiedIdentity,
        block: &milagro_proto::Block,
    ) -> Result<(), String> {
        if recipient.id() == self.identity.id() {
            let admission = self
                .inbox
                .accept(block.clone())
                .await
                .map_err(|e| e.to_string())?;
            if admission.accepted == Accepted::New {
                // Processed by the receiver; if it has stopped, the envelope
                // stays pending for the next start.
                let _ = self.local.send(admission.cid);
            }
            return Ok(());
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.delivery_timeout_ms);
        let pubsub = match self.config.mode {
            TransportMode::Pubsub => Some((
                encode_delivery(block).map_err(|e| e.to_string())?,
                self.await_receipt(*block.cid(), *recipient.id()),
            )),
            TransportMode::Http => None,
        };
        if pubsub.is_some() {
            self.reach(recipient).await;
        }
        let mut receipt_wait = self.receipt_wait.first();
        let mut published = 0;
        let mut missed_receipts = 0;
        let mut last_error;
        loop {
            let attempt = match &pubsub {
                Some((message, receipt)) => {
                    let started = tokio::time::Instant::now();
                    let wait = receipt_wait.min(deadline.saturating_duration_since(started));
                    receipt_wait = ReceiptWait::after(receipt_wait);
                    if published > 0 {
                        metrics::counter!(REPUBLISHED).increment(1);
                    }
                    published += 1;
                    let attempt = self.deliver_pubsub(recipient, message, receipt, wait).await;
                    match &attempt {
                        Ok(()) if published == 1 => self.receipt_wait.observe(started.elapsed()),
                        Err(PubsubAttempt::Publish(IpfsError::NoSubscribers(_))) => {
                            self.reconnect(recipient, None).await;
                        }
                        Err(PubsubAttempt::NoReceipt(_)) => {
                            missed_receipts += 1;
                            if missed_receipts == RECONNECT_AFTER_MISSED_RECEIPTS {
                                self.reconnect(recipient, None).await;
                            }
                        }
                        _ => {}
                    }
                    attempt.map_err(|e| e.to_string())
                }
                // An address the policy refuses stays refused: no retry.
                None => match self.deliver_http(recipient, block, deadline).await {
                    Err(e) if e.contains(crate::outbound::REFUSED_MARK) => return Err(e),
                    attempt => attempt,
                },
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            if tokio::time::Instant::now() + RETRY_DELAY > deadline {
                return Err(last_error);
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }

    /// Repairs the IPFS connection to the node of `identity` after pubsub
    /// to it failed (see [`Ipfs::reconnect`] for why a connection can be up
    /// while pubsub across it is not): resets the connection to a peer
    /// proven to act for it (`delivering`, the peer that delivered the
    /// envelope being answered, or the one bound to it), else only dials
    /// its advertised addresses, never closing a connection on the word of
    /// its unauthenticated document (see [`peers`]).
    async fn reconnect(&self, identity: &VerifiedIdentity, delivering: Option<&str>) {
        let id = identity.id();
        match self.peers.plan(identity, delivering) {
            Plan::Reset {
                peer,
                addresses,
                delivering,
            } => match self.ipfs.reconnect(&addresses).await {
                Ok(true) => {
                    let which = if delivering { "delivering" } else { "bound" };
                    metrics::counter!(peers::RESETS, "peer" => which).increment(1);
                }
                Ok(false) => {
                    metrics::counter!(peers::RESETS_REFUSED, "reason" => "rate_limited")
                        .increment(1);
                }
                Err(e) => tracing::debug!(%id, %peer, "IPFS reconnect failed: {e}"),
            },
            Plan::Dial(addresses) => {
                metrics::counter!(peers::RESETS_REFUSED, "reason" => "unproven").increment(1);
                for address in &addresses {
                    match self.ipfs.connect(address).await {
                        Ok(()) => break,
                        Err(e) => tracing::debug!(%id, %address, "IPFS dial failed: {e}"),
                    }
                }
            }
            Plan::RateLimited => {
                metrics::counter!(peers::RESETS_REFUSED, "reason" => "rate_limited").increment(1);
            }
        }
    }

    /// With a DHT, connects to the recipient's node before publishing to its
    /// inbox, found by the peer ID its document names (the addresses it
    /// advertises may be stale: a node restarted on another port keeps its
    /// document). Dialling a peer ID is safe on the word of a document:
    /// the transport handshake proves the peer ID, and nothing is closed.
    /// A failure only logs: the delivery's retries dial the advertised
    /// addresses too.
    async fn reach(&self, recipient: &VerifiedIdentity) {
        let Some(peer) = &recipient.endpoints().peer_id else {
            return;
        };
        if let Err(e) = self.ipfs.reach(peer).await {
            tracing::debug!(id = %recipient.id(), %peer, "finding the recipient's node: {e}");
        }
    }

    /// Registers interest in the receipt for one pubsub delivery.
    fn await_receipt(&self, envelope: Cid, recipient: Cid) -> AwaitingReceipt<'_> {
        let notify = Arc::new(Notify::new());
        self.awaiting_receipts
            .lock()
            .expect("receipts lock")
            .insert((envelope, recipient), Arc::clone(&notify));
        AwaitingReceipt {
            transport: self,
            key: (envelope, recipient),
            notify,
        }
    }

    /// Publishes a delivery once and waits up to `wait` for its receipt.
    async fn deliver_pubsub(
        &self,
        recipient: &VerifiedIdentity,
        message: &[u8],
        receipt: &AwaitingReceipt<'_>,
        wait: Duration,
    ) -> Result<(), PubsubAttempt> {
        self.ipfs
            .publish(&inbox_topic(recipient.id()), message.to_vec())
            .await
            .map_err(PubsubAttempt::Publish)?;
        tokio::time::timeout(wait, receipt.notify.notified())
            .await
            .map_err(|_| PubsubAttempt::NoReceipt(wait))
    }

    /// One HTTP delivery attempt, cut at `http_request_timeout_ms` or at
    /// `deadline`, whichever comes first.
    async fn deliver_http(
        &self,
        recipient: &VerifiedIdentity,
        block: &milagro_proto::Block,
        deadline: tokio::time::Instant,
    ) -> Result<(), String> {
        let base = recipient
            .endpoints()
            .http
            .first()
            .ok_or("its identity advertises no HTTP endpoint")?;
        let request = hyper::Request::post(format!("{}/v1/inbox", base.trim_end_matches('/')))
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .header(milagro_proto::CID_HEADER, block.cid().to_string())
            .body(Full::new(Bytes::copy_from_slice(block.bytes())))
            .map_err(|e| e.to_string())?;
        let attempt = tokio::time::Instant::now()
            + Duration::from_millis(self.config.http_request_timeout_ms);
        let response = self
            .http
            .request(request, attempt.min(deadline))
            .await
            .map_err(|e| format!("{base}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() {
            // The peer refused the envelope itself: retrying will not help,
            // but the caller still learns why.
            Err(format!("peer refused it with HTTP {status}"))
        } else {
            Err(format!("peer answered HTTP {status}"))
        }
    }

    /// Accepts a block `POST /v1/inbox` took from the client at `address`
    /// and processes it in the background with `consumers`; the address is
    /// charged for the sender identities it makes this node resolve (as a
    /// pubsub delivery is to its libp2p peer).
    pub async fn receive_over_http(
        &self,
        block: milagro_proto::Block,
        address: IpAddr,
        consumers: &Arc<Consumers>,
    ) -> Result<Admission, InboxError> {
        self.receive_from(block, Some(&address.to_string()), consumers)
            .await
    }

    /// Charges `delivering` (a libp2p peer ID or a client address) for
    /// `identity` if this node does not know it yet: resolving it fetches
    /// and stores a document a stranger chose. Over the quota: refused.
    pub fn charge_new_identity(
        &self,
        identity: &milagro_proto::Cid,
        delivering: &str,
    ) -> Result<(), quota::OverQuota> {
        if self.resolver.is_cached(identity) {
            return Ok(());
        }
        self.quotas.new_identity(delivering)
    }

    /// Accepts a block for this node, within the sender's quotas (see
    /// [`quota`]), and processes it in the background with `consumers`;
    /// `peer` is the libp2p peer that delivered the block over pubsub,
    /// charged for the sender identities this node did not know.
    async fn receive_from(
        &self,
        block: milagro_proto::Block,
        peer: Option<&str>,
        consumers: &Arc<Consumers>,
    ) -> Result<Admission, InboxError> {
        let bytes = block.bytes().len() as u64;
        // A duplicate is answered as such whatever the quotas: its sender
        // lost the first receipt. A block that does not parse is left to
        // the inbox to refuse with the reason.
        if !self.inbox.holds(block.cid())? {
            let limits = milagro_proto::Limits {
                max_envelope_bytes: self.inbox.max_block_bytes(),
                ..milagro_proto::Limits::default()
            };
            if let Ok(envelope) = milagro_proto::Envelope::from_block(block.clone(), &limits) {
                // The sender's own quotas first: an envelope they refuse is
                // never opened, so its sender is never resolved and the
                // delivering peer is not charged for it.
                let sender = envelope.sender();
                self.quotas.check(sender, bytes)?;
                if let Some(peer) = peer {
                    self.charge_new_identity(sender, peer)?;
                }
            }
        }
        let admission = self.inbox.accept(block).await?;
        if admission.accepted == Accepted::New {
            let pending = self
                .quotas
                .charge(admission.sender, bytes)
                .into_owned(Arc::clone(&self.quotas));
            let inbox = Arc::clone(&self.inbox);
            let consumers = Arc::clone(consumers);
            let cid = admission.cid;
            tokio::spawn(async move {
                if let Err(e) = inbox.process(cid, &consumers).await {
                    tracing::warn!(%cid, "processing failed: {e}");
                }
                drop(pending);
            });
        }
        Ok(admission)
    }

    /// Listens on this node's inbox and receipt topics for as long as the
    /// node runs, and resumes the envelopes an earlier run left pending once
    /// both subscriptions stand: resuming one may send replies, whose
    /// receipts arrive on the receipt topic (resuming first left a restarted
    /// node deaf to its peers, and its replies unacknowledged, for as long as
    /// the backlog took at one delivery timeout per envelope).
    ///
    /// The node listens on the inbox topic of every ID of its chain (a peer
    /// that has not learnt of a rotation still publishes on the old one),
    /// and announces what `milagro identity rotate|revoke` queued once it
    /// listens.
    pub async fn run_receiver(
        self: Arc<Self>,
        consumers: Arc<Consumers>,
        mut local: LocalDeliveries,
    ) {
        let id = *self.identity.id();
        let mut subscribed = Vec::new();
        let mut listeners: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        for chain_id in self.identity.ids() {
            let (ready, ready_rx) = oneshot::channel();
            subscribed.push(ready_rx);
            let consumers = Arc::clone(&consumers);
            listeners.push(Box::pin(Arc::clone(&self).listen(
                inbox_topic(&chain_id),
                move |this, message| this.on_delivery(message, Arc::clone(&consumers)),
                ready,
            )));
        }
        let (receipts_ready, receipts_subscribed) = oneshot::channel();
        subscribed.push(receipts_subscribed);
        listeners.push(Box::pin(Arc::clone(&self).listen(
            receipt_topic(&id),
            Self::on_receipt,
            receipts_ready,
        )));
        let resume = {
            let this = Arc::clone(&self);
            let consumers = Arc::clone(&consumers);
            async move {
                futures::future::join_all(subscribed).await;
                tokio::join!(this.resume_pending(&consumers), this.announce());
            }
        };
        let own = async {
            while let Some(cid) = local.recv().await {
                let (inbox, consumers) = (Arc::clone(&self.inbox), Arc::clone(&consumers));
                tokio::spawn(async move {
                    if let Err(e) = inbox.process(cid, &consumers).await {
                        tracing::warn!(%cid, "processing failed: {e}");
                    }
                });
            }
        };
        tokio::join!(futures::future::join_all(listeners), resume, own);
    }

    /// Sends each announcement queued by `milagro identity rotate|revoke`
    /// to every counterparty (one envelope each, so one unreachable peer
    /// does not hold up the others), then drops it from the queue.
    async fn announce(&self) {
        let counterparties = match self.chains.load_counterparties() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("counterparties not loaded: {e}");
                return;
            }
        };
        let pending = match self.chains.pending_announcements() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("queued announcements not read: {e}");
                return;
            }
        };
        for announcement in pending {
            let sends = counterparties.iter().map(|peer| {
                let outgoing = Outgoing {
                    kind: &announcement.kind,
                    recipients: std::slice::from_ref(peer),
                    links: &[],
                    body: Some(&announcement.body),
                    secret_body: None,
                };
                self.send(outgoing, now_ms())
            });
            let results = futures::future::join_all(sends).await;
            let failed: Vec<String> = results
                .into_iter()
                .filter_map(|r| r.err().map(|e| e.to_string()))
                .collect();
            let kind = &announcement.kind;
            tracing::info!(
                %kind,
                told = counterparties.len() - failed.len(),
                failed = failed.len(),
                "announced to the counterparties"
            );
            for reason in failed {
                tracing::warn!(%kind, "announcement not delivered: {reason}");
            }
            if let Err(e) = self.chains.announced(&announcement) {
                tracing::warn!(%kind, "announcement not dequeued: {e}");
            }
        }
    }

    /// Processes the envelopes accepted but not processed by an earlier run,
    /// several at a time.
    async fn resume_pending(&self, consumers: &Consumers) {
        let pending = match self.inbox.pending() {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!("pending envelopes not listed: {e}");
                return;
            }
        };
        futures::stream::iter(pending)
            .for_each_concurrent(RESUME_CONCURRENCY, |cid| async move {
                if let Err(e) = self.inbox.process(cid, consumers).await {
                    tracing::warn!(%cid, "pending envelope not processed: {e}");
                }
            })
            .await;
    }

    /// Hands every message on `topic` to `handle`, in a task of its own (a
    /// message may need an identity fetched from IPFS: one slow sender must
    /// not hold up the others), subscribing again whenever the IPFS node
    /// drops the subscription. `ready` fires once the first subscription
    /// stands.
    async fn listen<F, Fut>(self: Arc<Self>, topic: String, handle: F, ready: oneshot::Sender<()>)
    where
        F: Fn(Arc<Self>, PubsubMessage) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut ready = Some(ready);
        loop {
            match self.ipfs.subscribe(&topic).await {
                Ok(mut messages) => {
                    tracing::info!(%topic, "listening");
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    while let Some(message) = messages.next().await {
                        tokio::spawn(handle(Arc::clone(&self), message));
                    }
                    tracing::warn!(%topic, "subscription ended; subscribing again");
                }
                Err(e) => tracing::warn!(%topic, "cannot subscribe: {e}"),
            }
            tokio::time::sleep(RESUBSCRIBE_DELAY).await;
        }
    }

    /// An envelope delivered over pubsub: accept it, then tell the sender
    /// (also when it is a duplicate: the first receipt may have been lost).
    async fn on_delivery(self: Arc<Self>, message: PubsubMessage, consumers: Arc<Consumers>) {
        let block = match decode_delivery(&message.data, self.inbox.max_block_bytes()) {
            Ok(block) => block,
            Err(e) => {
                tracing::warn!(from = %message.from, "pubsub delivery refused: {e}");
                return;
            }
        };
        let admission = match self
            .receive_from(block, Some(&message.from), &consumers)
            .await
        {
            Ok(admission) => admission,
            Err(e) => {
                tracing::warn!(from = %message.from, "{e}");
                return;
            }
        };
        if admission.accepted == Accepted::New {
            // `from` is the gossipsub source, authenticated by its signature.
            self.peers.bind(admission.sender, &message.from);
        }
        let receipt = Receipt::sign(
            &self.identity.signer,
            &self.identity.document,
            &admission.cid,
        )
        .and_then(|receipt| receipt.encode());
        let published = match receipt {
            Ok(bytes) => self
                .ipfs
                .publish(&receipt_topic(&admission.sender), bytes)
                .await
                .map_err(ReceiptError::Publish),
            Err(e) => Err(ReceiptError::Sign(e)),
        };
        if let Err(e) = published {
            // The sender publishes the delivery again and gets another try.
            tracing::debug!(cid = %admission.cid, sender = %admission.sender, "receipt not sent: {e}");
            if matches!(e, ReceiptError::Publish(IpfsError::NoSubscribers(_)))
                && let Ok(sender) = self.resolver.resolve(&admission.sender).await
            {
                self.reconnect(&sender, Some(&message.from)).await;
            }
        }
    }

    /// A receipt for one of our pubsub deliveries: once its signature checks
    /// out, the delivery is done.
    async fn on_receipt(self: Arc<Self>, message: PubsubMessage) {
        let receipt = match Receipt::decode(&message.data) {
            Ok(receipt) => receipt,
            Err(e) => {
                tracing::debug!(from = %message.from, "malformed receipt: {e}");
                return;
            }
        };
        let key = (*receipt.envelope(), *receipt.recipient());
        let (exact, for_envelope) = {
            let awaiting = self.awaiting_receipts.lock().expect("receipts lock");
            let exact = awaiting.get(&key).cloned();
            let for_envelope: Vec<(Cid, Arc<Notify>)> = awaiting
                .iter()
                .filter(|((envelope, _), _)| envelope == receipt.envelope())
                .map(|((_, recipient), notify)| (*recipient, Arc::clone(notify)))
                .collect();
            (exact, for_envelope)
        };
        if exact.is_none() && for_envelope.is_empty() {
            return; // late or repeated: the delivery already ended
        }
        // A receipt from another ID than the one delivered to makes this
        // node resolve it: charged to the peer like a new sender.
        if exact.is_none()
            && let Err(over) = self.charge_new_identity(receipt.recipient(), &message.from)
        {
            tracing::debug!(from = %message.from, "receipt refused: {over}");
            return;
        }
        let verified = match self.resolver.resolve(receipt.recipient()).await {
            Ok(recipient) => receipt.verify(&recipient).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        // A recipient that rotated signs with its newest key, as its newest
        // ID: the receipt answers the delivery to any earlier ID of it.
        let notify = match exact {
            Some(notify) => notify,
            None => {
                let lineage = match self.chains.lineage(receipt.recipient()).await {
                    Ok(lineage) => lineage,
                    Err(e) => {
                        tracing::debug!(from = %message.from, "receipt refused: {e}");
                        return;
                    }
                };
                match for_envelope
                    .into_iter()
                    .find(|(recipient, _)| lineage.contains(recipient))
                {
                    Some((_, notify)) => notify,
                    None => return,
                }
            }
        };
        match verified {
            Ok(()) => {
                self.peers.bind(*receipt.recipient(), &message.from);
                notify.notify_one();
            }
            Err(e) => tracing::warn!(from = %message.from, "receipt refused: {e}"),
        }
    }
}
