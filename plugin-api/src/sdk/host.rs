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

//! The host facilities as plain async Rust: log, clock, store, IPFS,
//! identity, transport and keystore.
//!
//! Every call goes to the host (a plugin has no runtime of its own), so a
//! plugin never needs tokio timers, sockets or `tokio::spawn`.

use std::{future::Future, time::Duration};

use abi_stable::std_types::{RResult, RString, RVec};
use zeroize::{Zeroize, Zeroizing};

use super::{Error, Request};
use crate::abi::{
    AbiFuture, HostBox, IdentityInfo, KeyKind, KvWrite, LogLevel, OutgoingEnvelope,
    ReceivedEnvelope,
};

/// The handle a plugin instance gets to its host. Cheap to clone.
#[derive(Clone)]
pub struct Host(HostBox);

/// Log severities.
pub use crate::abi::LogLevel as Level;

impl Host {
    /// Wraps the host's ABI handle. Plugins receive a ready `Host` in
    /// [`crate::Plugin::new`]; this is for hosts and in-process tests.
    pub fn new(host: HostBox) -> Host {
        Host(host)
    }

    /// Writes a line to the node's log, tagged with the plugin instance.
    /// Never log secrets.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.0.log(level, RString::from(message.into()));
    }

    /// Logs at [`Level::Info`].
    pub fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message);
    }

    /// Logs at [`Level::Warn`].
    pub fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message);
    }

    /// Logs at [`Level::Error`].
    pub fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message);
    }

    /// Logs at [`Level::Debug`].
    pub fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message);
    }

    /// Wall-clock time, milliseconds since the Unix epoch.
    pub fn now_unix_ms(&self) -> u64 {
        self.0.now_unix_ms()
    }

    /// Waits on the host's timer.
    pub async fn sleep(&self, duration: Duration) {
        self.0.sleep_ms(millis(duration)).await
    }

    /// Runs `future` for at most `timeout`; `None` if it did not finish.
    pub async fn within<F: Future>(&self, timeout: Duration, future: F) -> Option<F::Output> {
        let future = std::pin::pin!(future);
        let sleep = std::pin::pin!(self.sleep(timeout));
        match futures::future::select(future, sleep).await {
            futures::future::Either::Left((output, _)) => Some(output),
            futures::future::Either::Right(_) => None,
        }
    }

    /// This instance's namespace of the node's database.
    pub fn store(&self) -> Store<'_> {
        Store(&self.0)
    }

    /// The node's IPFS blocks.
    pub fn ipfs(&self) -> Ipfs<'_> {
        Ipfs(&self.0)
    }

    /// This node's identity and the resolution of others'.
    pub fn identity(&self) -> Identities<'_> {
        Identities(&self.0)
    }

    /// Envelope delivery to other nodes.
    pub fn transport(&self) -> Transport<'_> {
        Transport(&self.0)
    }

    /// This instance's keys and secrets.
    pub fn keystore(&self) -> Keystore<'_> {
        Keystore(&self.0)
    }
}

async fn call<T>(future: AbiFuture<T>) -> Result<T, Error> {
    match future.await {
        RResult::ROk(v) => Ok(v),
        RResult::RErr(e) => Err(e.into()),
    }
}

/// Takes a secret out of an ABI vector, wiping the vector's copy.
fn secret_from_abi(mut v: RVec<u8>) -> Zeroizing<Vec<u8>> {
    let secret = Zeroizing::new(v.as_slice().to_vec());
    v.as_mut_slice().zeroize();
    secret
}

/// The plugin's key/value namespace: durable, ACID, ordered by key.
pub struct Store<'a>(&'a HostBox);

fn kv_writes(writes: Vec<Write>) -> RVec<KvWrite> {
    writes
        .into_iter()
        .map(|w| match w {
            Write::Put(key, value) => KvWrite::Put {
                key: key.into(),
                value: value.into(),
            },
            Write::Delete(key) => KvWrite::Delete { key: key.into() },
        })
        .collect()
}

/// One write of an atomic [`Store::write`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Stores the value (second) under the key (first); see also
    /// [`Write::put_json`].
    Put(Vec<u8>, Vec<u8>),
    /// Removes the key (no error if it is absent).
    Delete(Vec<u8>),
}

