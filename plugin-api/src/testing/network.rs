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

//! The test network: its nodes (identity, keys, store, keystore, inbox),
//! the plugin each runs, and the loopback transport between them.
//!
//! Envelopes are real: sealed by the sender with the protocol's `seal`,
//! decoded and verified against the sender's identity document by each
//! recipient, and opened with the recipient's keys. `send` returns once
//! every recipient has accepted the envelope into its inbox, as the host's
//! does; processing (the consuming plugin's `on_envelope`) then runs as a
//! task of its own. What the host's inbox guards against beyond that
//! (replays, clock skew, quotas, identity rotation) is not modelled: the
//! harness tests plugins, not the host.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use abi_stable::std_types::{RString, RVec};
use milagro_proto::{
    Cid, DecapsulationKey, EcdhKey, Envelope, EnvelopeDraft, IdentityDraft, Limits, LocalEcdhKey,
    LocalSigner, Signer, VerifiedEnvelope, VerifiedIdentity, seal,
};
use tokio::sync::oneshot;
use zeroize::{Zeroize, Zeroizing};

use super::{keystore::TestKeystore, store::TestStore};
use crate::{
    Error,
    abi::{OutgoingEnvelope, PluginBox, PluginDescriptor, ReceivedEnvelope},
    routing::RouteTable,
};

/// Milliseconds since the Unix epoch, as the host's clock gives them.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A CID a plugin gave as text.
pub(super) fn parse_cid(text: &str, what: &str) -> Result<Cid, Error> {
    Cid::try_from(text)
        .map_err(|e| Error::bad_request(format!("{what} {text:?} is not a CID: {e}")))
}

/// What happened to one envelope a node received, in processing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The envelope's CID.
    pub cid: String,
    /// Its kind.
    pub kind: String,
    /// The sender's node ID.
    pub sender: String,
    /// Why it was not processed (the consuming plugin's error, or no
    /// plugin consumes its kind); `None` if it was.
    pub refusal: Option<String>,
}

/// A reply a plugin accepted, indexed under an envelope it links to.
struct Reply {
    linked: Cid,
    kind: String,
    sender: Cid,
    cid: Cid,
}

/// A plugin's wait for a reply.
struct Waiter {
    linked: Cid,
    kind: String,
    from: Vec<Cid>,
    tx: oneshot::Sender<Cid>,
}

#[derive(Default)]
struct Inbox {
    accepted: HashMap<Cid, VerifiedEnvelope>,
    replies: Vec<Reply>,
    waiters: Vec<Waiter>,
    processed: Vec<Processed>,
}

/// One node of the test network.
pub(super) struct Node {
    signer: LocalSigner,
    ecdh: LocalEcdhKey,
    kem: DecapsulationKey,
    /// The beneficiary key b, if the node publishes B.
    pub(super) beneficiary: Option<Zeroizing<[u8; 32]>>,
    pub(super) identity: VerifiedIdentity,
    pub(super) store: TestStore,
    pub(super) keystore: TestKeystore,
    inbox: Mutex<Inbox>,
    log: Mutex<Vec<String>>,
}

fn key_failure(e: milagro_proto::Error) -> Error {
    Error::internal(format!("cannot make the node's keys: {e}"))
}

impl Node {
    /// A node named `name` with fresh keys, its identity document signed,
    /// its database created at `db`.
    pub(super) fn create(name: &str, beneficiary_key: bool, db: &Path) -> Result<Node, Error> {
        let signer = LocalSigner::generate().map_err(key_failure)?;
        let ecdh = LocalEcdhKey::generate().map_err(key_failure)?;
        let kem = DecapsulationKey::generate().map_err(key_failure)?;
        let mut draft = IdentityDraft::new(
            name,
            now_ms(),
            signer.public_key(),
            ecdh.public_key(),
            kem.public_key(),
        );
        let beneficiary = if beneficiary_key {
            let key = LocalSigner::generate().map_err(key_failure)?;
            draft.beneficiary_key = Some(key.public_key());
            Some(key.to_bytes())
        } else {
            None
        };
        let identity = draft.sign(&signer).map_err(key_failure)?;
        Ok(Node {
            signer,
            ecdh,
            kem,
            beneficiary,
            identity,
            store: TestStore::create(db)?,
            keystore: TestKeystore::default(),
            inbox: Mutex::default(),
            log: Mutex::default(),
        })
    }

    pub(super) fn id(&self) -> Cid {
        *self.identity.id()
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().expect("inbox lock")
    }

    pub(super) fn note(&self, line: String) {
        self.log.lock().expect("log lock").push(line);
    }

    pub(super) fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    pub(super) fn processed(&self) -> Vec<Processed> {
        self.inbox().processed.clone()
    }

