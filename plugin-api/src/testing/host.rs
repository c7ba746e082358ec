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

//! The host facilities as the harness lends them to a plugin instance:
//! [`HostObj`] over its node's store, keystore and identity, and the test
//! network's loopback transport. Keystore labels are namespaced per
//! instance and errors carry the codes the host's facilities give.
//! IPFS, which no plugin of the workspace uses, answers `unavailable`, as
//! the host does for a facility it does not provide.

use std::{
    future::Future,
    sync::{Arc, Weak},
    time::Duration,
};

use abi_stable::std_types::{ROption, RResult, RString, RVec};
use async_ffi::{FfiFuture, FutureExt as _};
use milagro_proto::{Cid, EcPublicKey};
use zeroize::Zeroize;

use super::network::{Net, Node, parse_cid};
use crate::{
    Error,
    abi::{
        AbiError, AbiFuture, HostObj, IdentityInfo, KeyKind, KvEntry, KvWrite, LogLevel,
        OutgoingEnvelope, ReceivedEnvelope,
    },
    mount::{self, BENEFICIARY_INSTANCE},
};

/// The host handle of one plugin instance in a test network.
#[derive(Clone)]
pub(super) struct TestHost {
    instance: Arc<str>,
    node: Arc<Node>,
    /// Weak: the network holds the plugin, which holds this handle.
    net: Weak<Net>,
}

impl TestHost {
    pub(super) fn new(instance: &str, node: Arc<Node>, net: &Arc<Net>) -> TestHost {
        TestHost {
            instance: instance.into(),
            node,
            net: Arc::downgrade(net),
        }
    }

    fn key_label(&self, label: &str) -> String {
        mount::key_label(&self.instance, label)
    }

    /// Waits for a reply of `kind` to `linked` from one of `senders`;
    /// the node it came to and the reply's CID.
    fn reply(
        &self,
        linked: RString,
        kind: RString,
        senders: RVec<RString>,
        timeout_ms: u64,
    ) -> impl Future<Output = Result<(Arc<Node>, Cid), Error>> + Send + 'static {
        let node = Arc::clone(&self.node);
        async move {
            let linked = parse_cid(&linked, "envelope")?;
            let from = senders
                .iter()
                .map(|s| parse_cid(s, "expected sender"))
                .collect::<Result<Vec<_>, _>>()?;
            let timeout = Duration::from_millis(timeout_ms);
            let reply = node.wait_reply(linked, &kind, from, timeout).await?;
            Ok((node, reply))
        }
    }

    fn net(&self) -> Result<Arc<Net>, Error> {
        self.net
            .upgrade()
            .ok_or_else(|| Error::unavailable("the test network was dropped"))
    }
}

/// An answer ready now.
fn ready<T: Send + 'static>(result: Result<T, Error>) -> AbiFuture<T> {
    let result: RResult<T, AbiError> = result.map_err(AbiError::from).into();
    async move { result }.into_ffi()
}

/// An answer that waits.
fn later<T: Send + 'static>(
    future: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> AbiFuture<T> {
    async move { future.await.map_err(AbiError::from).into() }.into_ffi()
}

/// A wait for a reply from anyone: refused, as by the host.
fn unbound_wait<T: Send + 'static>() -> AbiFuture<T> {
    ready(Err(Error::unavailable(
        "await_reply without the expected senders is not served: use await_reply_from",
    )))
}

impl HostObj for TestHost {
    fn log(&self, level: LogLevel, message: RString) {
        let line = format!("{level:?} {message}");
        // On stderr too: the test runner shows it when a test fails.
        eprintln!("[{}] {line}", self.instance);
        self.node.note(line);
    }

    fn now_unix_ms(&self) -> u64 {
        super::network::now_ms()
    }

    fn sleep_ms(&self, millis: u64) -> FfiFuture<()> {
        tokio::time::sleep(Duration::from_millis(millis)).into_ffi()
    }

    fn kv_get(&self, key: RVec<u8>) -> AbiFuture<ROption<RVec<u8>>> {
        ready(self.node.store.get(&key).map(|v| v.map(RVec::from).into()))
    }

    fn kv_write(&self, writes: RVec<KvWrite>) -> AbiFuture<()> {
        ready(self.node.store.write(writes))
    }

    fn kv_scan(&self, prefix: RVec<u8>, after: RVec<u8>, limit: u32) -> AbiFuture<RVec<KvEntry>> {
        let after = (!after.is_empty()).then_some(after.as_slice());
        ready(
            self.node
                .store
                .scan(&prefix, after, limit as usize)
                .map(|entries| {
                    entries
                        .into_iter()
                        .map(|(key, value)| KvEntry {
                            key: key.into(),
                            value: value.into(),
                        })
                        .collect()
                }),
        )
    }

    fn kv_write_volatile(&self, writes: RVec<KvWrite>) -> AbiFuture<()> {
        self.kv_write(writes)
    }

    fn ipfs_put(&self, _codec: u64, _data: RVec<u8>) -> AbiFuture<RString> {
        ready(Err(Error::unavailable(
            "the ipfs facility is not available in the test harness",
        )))
    }