impl Store<'_> {
    /// The value under `key`, if any (see also [`Store::get_json`]).
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(call(self.0.kv_get(key.into()))
            .await?
            .into_option()
            .map(RVec::into_vec))
    }

    /// Stores `value` under `key`, durably (see also [`Store::put_json`]).
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.write(vec![Write::Put(key.to_vec(), value.to_vec())])
            .await
    }

    /// Removes `key`, durably (no error if it is absent).
    pub async fn delete(&self, key: &[u8]) -> Result<(), Error> {
        self.write(vec![Write::Delete(key.to_vec())]).await
    }

    /// Applies all writes or none; durable when it returns.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), Error> {
        call(self.0.kv_write(kv_writes(writes))).await
    }

    /// Applies all writes or none, visible at once but made durable only by
    /// the node's next durable write (within milliseconds on a busy node):
    /// a crash before it loses them. Only for records whose loss is
    /// harmless: that can be rebuilt, or that only log what was already
    /// done. Anything that must survive before a message leaves or an answer
    /// is given goes through [`Store::write`].
    pub async fn write_volatile(&self, writes: Vec<Write>) -> Result<(), Error> {
        call(self.0.kv_write_volatile(kv_writes(writes))).await
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// strictly after `start_after` if given (for cursor paging).
    pub async fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Error> {
        let entries = call(self.0.kv_scan(
            prefix.into(),
            start_after.unwrap_or_default().into(),
            limit,
        ))
        .await?;
        Ok(entries
            .into_iter()
            .map(|e| (e.key.into_vec(), e.value.into_vec()))
            .collect())
    }
}

/// One page of a listing: entries after the cursor, and the cursor of the
/// next page (`None` on the last page).
#[derive(Debug, Default)]
pub struct Page {
    /// The entries (full key, value), in key order; parse JSON records with
    /// [`Page::records`].
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The `cursor` that asks for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl Page {
    /// Page size when a request gives no `limit`.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Largest `limit` a request may give (the smallest is 1).
    pub const MAX_LIMIT: u32 = 1000;
}

impl Store<'_> {
    /// The page of entries under `prefix` that a `GET ...?limit=&cursor=`
    /// request asks for: `limit` 1 to [`Page::MAX_LIMIT`] (default
    /// [`Page::DEFAULT_LIMIT`], else a 400), `cursor` the key suffix (after
    /// `prefix`) of the previous page's last entry. Declare such a route
    /// with [`crate::Route::paged`], which documents exactly this.
    pub async fn page(&self, prefix: &[u8], request: &Request) -> Result<Page, Error> {
        let limit = match request.query_param("limit") {
            None => Page::DEFAULT_LIMIT,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=Page::MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::bad_request(format!(
                        "limit must be an integer from 1 to {}",
                        Page::MAX_LIMIT
                    ))
                })?,
        };
        let cursor = request
            .query_param("cursor")
            .map(|c| [prefix, c.as_bytes()].concat());
        let entries = self.scan(prefix, cursor.as_deref(), limit).await?;
        let next_cursor = (entries.len() == limit as usize)
            .then(|| entries.last())
            .flatten()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        Ok(Page {
            entries,
            next_cursor,
        })
    }
}

/// Content-addressed blocks on the node's IPFS.
pub struct Ipfs<'a>(&'a HostBox);

impl Ipfs<'_> {
    // The codes are written here, not taken from `milagro-proto` or
    // `milagro-ipfs`: plugins build against this crate alone, and it
    // depends on no crate of ours.
    /// Multicodec of raw blocks.
    pub const RAW: u64 = 0x55;
    /// Multicodec of DAG-CBOR blocks.
    pub const DAG_CBOR: u64 = 0x71;

    /// Stores and pins a block; returns its CID (CIDv1, sha2-256).
    pub async fn put(&self, codec: u64, data: Vec<u8>) -> Result<String, Error> {
        Ok(call(self.0.ipfs_put(codec, data.into()))
            .await?
            .into_string())
    }

    /// Fetches a block; the host has checked it hashes to `cid`.
    pub async fn get(&self, cid: &str) -> Result<Vec<u8>, Error> {
        Ok(call(self.0.ipfs_get(cid.into())).await?.into_vec())
    }
}

/// A verified node identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The node ID: CID of the identity document.
    pub id: String,
    /// The node's self-chosen display name (not unique, not checked).
    pub name: String,
    /// The key the node signs envelopes with (SEC1-compressed secp256k1).
    pub signing_key: Vec<u8>,
    /// The key envelopes to the node are sealed to (SEC1-compressed secp256k1).
    pub ecdh_key: Vec<u8>,
    /// The public key B of the node's beneficiary key, if it publishes one.
    pub beneficiary_key: Option<Vec<u8>>,
    /// Endpoint hints (HTTP URLs, multiaddrs).
    pub endpoints: Vec<String>,
}

