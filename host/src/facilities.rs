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

//! The facilities lent to each plugin instance: the host side of
//! [`HostObj`].
//!
//! Log, clock and store are always there. IPFS, identity, transport and
//! keystore come from the [`Node`]; a host built without one (as in the ABI
//! benchmark) answers `unavailable` for them, so a plugin can tell "not
//! here" from "failed". Keystore labels are namespaced per instance.

use std::{future::Future, sync::Arc, time::Duration};

use abi_stable::std_types::{ROption, RResult, RString, RVec};
use async_ffi::{FfiFuture, FutureExt};
use milagro_plugin_api::{
    Error,
    abi::{
        AbiError, AbiFuture, HostObj, IdentityInfo, KeyKind, KvEntry, KvWrite, LogLevel,
        OutgoingEnvelope, ReceivedEnvelope,
    },
    mount,
};
use milagro_proto::{Cid, EcPublicKey};
use zeroize::Zeroize;

use crate::{
    api_error,
    clock::now_ms,
    identity,
    keystore::{self, KeystoreError},
    node::Node,
    store::{Namespace, StoreError, Write},
    transport::{Outgoing, consumer::Delivered, inbox::InboxError},
};

/// What a plugin receives of a delivered envelope, in the ABI's types. The
/// opened body is moved, not copied (it is secret).
pub fn to_abi(mut envelope: Delivered) -> ReceivedEnvelope {
    let sealed = envelope
        .sealed
        .as_mut()
        .map(|s| RVec::from(std::mem::take(&mut **s)));
    ReceivedEnvelope {
        cid: envelope.cid.to_string().into(),
        kind: envelope.kind.into(),
        sender: envelope.sender.to_string().into(),
        time_unix_ms: envelope.time_unix_ms,
        links: envelope
            .links
            .iter()
            .map(|l| RString::from(l.to_string()))
            .collect(),
        body: envelope.body.into(),
        sealed: sealed.into(),
    }
}

/// What one plugin instance can reach of its host.
#[derive(Clone)]
pub struct PluginHost {
    instance: Arc<str>,
    store: Namespace,
    node: Option<Arc<Node>>,
}

impl PluginHost {
    pub fn new(instance: &str, store: Namespace, node: Option<Arc<Node>>) -> PluginHost {
        PluginHost {
            instance: instance.into(),
            store,
            node,
        }
    }

    fn key_label(&self, label: &str) -> String {
        mount::key_label(&self.instance, label)
    }

    /// Runs `f` with the node, or answers `unavailable` without one.
    fn with_node<T, F, Fut>(&self, facility: &str, f: F) -> AbiFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Node>) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        match &self.node {
            None => unavailable(facility),
            Some(node) => {
                let future = f(Arc::clone(node));
                async move { future.await.map_err(AbiError::from).into() }.into_ffi()
            }
        }
    }
}

/// Runs a blocking store call off the async threads.
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> AbiFuture<T> {
    async move {
        match tokio::task::spawn_blocking(f).await {
            Ok(Ok(v)) => RResult::ROk(v),
            Ok(Err(e)) => RResult::RErr(api_error::store(e).into()),
            Err(e) => RResult::RErr(Error::internal(format!("store task failed: {e}")).into()),
        }
    }
    .into_ffi()
}

/// A plugin's sealed body, wiped when dropped (it is the secret an
/// envelope carries).
struct WipedOnDrop(RVec<u8>);

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// Runs a blocking keystore call (disk or HSM) off the async threads.
async fn keystore_call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeystoreError> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(api_error::keystore),
        Err(e) => Err(Error::internal(format!("keystore task failed: {e}"))),
    }
}

fn unavailable<T: Send + 'static>(facility: &str) -> AbiFuture<T> {
    let error = AbiError::from(Error::unavailable(format!(
        "the {facility} facility is not available in this host"
    )));
    async move { RResult::RErr(error) }.into_ffi()
}

fn store_writes(writes: RVec<KvWrite>) -> Vec<Write> {
    writes
        .into_iter()
        .map(|w| match w {
            KvWrite::Put { key, value } => Write::Put(key.into_vec(), value.into_vec()),
            KvWrite::Delete { key } => Write::Delete(key.into_vec()),
        })
        .collect()
}