    /// Checks an envelope as the host's inbox does (hash, structure, the
    /// sender's signature, this node among the recipients) and keeps it;
    /// `false` if it was already here.
    fn accept(&self, bytes: &[u8], cid: &Cid, sender: &Node) -> Result<bool, Error> {
        let refused =
            |e: milagro_proto::Error| Error::unprocessable(format!("envelope refused: {e}"));
        let envelope = Envelope::decode(cid, bytes, &Limits::default())
            .and_then(|e| e.verify(&sender.identity))
            .map_err(refused)?;
        if !envelope.is_recipient(&self.id()) {
            return Err(Error::unprocessable(format!(
                "envelope refused: this node ({}) is not one of its recipients",
                self.id()
            )));
        }
        Ok(self.inbox().accepted.insert(*cid, envelope).is_none())
    }

    /// An accepted envelope as a plugin receives it, its sealed body opened.
    pub(super) fn open(&self, cid: &Cid) -> Result<ReceivedEnvelope, Error> {
        let envelope = self
            .inbox()
            .accepted
            .get(cid)
            .cloned()
            .ok_or_else(|| Error::internal(format!("envelope {cid} is not in the inbox")))?;
        let sealed = if envelope.is_sealed() {
            let opened = envelope
                .open(&self.id(), &self.ecdh, &self.kem)
                .map_err(|e| Error::unprocessable(format!("envelope refused: {e}")))?;
            Some(secret_to_abi(opened))
        } else {
            None
        };
        Ok(ReceivedEnvelope {
            cid: cid.to_string().into(),
            kind: envelope.kind().into(),
            sender: envelope.sender().to_string().into(),
            time_unix_ms: envelope.time_ms(),
            links: envelope
                .links()
                .iter()
                .map(|l| RString::from(l.to_string()))
                .collect(),
            body: envelope.body().unwrap_or_default().to_vec().into(),
            sealed: sealed.into(),
        })
    }

    /// Records what became of envelope `cid`; if its plugin accepted it,
    /// indexes it as a reply to what it links to and hands it to the
    /// waits it answers.
    fn finish(&self, cid: Cid, refusal: Option<String>) {
        let mut inbox = self.inbox();
        let Some(envelope) = inbox.accepted.get(&cid) else {
            return;
        };
        let (kind, sender) = (envelope.kind().to_string(), *envelope.sender());
        let links = envelope.links().to_vec();
        if refusal.is_none() {
            for linked in links {
                inbox.replies.push(Reply {
                    linked,
                    kind: kind.clone(),
                    sender,
                    cid,
                });
            }
            let waiters = std::mem::take(&mut inbox.waiters);
            for waiter in waiters {
                if answers(&inbox.replies, &waiter).is_some() {
                    let _ = waiter.tx.send(cid);
                } else if !waiter.tx.is_closed() {
                    inbox.waiters.push(waiter);
                }
            }
        }
        inbox.processed.push(Processed {
            cid: cid.to_string(),
            kind,
            sender: sender.to_string(),
            refusal,
        });
    }

    /// Waits up to `timeout` for an envelope of `kind` linking to `linked`
    /// from one of `from` that this node's plugin accepted (one already
    /// here counts).
    pub(super) async fn wait_reply(
        &self,
        linked: Cid,
        kind: &str,
        from: Vec<Cid>,
        timeout: Duration,
    ) -> Result<Cid, Error> {
        if from.is_empty() {
            return Err(Error::bad_request(
                "await_reply needs at least one expected sender",
            ));
        }
        let names: Vec<String> = from.iter().map(Cid::to_string).collect();
        let waiter_rx = {
            let mut inbox = self.inbox();
            let (tx, rx) = oneshot::channel();
            let waiter = Waiter {
                linked,
                kind: kind.into(),
                from,
                tx,
            };
            if let Some(cid) = answers(&inbox.replies, &waiter) {
                return Ok(cid);
            }
            inbox.waiters.push(waiter);
            rx
        };
        match tokio::time::timeout(timeout, waiter_rx).await {
            Ok(Ok(cid)) => Ok(cid),
            _ => Err(Error::timeout(format!(
                "no {kind} reply to {linked} from {} within {} ms",
                names.join(", "),
                timeout.as_millis()
            ))),
        }
    }
}

/// The first indexed reply that answers `waiter`.
fn answers(replies: &[Reply], waiter: &Waiter) -> Option<Cid> {
    replies
        .iter()
        .find(|r| {
            r.linked == waiter.linked && r.kind == waiter.kind && waiter.from.contains(&r.sender)
        })
        .map(|r| r.cid)
}

/// A secret moved into an ABI vector (the source is wiped).
fn secret_to_abi(mut secret: Zeroizing<Vec<u8>>) -> RVec<u8> {
    RVec::from(std::mem::take(&mut *secret))
}

/// A node's plugin instance, with its descriptor and route table.
pub(super) struct Mounted {
    pub(super) plugin: PluginBox,
    pub(super) descriptor: PluginDescriptor,
    /// Route templates relative to the mount point, to operation ids.
    pub(super) routes: RouteTable<String>,
}

impl Mounted {
    fn consumes(&self, kind: &str) -> bool {
        self.descriptor.consumes.iter().any(|k| k == kind)
    }

    fn awaits(&self, kind: &str) -> bool {
        self.descriptor.awaits.iter().any(|k| k == kind)
    }
}

