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

//! The keystore a plugin library may provide instead of the host's file
//! keystore (`[keystore] backend = "<plugin entry name>"`).
//!
//! The host constructs it from the library's root module
//! ([`super::PluginMod::new_keystore`]) before it opens the data dir or
//! the node's identity, and calls it from blocking threads: every method is
//! synchronous and may block (an HSM round trip). Labels arrive already
//! namespaced by the host (`node/1/signing`, `plugin/<instance>/...`).
//!
//! Errors use the [`crate::ErrorCode`] texts with a keystore meaning:
//! `not_found` (no such key or secret), `conflict` (label taken),
//! `bad_request` or `unprocessable` (invalid input, wrong kind of key),
//! `unavailable` (token not reachable) and `internal` (anything else).
//! Messages never contain secret material.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RString, RVec},
};

use super::{AbiError, KeyKind};

/// A keystore backend, as seen by the host.
#[sabi_trait]
pub trait KeystoreObj: Send + Sync {
    /// One line saying what backs this keystore (module, token), for the
    /// host's log. No secrets.
    fn describe(&self) -> RString;

    /// Generates a key pair under `label` (fails with `conflict` if the
    /// label is taken); returns the SEC1-compressed public key.
    fn generate(&self, label: RString, kind: KeyKind) -> RResult<RVec<u8>, AbiError>;

    /// The SEC1-compressed public key of the key pair under `label`.
    fn public_key(&self, label: RString) -> RResult<ROption<RVec<u8>>, AbiError>;

    /// ECDSA over a 32-byte digest: 64 bytes r||s, low-S.
    fn sign_prehash(&self, label: RString, digest: RVec<u8>) -> RResult<RVec<u8>, AbiError>;

    /// The x-coordinate of `secret * peer` (peer SEC1-encoded). Secret:
    /// the host zeroizes it after use.
    fn ecdh(&self, label: RString, peer: RVec<u8>) -> RResult<RVec<u8>, AbiError>;

    /// Stores or replaces a secret, protected at rest by the backend. The
    /// backend zeroizes `secret` when done with it.
    fn put_secret(&self, label: RString, secret: RVec<u8>) -> RResult<(), AbiError>;

    /// A stored secret. Secret: the host zeroizes it after use.
    #[sabi(last_prefix_field)]
    fn get_secret(&self, label: RString) -> RResult<ROption<RVec<u8>>, AbiError>;

    /// Erases a secret (no error if there is none). A backend built
    /// before this method existed answers `unavailable`.
    fn delete_secret(&self, label: RString) -> RResult<(), AbiError> {
        let _ = label;
        RResult::RErr(AbiError {
            code: "unavailable".into(),
            message: "this keystore backend cannot erase secrets: upgrade it".into(),
        })
    }
}

/// An owned keystore instance.
pub type KeystoreBox = KeystoreObj_TO<'static, RBox<()>>;