/// A wait for a reply from anyone, which a plugin built before the waits
/// named their senders asks for: refused, since any node that saw the
/// request could answer it in the expected node's place.
fn unbound_wait<T: Send + 'static>() -> AbiFuture<T> {
    let error = AbiError::from(Error::unavailable(
        "await_reply without the expected senders is not served by this host: \
         rebuild the plugin against the current milagro-plugin-api",
    ));
    async move { RResult::RErr(error) }.into_ffi()
}

/// The node IDs a reply may come from: at least one, each a CID.
fn expected_senders(from: &RVec<RString>) -> Result<Vec<Cid>, Error> {
    if from.is_empty() {
        return Err(Error::bad_request(
            "await_reply needs at least one expected sender",
        ));
    }
    parse_cids(from, "expected sender")
}

/// The API error of a reply that did not come.
fn reply_error(e: InboxError) -> Error {
    match e {
        InboxError::Unavailable(m) => Error::timeout(m),
        other => Error::internal(other.to_string()),
    }
}

fn parse_cids(texts: &RVec<RString>, what: &str) -> Result<Vec<Cid>, Error> {
    texts
        .iter()
        .map(|t| api_error::parse_cid(t.as_str(), what))
        .collect()
}

impl HostObj for PluginHost {
    fn log(&self, level: LogLevel, message: RString) {
        let plugin = &*self.instance;
        let message = message.as_str();
        match level {
            LogLevel::Error => tracing::error!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
        }
    }

    fn now_unix_ms(&self) -> u64 {
        now_ms()
    }

    fn sleep_ms(&self, millis: u64) -> FfiFuture<()> {
        tokio::time::sleep(Duration::from_millis(millis)).into_ffi()
    }

    fn kv_get(&self, key: RVec<u8>) -> AbiFuture<ROption<RVec<u8>>> {
        let store = self.store.clone();
        blocking(move || Ok(store.get(&key)?.map(RVec::from).into()))
    }

    fn kv_write(&self, writes: RVec<KvWrite>) -> AbiFuture<()> {
        let store = self.store.clone();
        let writes = store_writes(writes);
        blocking(move || store.write(&writes))
    }

    fn kv_scan(
        &self,
        prefix: RVec<u8>,
        start_after: RVec<u8>,
        limit: u32,
    ) -> AbiFuture<RVec<KvEntry>> {
        let store = self.store.clone();
        blocking(move || {
            let after = (!start_after.is_empty()).then_some(start_after.as_slice());
            let entries = store.scan(&prefix, after, limit as usize)?;
            Ok(entries
                .into_iter()
                .map(|(k, v)| KvEntry {
                    key: k.into(),
                    value: v.into(),
                })
                .collect())
        })
    }

    fn ipfs_put(&self, codec: u64, data: RVec<u8>) -> AbiFuture<RString> {
        self.with_node("ipfs", move |node| async move {
            let cid = node
                .ipfs
                .put(codec, data.into_vec())
                .await
                .map_err(api_error::ipfs)?;
            Ok(RString::from(cid.to_string()))
        })
    }

    fn ipfs_get(&self, cid: RString) -> AbiFuture<RVec<u8>> {
        self.with_node("ipfs", move |node| async move {
            let cid = api_error::parse_cid(cid.as_str(), "block")?;
            Ok(node.ipfs.get(&cid).await.map_err(api_error::ipfs)?.into())
        })
    }

    fn identity_self(&self) -> AbiFuture<IdentityInfo> {
        self.with_node("identity", |node| async move {
            Ok(IdentityInfo::from(&node.identity.document))
        })
    }

    fn identity_resolve(&self, id: RString) -> AbiFuture<IdentityInfo> {
        self.with_node("identity", move |node| async move {
            let cid = api_error::parse_cid(id.as_str(), "node ID")?;
            let document = node
                .resolver
                .resolve(&cid)
                .await
                .map_err(|e| api_error::identity(&id, e))?;
            Ok(IdentityInfo::from(&document))
        })
    }

