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

//! The trait a plugin implements, and the adapter that exposes it through
//! the ABI with every synchronous entry point guarded against panics.

use std::{
    any::Any,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RString},
};
use async_ffi::{FfiFuture, FutureExt as _};
use futures::FutureExt as _;
use serde::de::DeserializeOwned;

use super::{Envelope, Error, Host, Request, Response, Route, route::RouteHandlers};
use crate::abi::{
    AbiError, AbiRequest, AbiResponse, HostBox, PluginBox, PluginDescriptor, PluginMod,
    PluginModRef, PluginObj, PluginObj_TO, ReceivedEnvelope,
};

/// A Milagro plugin, in plain async Rust.
///
/// Export it with [`crate::export_plugin!`]. Futures returned by the
/// handlers run on the host's runtime: use the [`Host`] for timers, storage
/// and network, never tokio's reactor (the plugin's copy of tokio, if any,
/// has no runtime).
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The plugin's `config` table from host.toml, deserialised with serde.
    type Config: DeserializeOwned;

    /// The plugin's name (also its default mount: `/v1/<name>`).
    const NAME: &'static str;
    /// The plugin's version, usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;

    /// Builds an instance from its config when the node starts. A failure
    /// refuses the start-up with the error's message, so make it say what
    /// to fix.
    fn new(config: Self::Config, host: Host) -> Result<Self, Error>;

    /// The routes served under the mount point, each with its handler.
    /// Read once, when the plugin is built: an operation id or a method and
    /// path declared twice refuses the start-up.
    fn routes(&self) -> Vec<Route<Self>>;

    /// Envelope kinds this plugin consumes.
    fn consumes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Reply kinds this plugin waits for with `await_reply` without
    /// consuming them (another plugin on the node may consume them, or
    /// none): the host then treats such a reply as handled.
    fn awaits(&self) -> Vec<String> {
        Vec::new()
    }

    /// Handles a received envelope of a kind in [`Plugin::consumes`].
    fn on_envelope(&self, envelope: Envelope) -> impl Future<Output = Result<(), Error>> + Send {
        let kind = envelope.kind;
        async move {
            Err(Error::unprocessable(format!(
                "plugin {} does not consume envelopes of kind {kind}",
                Self::NAME
            )))
        }
    }
}

/// Runs `f`, turning a panic into an error naming where it happened.
fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panicked(what, &*payload)))
}

/// Polls `future`, turning a panic into an error naming where it happened.
async fn guard_async<T>(
    what: &str,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(panicked(what, &*payload)))
}

fn panicked(what: &str, payload: &(dyn Any + Send)) -> Error {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    Error::internal(format!("plugin panicked in {what}: {detail}"))
}

/// Exposes a [`Plugin`] as a [`PluginObj`].
struct Adapter<P> {
    plugin: Arc<P>,
    routes: Arc<RouteHandlers<P>>,
}

impl<P: Plugin> PluginObj for Adapter<P> {
    fn describe(&self) -> RResult<PluginDescriptor, AbiError> {
        guard("describe", || {
            Ok(PluginDescriptor {
                name: P::NAME.into(),
                version: P::VERSION.into(),
                routes: self.routes.specs.clone().into(),
                consumes: self
                    .plugin
                    .consumes()
                    .into_iter()
                    .map(RString::from)
                    .collect(),
                awaits: self
                    .plugin
                    .awaits()
                    .into_iter()
                    .map(RString::from)
                    .collect(),
            })
        })
        .map_err(AbiError::from)
        .into()
    }

    fn handle(&self, request: AbiRequest) -> FfiFuture<AbiResponse> {
        let plugin = Arc::clone(&self.plugin);
        let routes = Arc::clone(&self.routes);
        async move {
            let request = Request::from(request);
            let handled = match routes.handler(&request.operation) {
                Some(handler) => guard_async("handle", handler(&plugin, &request)).await,
                None => Err(Error::not_found(format!(
                    "plugin {} has no operation {}",
                    P::NAME,
                    request.operation
                ))),
            };
            handled.unwrap_or_else(Response::from).into()
        }
        .into_ffi()
    }

    fn on_envelope(&self, envelope: ReceivedEnvelope) -> FfiFuture<RResult<(), AbiError>> {
        let plugin = Arc::clone(&self.plugin);
        async move {
            guard_async("on_envelope", plugin.on_envelope(Envelope::from(envelope)))
                .await
                .map_err(AbiError::from)
                .into()
        }
        .into_ffi()
    }
}

/// The ABI constructor of `P`: parses the config, builds the plugin, guarded.
extern "C" fn construct<P: Plugin>(
    config_json: RString,
    host: HostBox,
) -> RResult<PluginBox, AbiError> {
    guard("new", || {
        let config: P::Config = serde_json::from_str(config_json.as_str()).map_err(|e| {
            Error::bad_request(format!("invalid config for plugin {}: {e}", P::NAME))
        })?;
        let plugin = P::new(config, Host::new(host))?;
        let routes = RouteHandlers::new(P::NAME, plugin.routes())?;
        Ok(PluginObj_TO::from_value(
            Adapter {
                plugin: Arc::new(plugin),
                routes: Arc::new(routes),
            },
            TD_Opaque,
        ))
    })
    .map_err(AbiError::from)
    .into()
}

/// The root module of a library exporting `P`. Used by [`crate::export_plugin!`].
#[doc(hidden)]
pub fn root_module<P: Plugin>() -> PluginModRef {
    PluginMod {
        new: construct::<P>,
        new_keystore: None,
    }
    .leak_into_prefix()
}