impl From<IdentityInfo> for Identity {
    fn from(i: IdentityInfo) -> Self {
        Identity {
            id: i.id.into_string(),
            name: i.name.into_string(),
            signing_key: i.signing_key.into_vec(),
            ecdh_key: i.ecdh_key.into_vec(),
            beneficiary_key: i.beneficiary_key.into_option().map(RVec::into_vec),
            endpoints: i.endpoints.into_iter().map(RString::into_string).collect(),
        }
    }
}

/// The decentralised PKI: this node's identity and resolution of others.
pub struct Identities<'a>(&'a HostBox);

impl Identities<'_> {
    /// This node's current identity.
    pub async fn this_node(&self) -> Result<Identity, Error> {
        Ok(call(self.0.identity_self()).await?.into())
    }

    /// Fetches and verifies the identity document with this node ID.
    pub async fn resolve(&self, id: &str) -> Result<Identity, Error> {
        Ok(call(self.0.identity_resolve(id.into())).await?.into())
    }

    /// Whether `id` is one of this node's IDs: its current one, or an
    /// earlier one of its rotation chain (`milagro identity rotate` gives a
    /// node a new ID; what names an earlier one still names this node).
    /// Compare with this, never with `this_node().id`.
    pub async fn is_self(&self, id: &str) -> Result<bool, Error> {
        call(self.0.identity_is_self(id.into())).await
    }

    /// Whether node IDs `a` and `b` name one party: equal, or IDs of one
    /// verified rotation chain. Compare a sender with a stored ID with
    /// this, never with `==`.
    pub async fn same_party(&self, a: &str, b: &str) -> Result<bool, Error> {
        if a == b {
            return Ok(true);
        }
        call(self.0.identity_same_party(a.into(), b.into())).await
    }

    /// The first of `ids` that is one of this node's IDs ([`Self::is_self`]).
    pub async fn self_among<'a>(&self, ids: &'a [String]) -> Result<Option<&'a str>, Error> {
        for id in ids {
            if self.is_self(id).await? {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The one of `ids` that names the same party as `id` ([`Self::same_party`]),
    /// `id` itself first: how a sender is matched to a stored list of IDs.
    pub async fn party_among<'a>(
        &self,
        ids: &'a [String],
        id: &str,
    ) -> Result<Option<&'a str>, Error> {
        if let Some(exact) = ids.iter().find(|i| *i == id) {
            return Ok(Some(exact));
        }
        for candidate in ids {
            if self.same_party(candidate, id).await? {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}

/// An envelope to sign, seal and deliver.
#[derive(Debug, Clone, Default)]
pub struct NewEnvelope {
    /// The envelope kind (e.g. `custody/order`): it selects the consuming
    /// plugin on the recipients' nodes.
    pub kind: String,
    /// Node IDs of the recipients (none for a public record).
    pub recipients: Vec<String>,
    /// CIDs of earlier envelopes of the same conversation.
    pub links: Vec<String>,
    /// Readable by anyone holding the block: never put secrets here.
    pub body: Vec<u8>,
    /// Encrypted to the recipients only; empty for none.
    pub sealed: Zeroizing<Vec<u8>>,
}

/// A received, verified and opened envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The envelope's CID.
    pub cid: String,
    /// The envelope kind.
    pub kind: String,
    /// Node ID of the (verified) sender.
    pub sender: String,
    /// When the sender says it made the envelope (ms since the Unix epoch,
    /// the sender's clock).
    pub time_unix_ms: u64,
    /// CIDs of earlier envelopes of the same conversation.
    pub links: Vec<String>,
    /// The clear body.
    pub body: Vec<u8>,
    /// The decrypted sealed body, if there was one; wiped when dropped.
    pub sealed: Option<Zeroizing<Vec<u8>>>,
}

impl From<ReceivedEnvelope> for Envelope {
    fn from(e: ReceivedEnvelope) -> Self {
        Envelope {
            cid: e.cid.into_string(),
            kind: e.kind.into_string(),
            sender: e.sender.into_string(),
            time_unix_ms: e.time_unix_ms,
            links: e.links.into_iter().map(RString::into_string).collect(),
            body: e.body.into_vec(),
            sealed: e.sealed.into_option().map(secret_from_abi),
        }
    }
}

fn strings_to_abi(v: Vec<String>) -> RVec<RString> {
    v.into_iter().map(RString::from).collect()
}

fn senders(from: &[&str]) -> RVec<RString> {
    from.iter().map(|&s| RString::from(s)).collect()
}

/// Envelope delivery between nodes.
pub struct Transport<'a>(&'a HostBox);