    fn send(&self, envelope: OutgoingEnvelope) -> AbiFuture<RString> {
        // Wiped however this ends: sent, refused (a bad recipient or link)
        // or never run (no node).
        let sealed = WipedOnDrop(envelope.sealed);
        self.with_node("transport", move |node| async move {
            let recipients = parse_cids(&envelope.recipients, "recipient")?;
            let links = parse_cids(&envelope.links, "link")?;
            let outgoing = Outgoing {
                kind: envelope.kind.as_str(),
                recipients: &recipients,
                links: &links,
                body: (!envelope.body.is_empty()).then_some(envelope.body.as_slice()),
                secret_body: (!sealed.0.is_empty()).then_some(sealed.0.as_slice()),
            };
            let result = node.transport.send(outgoing, now_ms()).await;
            Ok(RString::from(
                result.map_err(api_error::transport)?.to_string(),
            ))
        })
    }

    fn await_reply(
        &self,
        _cid: RString,
        _kind: RString,
        _timeout_ms: u64,
    ) -> AbiFuture<ReceivedEnvelope> {
        unbound_wait()
    }

    fn kv_write_volatile(&self, writes: RVec<KvWrite>) -> AbiFuture<()> {
        let store = self.store.clone();
        let writes = store_writes(writes);
        blocking(move || store.write_volatile(&writes))
    }

    fn await_reply_cid(
        &self,
        _cid: RString,
        _kind: RString,
        _timeout_ms: u64,
    ) -> AbiFuture<RString> {
        unbound_wait()
    }

    fn await_reply_from(
        &self,
        cid: RString,
        kind: RString,
        from: RVec<RString>,
        timeout_ms: u64,
    ) -> AbiFuture<ReceivedEnvelope> {
        self.with_node("transport", move |node| async move {
            let cid = api_error::parse_cid(cid.as_str(), "envelope")?;
            let from = expected_senders(&from)?;
            node.transport
                .inbox
                .await_reply(cid, kind.as_str(), &from, Duration::from_millis(timeout_ms))
                .await
                .map(to_abi)
                .map_err(reply_error)
        })
    }

    fn await_reply_cid_from(
        &self,
        cid: RString,
        kind: RString,
        from: RVec<RString>,
        timeout_ms: u64,
    ) -> AbiFuture<RString> {
        self.with_node("transport", move |node| async move {
            let cid = api_error::parse_cid(cid.as_str(), "envelope")?;
            let from = expected_senders(&from)?;
            let reply = node
                .transport
                .inbox
                .wait_reply(cid, kind.as_str(), &from, Duration::from_millis(timeout_ms))
                .await
                .map_err(reply_error)?;
            Ok(RString::from(reply.to_string()))
        })
    }

    fn identity_is_self(&self, id: RString) -> AbiFuture<bool> {
        self.with_node("identity", move |node| async move {
            let cid = api_error::parse_cid(id.as_str(), "node ID")?;
            Ok(node.chains.is_self(&cid))
        })
    }

    fn identity_same_party(&self, a: RString, b: RString) -> AbiFuture<bool> {
        self.with_node("identity", move |node| async move {
            let a = api_error::parse_cid(a.as_str(), "node ID")?;
            let b = api_error::parse_cid(b.as_str(), "node ID")?;
            node.chains
                .same_party(&a, &b)
                .await
                .map_err(api_error::chain)
        })
    }

    fn key_generate(&self, label: RString, kind: KeyKind) -> AbiFuture<RVec<u8>> {
        let label = self.key_label(label.as_str());
        let kind = match kind {
            KeyKind::Secp256k1Signing => keystore::KeyKind::Secp256k1Signing,
            KeyKind::Secp256k1Ecdh => keystore::KeyKind::Secp256k1Ecdh,
        };
        self.with_node("keystore", move |node| async move {
            let public = keystore_call(move || node.keystore.generate(&label, kind)).await?;
            Ok(public.to_bytes().to_vec().into())
        })
    }

    fn key_public(&self, label: RString) -> AbiFuture<ROption<RVec<u8>>> {
        let label = self.key_label(label.as_str());
        self.with_node("keystore", move |node| async move {
            let public = keystore_call(move || node.keystore.public_key(&label)).await?;
            Ok(public.map(|k| RVec::from(k.to_bytes().to_vec())).into())
        })
    }

