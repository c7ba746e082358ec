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

//! The facilities the host lends each plugin instance.
//!
//! One host object is made per plugin instance, so everything keyed (store
//! keys, keystore labels) is namespaced to that instance by the host. A
//! facility this host does not provide answers with the `unavailable` code.

use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RArc, ROption, RResult, RString, RVec},
};
use async_ffi::FfiFuture;

use super::AbiError;

/// Severity of a plugin log line.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Something failed and needs the operator.
    Error,
    /// Something unexpected the node recovered from (e.g. a refused message).
    Warn,
    /// A normal event worth a line in the log.
    Info,
    /// Detail for diagnosing a problem.
    Debug,
    /// Finest detail, normally filtered out.
    Trace,
}

/// One key/value pair of the plugin's store namespace.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct KvEntry {
    /// The full key, within the plugin's namespace.
    pub key: RVec<u8>,
    /// The value stored under it.
    pub value: RVec<u8>,
}

/// One write of an atomic store batch.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone)]
pub enum KvWrite {
    /// Stores `value` under `key`, replacing what was there.
    Put {
        /// The key to write.
        key: RVec<u8>,
        /// The value to store.
        value: RVec<u8>,
    },
    /// Removes `key` (no error if it is absent).
    Delete {
        /// The key to remove.
        key: RVec<u8>,
    },
}

/// Kinds of key pairs the keystore can generate.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// secp256k1 ECDSA (SHA-256 prehash, low-S).
    Secp256k1Signing,
    /// secp256k1 ECDH.
    Secp256k1Ecdh,
}

/// A node identity, resolved and verified by the host.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct IdentityInfo {
    /// The node ID: the CID of the identity document.
    pub id: RString,
    /// The node's self-chosen display name (not unique, not checked).
    pub name: RString,
    /// The key the node signs its envelopes with (SEC1-compressed secp256k1).
    pub signing_key: RVec<u8>,
    /// The key envelopes are sealed to for this node (SEC1-compressed secp256k1).
    pub ecdh_key: RVec<u8>,
    /// The public key B of the node's beneficiary key b (SEC1-compressed
    /// secp256k1), if it publishes one.
    pub beneficiary_key: ROption<RVec<u8>>,
    /// Endpoint hints (HTTP URLs, multiaddrs).
    pub endpoints: RVec<RString>,
}

#[cfg(feature = "host")]
impl From<&milagro_proto::VerifiedIdentity> for IdentityInfo {
    fn from(document: &milagro_proto::VerifiedIdentity) -> Self {
        IdentityInfo {
            id: document.id().to_string().into(),
            name: document.name().into(),
            signing_key: document.signing_key().to_bytes().to_vec().into(),
            ecdh_key: document.ecdh_key().to_bytes().to_vec().into(),
            beneficiary_key: document
                .beneficiary_key()
                .map(|k| RVec::from(k.to_bytes().to_vec()))
                .into(),
            endpoints: document
                .endpoints()
                .http
                .iter()
                .chain(&document.endpoints().multiaddrs)
                .map(|e| RString::from(e.as_str()))
                .collect(),
        }
    }
}

/// An envelope a plugin asks the host to sign, seal and deliver.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct OutgoingEnvelope {
    /// The envelope kind (e.g. `custody/order`), which selects the
    /// recipient's consuming plugin.
    pub kind: RString,
    /// Node IDs of the recipients.
    pub recipients: RVec<RString>,
    /// Links (CIDs) to earlier envelopes of the same conversation.
    pub links: RVec<RString>,
    /// Body readable by anyone holding the block.
    pub body: RVec<u8>,
    /// Body encrypted to the recipients only; empty for none.
    pub sealed: RVec<u8>,
}

/// A verified, opened envelope handed to the plugin that consumes its kind.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ReceivedEnvelope {
    /// The envelope's CID.
    pub cid: RString,
    /// The envelope kind.
    pub kind: RString,
    /// Node ID of the sender.
    pub sender: RString,
    /// When the sender says it made the envelope (milliseconds since the
    /// Unix epoch; the sender's clock).
    pub time_unix_ms: u64,
    /// Links (CIDs) to earlier envelopes of the same conversation.
    pub links: RVec<RString>,
    /// The body readable by anyone holding the block.
    pub body: RVec<u8>,
    /// The decrypted sealed body, if there was one. Secret: zeroize after use.
    pub sealed: ROption<RVec<u8>>,
}

/// A future crossing the boundary that may fail.
pub type AbiFuture<T> = FfiFuture<RResult<T, AbiError>>;

/// The host facilities, as seen from a plugin.
#[sabi_trait]
pub trait HostObj: Clone + Send + Sync {
    // log and clock
    /// Writes a line to the node's log, tagged with the plugin instance.
    fn log(&self, level: LogLevel, message: RString);
    /// Wall-clock time, milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> u64;
    /// Completes after `millis` milliseconds, on the host's timer.
    fn sleep_ms(&self, millis: u64) -> FfiFuture<()>;

