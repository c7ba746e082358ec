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

//! The stable ABI between the `milagro` host and its plugins.
//!
//! Only `#[repr(C)]` `StableAbi` types live here; `abi_stable` checks their layout
//! when the host loads a plugin, so a plugin built against an incompatible copy of
//! this crate is refused instead of misbehaving. Plugin authors never use this
//! module directly: the [`crate::sdk`] layer wraps it.
//!
//! Evolution rule (0.x): append new root-module fields after the field marked
//! `#[sabi(last_prefix_field)]` and new trait methods at the end of the traits.

mod host;
mod http;
mod keystore;
mod plugin;

pub use host::*;
pub use http::*;
pub use keystore::*;
pub use plugin::*;

use abi_stable::{StableAbi, std_types::RString};

/// An error crossing the boundary: a stable machine-readable code and a message.
///
/// Messages must never contain secret material.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AbiError {
    /// One of the codes of [`crate::ErrorCode`], as text.
    pub code: RString,
    /// What went wrong, for people; never secret material.
    pub message: RString,
}