    fn key_sign(&self, label: RString, digest: RVec<u8>) -> AbiFuture<RVec<u8>> {
        let label = self.key_label(label.as_str());
        self.with_node("keystore", move |node| async move {
            let digest: [u8; 32] = digest
                .as_slice()
                .try_into()
                .map_err(|_| Error::bad_request("the digest must be 32 bytes"))?;
            let signature =
                keystore_call(move || node.keystore.sign_prehash(&label, &digest)).await?;
            Ok(signature.to_bytes().to_vec().into())
        })
    }

    fn key_ecdh(&self, label: RString, peer: RVec<u8>) -> AbiFuture<RVec<u8>> {
        let label = self.key_label(label.as_str());
        self.with_node("keystore", move |node| async move {
            let peer = EcPublicKey::from_bytes(&peer, "peer key")
                .map_err(|e| Error::bad_request(e.to_string()))?;
            let shared = keystore_call(move || node.keystore.ecdh(&label, &peer)).await?;
            Ok(RVec::from(shared.as_slice()))
        })
    }

    fn secret_put(&self, label: RString, secret: RVec<u8>) -> AbiFuture<()> {
        let label = self.key_label(label.as_str());
        self.with_node("keystore", move |node| async move {
            let mut secret = secret;
            let result = {
                let copy = zeroize::Zeroizing::new(secret.as_slice().to_vec());
                keystore_call(move || node.keystore.put_secret(&label, &copy)).await
            };
            secret.as_mut_slice().zeroize();
            result
        })
    }

    fn secret_get(&self, label: RString) -> AbiFuture<ROption<RVec<u8>>> {
        let label = self.key_label(label.as_str());
        self.with_node("keystore", move |node| async move {
            let secret = keystore_call(move || node.keystore.get_secret(&label)).await?;
            Ok(secret.map(|s| RVec::from(s.as_slice())).into())
        })
    }

    fn secret_delete(&self, label: RString) -> AbiFuture<()> {
        let label = self.key_label(label.as_str());
        self.with_node("keystore", move |node| async move {
            keystore_call(move || node.keystore.delete_secret(&label)).await
        })
    }

    fn beneficiary_secret(&self) -> AbiFuture<ROption<RVec<u8>>> {
        if &*self.instance != identity::BENEFICIARY_PLUGIN {
            let error = AbiError::from(Error::forbidden(format!(
                "only the plugin instance named {:?} may use the node's beneficiary key",
                identity::BENEFICIARY_PLUGIN
            )));
            return async move { RResult::RErr(error) }.into_ffi();
        }
        self.with_node("keystore", move |node| async move {
            if node.identity.document.beneficiary_key().is_none() {
                return Ok(ROption::RNone);
            }
            let secret =
                keystore_call(move || node.keystore.get_secret(identity::BENEFICIARY)).await?;
            Ok(secret.map(|s| RVec::from(s.as_slice())).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a node (as in the ABI benchmark), the network facilities
    /// answer `unavailable`, never a fake result.
    #[test]
    fn facilities_without_a_node_are_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let host = PluginHost::new("p", store.namespace("plugin/p"), None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let error = runtime
            .block_on(host.ipfs_put(0x55, RVec::new()))
            .into_result()
            .unwrap_err();
        assert_eq!(error.code.as_str(), "unavailable");
        assert!(error.message.contains("ipfs facility is not available"));
        let error = runtime
            .block_on(host.secret_get("s".into()))
            .into_result()
            .unwrap_err();
        assert_eq!(error.code.as_str(), "unavailable");
    }

    /// The SDK writes the codes plugins pass to `ipfs_put` itself (it
    /// depends on no crate of ours): they must be the facility's.
    #[test]
    fn the_sdk_codecs_are_the_facility_codecs() {
        use milagro_plugin_api::Ipfs;
        assert_eq!(Ipfs::DAG_CBOR, milagro_ipfs::DAG_CBOR);
        assert_eq!(Ipfs::RAW, milagro_ipfs::RAW);
    }
}
