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

//! The safe layer: what plugin authors write against.
//!
//! Implement [`Plugin`] with ordinary async Rust, export it with
//! [`crate::export_plugin!`], and reach the node through [`Host`]. No `unsafe`,
//! no `R*` types, no runtime of your own.

mod error;
mod host;
mod http;
mod keystore;
mod plugin;
mod record;
mod route;

pub use error::{Error, ErrorCode};
pub use host::{
    Envelope, Host, Identities, Identity, Ipfs, KeyType, Keystore, Level, NewEnvelope, Page, Store,
    Transport, Write,
};
pub use http::{Request, Response};
pub use keystore::KeystoreBackend;
#[doc(hidden)]
pub use keystore::keystore_root_module;
pub use plugin::Plugin;
#[doc(hidden)]
pub use plugin::root_module;
pub use record::RecordError;
pub use route::{Handler, HandlerFuture, Route};