impl Transport<'_> {
    /// Signs, seals, stores and delivers; returns the envelope's CID.
    pub async fn send(&self, envelope: NewEnvelope) -> Result<String, Error> {
        let NewEnvelope {
            kind,
            recipients,
            links,
            body,
            sealed,
        } = envelope;
        let abi = OutgoingEnvelope {
            kind: kind.into(),
            recipients: strings_to_abi(recipients),
            links: strings_to_abi(links),
            body: body.into(),
            sealed: sealed.as_slice().into(),
        };
        Ok(call(self.0.send(abi)).await?.into_string())
    }

    /// Waits up to `timeout` for an envelope of `kind` linking to `cid`
    /// and signed by one of `from` (node IDs, at least one). A reply from
    /// any other node is ignored by this wait, so a stranger who saw `cid`
    /// cannot answer in the expected node's place. The returned future
    /// borrows none of the arguments.
    pub fn await_reply(
        &self,
        cid: &str,
        kind: &str,
        from: &[&str],
        timeout: Duration,
    ) -> impl Future<Output = Result<Envelope, Error>> + Send + use<> {
        let reply =
            self.0
                .await_reply_from(cid.into(), kind.into(), senders(from), millis(timeout));
        async move { Ok(call(reply).await?.into()) }
    }

    /// Waits like [`Transport::await_reply`] and returns only the reply's
    /// CID, for a caller that handles the reply in its `on_envelope`: the
    /// host does not load and open the reply a second time.
    pub fn await_reply_cid(
        &self,
        cid: &str,
        kind: &str,
        from: &[&str],
        timeout: Duration,
    ) -> impl Future<Output = Result<String, Error>> + Send + use<> {
        let reply =
            self.0
                .await_reply_cid_from(cid.into(), kind.into(), senders(from), millis(timeout));
        async move { Ok(call(reply).await?.into_string()) }
    }
}

/// Key kinds the keystore generates.
pub use crate::abi::KeyKind as KeyType;

/// Keys that never leave the keystore, and secrets encrypted at rest.
pub struct Keystore<'a>(&'a HostBox);

impl Keystore<'_> {
    /// Generates a key pair under `label`; returns the compressed public key.
    pub async fn generate(&self, label: &str, kind: KeyKind) -> Result<Vec<u8>, Error> {
        Ok(call(self.0.key_generate(label.into(), kind))
            .await?
            .into_vec())
    }

    /// The public key of the key pair under `label`, if there is one.
    pub async fn public_key(&self, label: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(call(self.0.key_public(label.into()))
            .await?
            .into_option()
            .map(RVec::into_vec))
    }

    /// ECDSA secp256k1 over a SHA-256 digest; 64 bytes r||s, low-S.
    pub async fn sign(&self, label: &str, digest: &[u8; 32]) -> Result<Vec<u8>, Error> {
        Ok(
            call(self.0.key_sign(label.into(), digest.as_slice().into()))
                .await?
                .into_vec(),
        )
    }

    /// The raw ECDH shared secret with `peer` (derive keys from it with HKDF).
    pub async fn ecdh(&self, label: &str, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        Ok(secret_from_abi(
            call(self.0.key_ecdh(label.into(), peer.into())).await?,
        ))
    }

    /// Stores or replaces a secret under `label`, encrypted at rest.
    pub async fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), Error> {
        call(self.0.secret_put(label.into(), secret.into())).await
    }

    /// The secret under `label`, if any; wiped when dropped.
    pub async fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        Ok(call(self.0.secret_get(label.into()))
            .await?
            .into_option()
            .map(secret_from_abi))
    }

    /// Erases a secret (no error if there is none).
    pub async fn delete_secret(&self, label: &str) -> Result<(), Error> {
        call(self.0.secret_delete(label.into())).await
    }

    /// The node's beneficiary key b; see [`crate::abi::HostObj::beneficiary_secret`].
    pub async fn beneficiary_secret(&self) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        Ok(call(self.0.beneficiary_secret())
            .await?
            .into_option()
            .map(secret_from_abi))
    }
}

/// A duration as the ABI's whole milliseconds (saturating).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