    // store: the plugin's own namespace of the node database
    /// The value under `key`, if any.
    fn kv_get(&self, key: RVec<u8>) -> AbiFuture<ROption<RVec<u8>>>;
    /// Applies every write or none, durably, before completing.
    fn kv_write(&self, writes: RVec<KvWrite>) -> AbiFuture<()>;
    /// Entries whose key starts with `prefix`, in key order, strictly after
    /// `start_after` when it is not empty, at most `limit`.
    fn kv_scan(
        &self,
        prefix: RVec<u8>,
        start_after: RVec<u8>,
        limit: u32,
    ) -> AbiFuture<RVec<KvEntry>>;

    // ipfs
    /// Stores a block (pinned) and returns its CID.
    fn ipfs_put(&self, codec: u64, data: RVec<u8>) -> AbiFuture<RString>;
    /// Fetches a block, verified against its CID.
    fn ipfs_get(&self, cid: RString) -> AbiFuture<RVec<u8>>;

    // identity
    /// This node's current identity.
    fn identity_self(&self) -> AbiFuture<IdentityInfo>;
    /// Fetches and verifies the identity document with node ID `id`.
    fn identity_resolve(&self, id: RString) -> AbiFuture<IdentityInfo>;

    // envelope + transport
    /// Signs, seals, stores and delivers; returns the envelope's CID.
    fn send(&self, envelope: OutgoingEnvelope) -> AbiFuture<RString>;
    /// Refused by hosts since `await_reply_from` (a reply from any sender
    /// was taken); kept so the layout of this prefix stays the same.
    fn await_reply(
        &self,
        cid: RString,
        kind: RString,
        timeout_ms: u64,
    ) -> AbiFuture<ReceivedEnvelope>;

    // keystore: labels are namespaced to the plugin instance
    /// Generates a key pair and returns its SEC1-compressed public key.
    fn key_generate(&self, label: RString, kind: KeyKind) -> AbiFuture<RVec<u8>>;
    /// The public key of the key pair under `label`, if there is one.
    fn key_public(&self, label: RString) -> AbiFuture<ROption<RVec<u8>>>;
    /// ECDSA over a 32-byte digest; 64-byte r||s, low-S.
    fn key_sign(&self, label: RString, digest: RVec<u8>) -> AbiFuture<RVec<u8>>;
    /// Raw ECDH x-coordinate with a SEC1 peer key; derive keys with HKDF.
    fn key_ecdh(&self, label: RString, peer: RVec<u8>) -> AbiFuture<RVec<u8>>;
    /// Stores a secret, encrypted at rest (or wrapped by the HSM).
    fn secret_put(&self, label: RString, secret: RVec<u8>) -> AbiFuture<()>;
    /// The secret under `label`, if any. Secret: zeroize after use.
    #[sabi(last_prefix_field)]
    fn secret_get(&self, label: RString) -> AbiFuture<ROption<RVec<u8>>>;

    /// The node's beneficiary key b (a 32-byte scalar, the secret half of
    /// the key its identity document publishes). Only the plugin instance
    /// named `beneficiary` in host.toml may read it; `None` when the node
    /// publishes no beneficiary key. Secret: zeroize after use.
    fn beneficiary_secret(&self) -> AbiFuture<ROption<RVec<u8>>>;

    /// Refused by hosts since `await_reply_cid_from`; kept for the layout.
    fn await_reply_cid(&self, cid: RString, kind: RString, timeout_ms: u64) -> AbiFuture<RString>;

    /// Applies every write or none, visible at once but durable only with
    /// the node's next durable write (a crash before it loses them).
    fn kv_write_volatile(&self, writes: RVec<KvWrite>) -> AbiFuture<()>;

    /// Waits for an envelope of `kind` that links to `cid` and is signed by
    /// one of `from` (node IDs, at least one): a reply from anyone else is
    /// ignored by this wait.
    fn await_reply_from(
        &self,
        cid: RString,
        kind: RString,
        from: RVec<RString>,
        timeout_ms: u64,
    ) -> AbiFuture<ReceivedEnvelope>;

    /// Waits like `await_reply_from` but returns only the reply's CID: the
    /// reply is neither loaded nor opened again (for a plugin that only
    /// waits).
    fn await_reply_cid_from(
        &self,
        cid: RString,
        kind: RString,
        from: RVec<RString>,
        timeout_ms: u64,
    ) -> AbiFuture<RString>;

    /// Erases a secret of this plugin instance (no error if there is none).
    fn secret_delete(&self, label: RString) -> AbiFuture<()>;

    /// Whether node ID `id` is one of this node's: its current ID or an
    /// earlier generation's of its rotation chain.
    fn identity_is_self(&self, id: RString) -> AbiFuture<bool>;

    /// Whether node IDs `a` and `b` are one party: IDs of one verified
    /// rotation chain (same first document; a fork of a revoked chain is
    /// refused with an error).
    fn identity_same_party(&self, a: RString, b: RString) -> AbiFuture<bool>;
}

/// A shared handle to the host facilities.
pub type HostBox = HostObj_TO<'static, RArc<()>>;
