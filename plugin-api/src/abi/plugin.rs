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

//! The plugin object, its self-description and the root module a plugin exports.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RString, RVec},
};
use async_ffi::FfiFuture;

use super::{AbiError, AbiRequest, AbiResponse, HostBox, KeystoreBox, ReceivedEnvelope};

/// One REST route a plugin serves, relative to its mount point.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Upper-case HTTP method.
    pub method: RString,
    /// Path template relative to the mount point, e.g. `/orders/{reference}`.
    pub path: RString,
    /// Unique within the plugin; handed back in [`AbiRequest::operation`].
    pub operation: RString,
    /// OpenAPI operation object (JSON) describing the route: summary,
    /// parameters, request body and responses.
    pub openapi: RString,
    /// Who may call the route.
    pub access: RouteAccess,
}

/// Who may call a plugin route.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Only a caller presenting the operator's bearer token (the default).
    Operator,
    /// Anyone (end users): no token. The host still applies its body limit,
    /// handler timeout and metrics, and rate-limits each client address.
    Public,
}

/// What a constructed plugin instance says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginDescriptor {
    /// The plugin's own name (a library may be mounted under other instance names).
    pub name: RString,
    /// The plugin's version (its crate version), shown by the host.
    pub version: RString,
    /// The REST routes the instance serves under its mount point.
    pub routes: RVec<RouteSpec>,
    /// Envelope kinds (e.g. `custody/order`) this plugin consumes.
    pub consumes: RVec<RString>,
    /// Reply kinds this plugin only waits for (`await_reply`) without
    /// consuming them; several plugins may name one. A reply of such a kind
    /// that no plugin consumes counts as handled, not as failed.
    pub awaits: RVec<RString>,
}

/// A constructed plugin instance, as seen by the host.
///
/// Sync methods are panic-guarded on the plugin side (a panic unwinding into
/// the host across `extern "C"` would abort it); async ones are guarded by
/// `async_ffi`, which reports a panic to the host's poll.
#[sabi_trait]
pub trait PluginObj: Send + Sync {
    /// The instance's name, version, routes and envelope kinds, asked once
    /// after construction.
    fn describe(&self) -> RResult<PluginDescriptor, AbiError>;

    /// Answers a request the host routed to one of the instance's routes.
    fn handle(&self, request: AbiRequest) -> FfiFuture<AbiResponse>;

    /// Delivers an opened, verified envelope of a kind the plugin consumes.
    #[sabi(last_prefix_field)]
    fn on_envelope(&self, envelope: ReceivedEnvelope) -> FfiFuture<RResult<(), AbiError>>;
}

/// An owned plugin instance.
pub type PluginBox = PluginObj_TO<'static, RBox<()>>;

/// The root module every plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Builds an instance from its config table (as JSON) and its host handle.
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(config_json: RString, host: HostBox) -> RResult<PluginBox, AbiError>,
    /// Builds the keystore backend this library provides, from the config
    /// table (as JSON) of the plugin entry that `[keystore] backend` names.
    /// `None` for libraries that provide no keystore, and read as `None`
    /// from libraries built before this field existed (appended after the
    /// last prefix field, so those still load).
    #[sabi(missing_field(default))]
    pub new_keystore: Option<extern "C" fn(config_json: RString) -> RResult<KeystoreBox, AbiError>>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "milagro_plugin";
    const NAME: &'static str = "milagro plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