    fn ipfs_get(&self, _cid: RString) -> AbiFuture<RVec<u8>> {
        ready(Err(Error::unavailable(
            "the ipfs facility is not available in the test harness",
        )))
    }

    fn identity_self(&self) -> AbiFuture<IdentityInfo> {
        ready(Ok(IdentityInfo::from(&self.node.identity)))
    }

    fn identity_resolve(&self, id: RString) -> AbiFuture<IdentityInfo> {
        let resolved = parse_cid(&id, "node ID").and_then(|cid| {
            self.net()?
                .node(&cid)
                .map(|node| IdentityInfo::from(&node.identity))
                .ok_or_else(|| Error::not_found(format!("identity {id} not found on IPFS")))
        });
        ready(resolved)
    }

    fn identity_is_self(&self, id: RString) -> AbiFuture<bool> {
        ready(parse_cid(&id, "node ID").map(|cid| cid == self.node.id()))
    }

    fn identity_same_party(&self, a: RString, b: RString) -> AbiFuture<bool> {
        // No node of a test network rotates its identity: one ID, one party.
        ready(parse_cid(&a, "node ID").and_then(|a| Ok(a == parse_cid(&b, "node ID")?)))
    }

    fn send(&self, envelope: OutgoingEnvelope) -> AbiFuture<RString> {
        ready(
            self.net()
                .and_then(|net| net.send(&self.node, envelope))
                .map(RString::from),
        )
    }

    fn await_reply(&self, _: RString, _: RString, _: u64) -> AbiFuture<ReceivedEnvelope> {
        unbound_wait()
    }

    fn await_reply_cid(&self, _: RString, _: RString, _: u64) -> AbiFuture<RString> {
        unbound_wait()
    }

    fn await_reply_from(
        &self,
        linked: RString,
        kind: RString,
        senders: RVec<RString>,
        timeout_ms: u64,
    ) -> AbiFuture<ReceivedEnvelope> {
        let reply = self.reply(linked, kind, senders, timeout_ms);
        later(async move {
            let (node, cid) = reply.await?;
            node.open(&cid)
        })
    }

    fn await_reply_cid_from(
        &self,
        linked: RString,
        kind: RString,
        senders: RVec<RString>,
        timeout_ms: u64,
    ) -> AbiFuture<RString> {
        let reply = self.reply(linked, kind, senders, timeout_ms);
        later(async move { Ok(RString::from(reply.await?.1.to_string())) })
    }

    fn key_generate(&self, label: RString, kind: KeyKind) -> AbiFuture<RVec<u8>> {
        let label = self.key_label(&label);
        ready(
            self.node
                .keystore
                .generate(&label, kind)
                .map(|public| public.to_bytes().to_vec().into()),
        )
    }

    fn key_public(&self, label: RString) -> AbiFuture<ROption<RVec<u8>>> {
        let label = self.key_label(&label);
        ready(
            self.node
                .keystore
                .public_key(&label)
                .map(|public| public.map(|k| RVec::from(k.to_bytes().to_vec())).into()),
        )
    }

    fn key_sign(&self, label: RString, digest: RVec<u8>) -> AbiFuture<RVec<u8>> {
        let label = self.key_label(&label);
        let signed = <[u8; 32]>::try_from(digest.as_slice())
            .map_err(|_| Error::bad_request("the digest must be 32 bytes"))
            .and_then(|digest| self.node.keystore.sign(&label, &digest));
        ready(signed.map(|signature| signature.to_vec().into()))
    }

    fn key_ecdh(&self, label: RString, peer: RVec<u8>) -> AbiFuture<RVec<u8>> {
        let label = self.key_label(&label);
        let shared = EcPublicKey::from_bytes(&peer, "peer key")
            .map_err(|e| Error::bad_request(e.to_string()))
            .and_then(|peer| self.node.keystore.ecdh(&label, &peer));
        ready(shared.map(|secret| RVec::from(secret.as_slice())))
    }

    fn secret_put(&self, label: RString, secret: RVec<u8>) -> AbiFuture<()> {
        let label = self.key_label(&label);
        let mut secret = secret;
        let stored = self.node.keystore.put_secret(&label, &secret);
        secret.as_mut_slice().zeroize();
        ready(stored)
    }

    fn secret_get(&self, label: RString) -> AbiFuture<ROption<RVec<u8>>> {
        let label = self.key_label(&label);
        ready(
            self.node
                .keystore
                .get_secret(&label)
                .map(|secret| secret.map(|s| RVec::from(s.as_slice())).into()),
        )
    }

    fn secret_delete(&self, label: RString) -> AbiFuture<()> {
        let label = self.key_label(&label);
        ready(self.node.keystore.delete_secret(&label))
    }

    fn beneficiary_secret(&self) -> AbiFuture<ROption<RVec<u8>>> {
        if &*self.instance != BENEFICIARY_INSTANCE {
            return ready(Err(Error::forbidden(format!(
                "only the plugin instance named {BENEFICIARY_INSTANCE:?} may use the node's \
                 beneficiary key"
            ))));
        }
        let secret = self
            .node
            .beneficiary
            .as_ref()
            .map(|b| RVec::from(b.as_slice()));
        ready(Ok(secret.into()))
    }
}
