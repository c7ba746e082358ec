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

//! Keystore backends in plain Rust: implement [`KeystoreBackend`] and export
//! it with [`crate::export_keystore!`]; the host then uses it as the node's
//! keystore when `[keystore] backend` names the library's plugin entry.
//!
//! Every entry point is guarded against panics, and the secrets that cross
//! the boundary are zeroized on this side once copied.

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RString, RVec},
};
use serde::de::DeserializeOwned;
use zeroize::{Zeroize, Zeroizing};

use super::Error;
use crate::abi::{
    AbiError, HostBox, KeyKind, KeystoreBox, KeystoreObj, KeystoreObj_TO, PluginBox, PluginMod,
    PluginModRef,
};

/// A keystore backend: key pairs whose private halves never leave it, and
/// secrets it protects at rest.
///
/// Calls come from the host's blocking threads, concurrently: implement it
/// with interior locking. Report errors with the codes the host maps back
/// to its keystore errors: [`Error::not_found`] (no such label),
/// [`Error::conflict`] (label taken), [`Error::bad_request`] or
/// [`Error::unprocessable`] (invalid input, wrong kind of key),
/// [`Error::unavailable`] (device unreachable), [`Error::internal`].
/// Never put secret material in a message.
pub trait KeystoreBackend: Send + Sync + Sized + 'static {
    /// The `config` table of the library's `[[plugins]]` entry.
    type Config: DeserializeOwned;

    /// The backend's name, for the host's log and error messages.
    const NAME: &'static str;

    /// Opens the backend. A failure here refuses the node's start-up with
    /// the error's message on one line, so make it say what to fix.
    fn new(config: Self::Config) -> Result<Self, Error>;

    /// One line for the host's log: what backs this keystore. No secrets.
    fn describe(&self) -> String;

    /// Generates a key pair; returns its SEC1-compressed public key.
    fn generate(&self, label: &str, kind: KeyKind) -> Result<Vec<u8>, Error>;

    /// SEC1-compressed public key of a key pair, if there is one.
    fn public_key(&self, label: &str) -> Result<Option<Vec<u8>>, Error>;

    /// ECDSA over a 32-byte digest: 64 bytes r||s, low-S.
    fn sign_prehash(&self, label: &str, digest: &[u8; 32]) -> Result<[u8; 64], Error>;

    /// The x-coordinate of `secret * peer`; `peer` is SEC1-encoded.
    fn ecdh(&self, label: &str, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error>;

    /// Stores or replaces a secret.
    fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), Error>;

    /// A stored secret, if there is one under `label`.
    fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error>;

    /// Erases a secret; no error if there is none.
    fn delete_secret(&self, label: &str) -> Result<(), Error>;
}

/// Runs `f`, turning a panic into an internal error.
fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, Error>) -> RResult<T, AbiError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::internal(format!("keystore panicked in {what}"))))
        .map_err(AbiError::from)
        .into()
}

/// Moves a secret out of an ABI vector, zeroizing the vector.
fn take_secret(mut v: RVec<u8>) -> Zeroizing<Vec<u8>> {
    let secret = Zeroizing::new(v.as_slice().to_vec());
    v.as_mut_slice().zeroize();
    secret
}

/// Exposes a [`KeystoreBackend`] as a [`KeystoreObj`].
struct KeystoreAdapter<K>(K);

impl<K: KeystoreBackend> KeystoreObj for KeystoreAdapter<K> {
    fn describe(&self) -> RString {
        catch_unwind(AssertUnwindSafe(|| self.0.describe()))
            .unwrap_or_else(|_| format!("{} (describe panicked)", K::NAME))
            .into()
    }

    fn generate(&self, label: RString, kind: KeyKind) -> RResult<RVec<u8>, AbiError> {
        guard("generate", || self.0.generate(&label, kind).map(RVec::from))
    }

    fn public_key(&self, label: RString) -> RResult<ROption<RVec<u8>>, AbiError> {
        guard("public_key", || {
            Ok(self.0.public_key(&label)?.map(RVec::from).into())
        })
    }

    fn sign_prehash(&self, label: RString, digest: RVec<u8>) -> RResult<RVec<u8>, AbiError> {
        guard("sign_prehash", || {
            let digest: &[u8; 32] = digest
                .as_slice()
                .try_into()
                .map_err(|_| Error::bad_request("the digest to sign must be 32 bytes"))?;
            Ok(self.0.sign_prehash(&label, digest)?.to_vec().into())
        })
    }

    fn ecdh(&self, label: RString, peer: RVec<u8>) -> RResult<RVec<u8>, AbiError> {
        guard("ecdh", || {
            let shared = self.0.ecdh(&label, &peer)?;
            Ok(RVec::from(shared.as_slice()))
        })
    }

    fn put_secret(&self, label: RString, secret: RVec<u8>) -> RResult<(), AbiError> {
        let secret = take_secret(secret);
        guard("put_secret", || self.0.put_secret(&label, &secret))
    }

    fn get_secret(&self, label: RString) -> RResult<ROption<RVec<u8>>, AbiError> {
        guard("get_secret", || {
            Ok(self
                .0
                .get_secret(&label)?
                .map(|secret| RVec::from(secret.as_slice()))
                .into())
        })
    }

    fn delete_secret(&self, label: RString) -> RResult<(), AbiError> {
        guard("delete_secret", || self.0.delete_secret(&label))
    }
}

/// The ABI keystore constructor of `K`: parses the config, opens, guarded.
extern "C" fn construct_keystore<K: KeystoreBackend>(
    config_json: RString,
) -> RResult<KeystoreBox, AbiError> {
    guard("new", || {
        let config: K::Config = serde_json::from_str(config_json.as_str())
            .map_err(|e| Error::bad_request(format!("invalid config for {}: {e}", K::NAME)))?;
        let backend = K::new(config)?;
        Ok(KeystoreObj_TO::from_value(
            KeystoreAdapter(backend),
            TD_Opaque,
        ))
    })
}

/// A keystore library serves no routes: constructed as an ordinary plugin,
/// it says how it is meant to be used.
extern "C" fn refuse_plugin<K: KeystoreBackend>(
    _config_json: RString,
    _host: HostBox,
) -> RResult<PluginBox, AbiError> {
    RResult::RErr(
        Error::bad_request(format!(
            "{} is a keystore backend: name this entry in [keystore] backend",
            K::NAME
        ))
        .into(),
    )
}

/// The root module of a library exporting the keystore `K`. Used by
/// [`crate::export_keystore!`].
#[doc(hidden)]
pub fn keystore_root_module<K: KeystoreBackend>() -> PluginModRef {
    PluginMod {
        new: refuse_plugin::<K>,
        new_keystore: Some(construct_keystore::<K>),
    }
    .leak_into_prefix()
}
