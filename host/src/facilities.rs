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
//! Log, clock and store are provided here. IPFS, identity, transport and
//! keystore are not provided by this host yet and answer `unavailable`, so a
//! plugin can tell "not here" from "failed".

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use abi_stable::std_types::{ROption, RResult, RString, RVec};
use async_ffi::{FfiFuture, FutureExt};
use milagro_plugin_api::{
    Error,
    abi::{
        AbiError, AbiFuture, HostObj, IdentityInfo, KeyKind, KvEntry, KvWrite, LogLevel,
        OutgoingEnvelope, ReceivedEnvelope,
    },
};
use zeroize::Zeroize;

use crate::store::{Namespace, StoreError, Write};

/// What one plugin instance can reach of its host.
#[derive(Clone)]
pub struct PluginHost {
    instance: Arc<str>,
    store: Namespace,
}

impl PluginHost {
    pub fn new(instance: &str, store: Namespace) -> PluginHost {
        PluginHost {
            instance: instance.into(),
            store,
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
            Ok(Err(e)) => RResult::RErr(Error::internal(e.to_string()).into()),
            Err(e) => RResult::RErr(Error::internal(format!("store task failed: {e}")).into()),
        }
    }
    .into_ffi()
}

fn unavailable<T: Send + 'static>(facility: &str) -> AbiFuture<T> {
    let error = AbiError::from(Error::unavailable(format!(
        "the {facility} facility is not available in this host"
    )));
    async move { RResult::RErr(error) }.into_ffi()
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
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
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
        let writes: Vec<Write> = writes
            .into_iter()
            .map(|w| match w {
                KvWrite::Put { key, value } => Write::Put(key.into_vec(), value.into_vec()),
                KvWrite::Delete { key } => Write::Delete(key.into_vec()),
            })
            .collect();
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

    fn ipfs_put(&self, _codec: u64, _data: RVec<u8>) -> AbiFuture<RString> {
        unavailable("ipfs")
    }

    fn ipfs_get(&self, _cid: RString) -> AbiFuture<RVec<u8>> {
        unavailable("ipfs")
    }

    fn identity_self(&self) -> AbiFuture<IdentityInfo> {
        unavailable("identity")
    }

    fn identity_resolve(&self, _id: RString) -> AbiFuture<IdentityInfo> {
        unavailable("identity")
    }

    fn send(&self, _envelope: OutgoingEnvelope) -> AbiFuture<RString> {
        unavailable("transport")
    }

    fn await_reply(
        &self,
        _cid: RString,
        _kind: RString,
        _timeout_ms: u64,
    ) -> AbiFuture<ReceivedEnvelope> {
        unavailable("transport")
    }

    fn key_generate(&self, _label: RString, _kind: KeyKind) -> AbiFuture<RVec<u8>> {
        unavailable("keystore")
    }

    fn key_public(&self, _label: RString) -> AbiFuture<ROption<RVec<u8>>> {
        unavailable("keystore")
    }

    fn key_sign(&self, _label: RString, _digest: RVec<u8>) -> AbiFuture<RVec<u8>> {
        unavailable("keystore")
    }

    fn key_ecdh(&self, _label: RString, _peer: RVec<u8>) -> AbiFuture<RVec<u8>> {
        unavailable("keystore")
    }

    fn secret_put(&self, _label: RString, mut secret: RVec<u8>) -> AbiFuture<()> {
        secret.as_mut_slice().zeroize();
        unavailable("keystore")
    }

    fn secret_get(&self, _label: RString) -> AbiFuture<ROption<RVec<u8>>> {
        unavailable("keystore")
    }
}
