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

//! A keystore provided by a plugin library (`[keystore] backend = "<entry>"`),
//! e.g. `hsm-keystore`: the host side of the ABI's `KeystoreObj`.
//!
//! The backend's methods are synchronous and may block (an HSM round
//! trip); the host already calls the keystore from blocking threads.
//! Secrets that come back across the boundary are copied into
//! `Zeroizing` buffers and the ABI vectors wiped.

use abi_stable::std_types::{ROption, RResult, RString, RVec};
use milagro_plugin_api::{
    Error, ErrorCode,
    abi::{AbiError, KeyKind as AbiKeyKind, KeystoreBox},
};
use milagro_proto::{EcPublicKey, Signature};
use zeroize::{Zeroize, Zeroizing};

use super::{KeyKind, Keystore, KeystoreError};

pub struct PluginKeystore {
    object: KeystoreBox,
    description: String,
}

impl PluginKeystore {
    pub fn new(object: KeystoreBox) -> PluginKeystore {
        let description = object.describe().into_string();
        PluginKeystore {
            object,
            description,
        }
    }

    /// What backs it, in one line (no secrets).
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// Maps a backend error to the host's keystore errors, by code.
fn error(label: &str, e: AbiError) -> KeystoreError {
    let e = Error::from(e);
    match e.code {
        ErrorCode::NotFound => KeystoreError::Missing(label.into()),
        ErrorCode::Conflict => KeystoreError::Exists {
            label: label.into(),
        },
        ErrorCode::BadRequest | ErrorCode::Unprocessable => KeystoreError::Invalid(e.message),
        _ => KeystoreError::Io(e.message),
    }
}

fn result<T>(label: &str, r: RResult<T, AbiError>) -> Result<T, KeystoreError> {
    r.into_result().map_err(|e| error(label, e))
}

fn public_key(label: &str, bytes: &[u8]) -> Result<EcPublicKey, KeystoreError> {
    EcPublicKey::from_bytes(bytes, "keystore public key").map_err(|_| {
        KeystoreError::Io(format!(
            "the keystore returned an invalid public key for {label:?}"
        ))
    })
}

/// Copies a secret out of an ABI vector and wipes the vector.
fn take_secret(mut v: RVec<u8>) -> Zeroizing<Vec<u8>> {
    let secret = Zeroizing::new(v.as_slice().to_vec());
    v.as_mut_slice().zeroize();
    secret
}

impl Keystore for PluginKeystore {
    fn generate(&self, label: &str, kind: KeyKind) -> Result<EcPublicKey, KeystoreError> {
        let kind = match kind {
            KeyKind::Secp256k1Signing => AbiKeyKind::Secp256k1Signing,
            KeyKind::Secp256k1Ecdh => AbiKeyKind::Secp256k1Ecdh,
        };
        let bytes = result(label, self.object.generate(RString::from(label), kind))?;
        public_key(label, &bytes)
    }

    fn public_key(&self, label: &str) -> Result<Option<EcPublicKey>, KeystoreError> {
        match result(label, self.object.public_key(RString::from(label)))? {
            ROption::RSome(bytes) => public_key(label, &bytes).map(Some),
            ROption::RNone => Ok(None),
        }
    }

    fn sign_prehash(&self, label: &str, digest: &[u8; 32]) -> Result<Signature, KeystoreError> {
        let bytes = result(
            label,
            self.object
                .sign_prehash(RString::from(label), RVec::from(digest.as_slice())),
        )?;
        // Strict: the backend promises low-S, and a verifier would refuse
        // a high-S signature anyway.
        Signature::from_bytes(&bytes, "keystore signature").map_err(|e| {
            KeystoreError::Io(format!(
                "the keystore returned a bad signature for {label:?}: {e}"
            ))
        })
    }

    fn ecdh(&self, label: &str, peer: &EcPublicKey) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let shared = take_secret(result(
            label,
            self.object
                .ecdh(RString::from(label), RVec::from(peer.to_bytes().as_slice())),
        )?);
        let shared: [u8; 32] = shared.as_slice().try_into().map_err(|_| {
            KeystoreError::Io(format!(
                "the keystore returned a malformed ECDH value for {label:?}"
            ))
        })?;
        Ok(Zeroizing::new(shared))
    }

    fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), KeystoreError> {
        // The backend wipes its copy; this one is wiped on drop.
        let copy = Zeroizing::new(secret.to_vec());
        result(
            label,
            self.object
                .put_secret(RString::from(label), RVec::from(copy.as_slice())),
        )
    }

    fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError> {
        match result(label, self.object.get_secret(RString::from(label)))? {
            ROption::RSome(secret) => Ok(Some(take_secret(secret))),
            ROption::RNone => Ok(None),
        }
    }

    fn delete_secret(&self, label: &str) -> Result<(), KeystoreError> {
        result(label, self.object.delete_secret(RString::from(label)))
    }
}