/// Every node and plugin of a test network.
pub(super) struct Net {
    nodes: Mutex<HashMap<Cid, Arc<Node>>>,
    plugins: Mutex<HashMap<Cid, Arc<Mounted>>>,
    /// Envelopes accepted and not yet processed, network-wide.
    busy: AtomicUsize,
    /// How long a handler, an envelope's processing or a settling may take.
    pub(super) bound: Duration,
}

impl Net {
    pub(super) fn new(bound: Duration) -> Net {
        Net {
            nodes: Mutex::default(),
            plugins: Mutex::default(),
            busy: AtomicUsize::new(0),
            bound,
        }
    }

    pub(super) fn add_node(&self, node: Arc<Node>) {
        self.nodes
            .lock()
            .expect("nodes lock")
            .insert(node.id(), node);
    }

    pub(super) fn mount(&self, id: Cid, mounted: Arc<Mounted>) {
        self.plugins
            .lock()
            .expect("plugins lock")
            .insert(id, mounted);
    }

    pub(super) fn node(&self, id: &Cid) -> Option<Arc<Node>> {
        self.nodes.lock().expect("nodes lock").get(id).cloned()
    }

    fn plugin(&self, id: &Cid) -> Option<Arc<Mounted>> {
        self.plugins.lock().expect("plugins lock").get(id).cloned()
    }

    /// Whether no envelope is waiting to be processed.
    pub(super) fn idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// Seals `outgoing` from `from`, has every recipient accept it, and
    /// starts its processing on each; returns its CID.
    pub(super) fn send(
        self: &Arc<Self>,
        from: &Node,
        mut outgoing: OutgoingEnvelope,
    ) -> Result<String, Error> {
        let sent = self.seal_and_deliver(from, &outgoing);
        // Wiped however the sending went: the sealed body is secret.
        outgoing.sealed.as_mut_slice().zeroize();
        sent
    }

    fn seal_and_deliver(
        self: &Arc<Self>,
        from: &Node,
        outgoing: &OutgoingEnvelope,
    ) -> Result<String, Error> {
        let mut recipients: Vec<Arc<Node>> = Vec::with_capacity(outgoing.recipients.len());
        for text in outgoing.recipients.iter() {
            let id = parse_cid(text, "recipient")?;
            let node = self.node(&id).ok_or_else(|| {
                Error::unprocessable(format!("recipient {id}: no node of the test network"))
            })?;
            if !recipients.iter().any(|r| r.id() == id) {
                recipients.push(node);
            }
        }
        let links = outgoing
            .links
            .iter()
            .map(|l| parse_cid(l, "link"))
            .collect::<Result<Vec<_>, _>>()?;
        let identities: Vec<&VerifiedIdentity> = recipients.iter().map(|r| &r.identity).collect();
        let draft = EnvelopeDraft {
            links: &links,
            body: (!outgoing.body.is_empty()).then_some(outgoing.body.as_slice()),
            secret_body: (!outgoing.sealed.is_empty()).then_some(outgoing.sealed.as_slice()),
            ..EnvelopeDraft::new(outgoing.kind.as_str(), now_ms())
        };
        let sealed = seal(&from.signer, &from.identity, &identities, &draft)
            .map_err(|e| Error::bad_request(format!("cannot seal the envelope: {e}")))?;
        let (cid, bytes) = (*sealed.cid(), sealed.block().bytes());
        for recipient in recipients {
            let new = recipient.accept(bytes, &cid, from).map_err(|e| {
                Error::unavailable(format!("delivery failed to {} ({e})", recipient.id()))
            })?;
            if new {
                self.busy.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(Arc::clone(self).process(recipient, cid));
            }
        }
        Ok(cid.to_string())
    }

    /// Hands envelope `cid` to the plugin of `node` that consumes its kind,
    /// within the bound, and records the outcome.
    async fn process(self: Arc<Self>, node: Arc<Node>, cid: Cid) {
        let refusal = match self.consume(&node, &cid).await {
            Ok(()) => None,
            Err(reason) => {
                node.note(format!("WARN envelope {cid} not processed: {reason}"));
                Some(reason)
            }
        };
        node.finish(cid, refusal);
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    async fn consume(&self, node: &Node, cid: &Cid) -> Result<(), String> {
        let envelope = node.open(cid).map_err(|e| e.to_string())?;
        let kind = envelope.kind.to_string();
        match self.plugin(&node.id()) {
            Some(mounted) if mounted.consumes(&kind) => {
                let name = mounted.descriptor.name.to_string();
                match tokio::time::timeout(self.bound, mounted.plugin.on_envelope(envelope)).await {
                    Ok(outcome) => outcome
                        .into_result()
                        .map_err(|e| format!("plugin {name} failed: {}", Error::from(e))),
                    Err(_) => Err(format!(
                        "plugin {name} did not finish within {} ms",
                        self.bound.as_millis()
                    )),
                }
            }
            Some(mounted) if mounted.awaits(&kind) => Ok(()),
            _ => Err(format!("no plugin consumes kind {kind}")),
        }
    }
}
