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

//! The keystore facility: key pairs that sign and agree keys without their
//! private halves ever leaving the keystore, and secrets kept encrypted at
//! rest.
//!
//! [`Keystore`] is the backend trait (the file backend lives in [`file`];
//! a plugin library's backend, e.g. PKCS#11, is adapted in [`plugin`]). [`KeystoreSigner`] and
//! [`KeystoreEcdh`] adapt a stored key to the protocol's `Signer` and
//! `EcdhKey` traits, so identity documents and envelopes are signed and
//! opened without the host holding raw private keys.

pub mod file;
pub mod plugin;

use std::sync::Arc;

use milagro_proto::{EcPublicKey, EcdhKey, KeyError, Signature, Signer};
use serde::Deserialize;
use zeroize::Zeroizing;

/// Kinds of key pairs a keystore generates (the host's own type: the
/// plugin ABI's twin converts at the adapters, `facilities.rs` and
/// `keystore/plugin.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// secp256k1 ECDSA (SHA-256 prehash, low-S).
    Secp256k1Signing,
    /// secp256k1 ECDH.
    Secp256k1Ecdh,
}

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("keystore: no key or secret labelled {0:?}")]
    Missing(String),
    #[error("keystore: {label:?} already exists")]
    Exists { label: String },
    #[error("keystore: {label:?} is a {found}, not a {expected}")]
    WrongKind {
        label: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "keystore: {label:?} cannot be decrypted (wrong master key or passphrase, or a damaged file)"
    )]
    Decrypt { label: String },
    #[error("keystore: invalid input: {0}")]
    Invalid(String),
    #[error("keystore: {0}")]
    Io(String),
    /// The keystore's files cannot be read or written (disk full, read-only
    /// or failing file system): nothing was stored, a retry may succeed.
    #[error("keystore storage failing: {0}")]
    Storage(String),
}

/// `[keystore]` in host.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeystoreConfig {
    /// `file` (default), or the name of the `[[plugins]]` entry whose
    /// library provides the keystore (e.g. `hsm-keystore`).
    pub backend: String,
    /// File backend: derive the master key from the passphrase in this
    /// environment variable (Argon2id) instead of the `master.key` file.
    pub passphrase_env: Option<String>,
}

impl Default for KeystoreConfig {
    fn default() -> Self {
        KeystoreConfig {
            backend: "file".into(),
            passphrase_env: None,
        }
    }
}

/// A keystore backend. Calls may block (disk, HSM): async callers run them
/// on blocking threads.
pub trait Keystore: Send + Sync {
    /// Generates a key pair under `label`; fails if the label is taken.
    /// Returns the compressed public key.
    fn generate(&self, label: &str, kind: KeyKind) -> Result<EcPublicKey, KeystoreError>;
    fn public_key(&self, label: &str) -> Result<Option<EcPublicKey>, KeystoreError>;
    /// ECDSA over a SHA-256 digest, low-S.
    fn sign_prehash(&self, label: &str, digest: &[u8; 32]) -> Result<Signature, KeystoreError>;
    /// x-coordinate of `secret * peer`.
    fn ecdh(&self, label: &str, peer: &EcPublicKey) -> Result<Zeroizing<[u8; 32]>, KeystoreError>;
    /// Stores (or replaces) a secret, encrypted at rest.
    fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), KeystoreError>;
    fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError>;
    /// Erases a secret (no error if there is none): custody erases a share
    /// once a reshare has replaced it.
    fn delete_secret(&self, label: &str) -> Result<(), KeystoreError>;
}

/// A stored signing key, usable wherever the protocol wants a [`Signer`].
#[derive(Clone)]
pub struct KeystoreSigner {
    keystore: Arc<dyn Keystore>,
    label: String,
    public: EcPublicKey,
}

impl KeystoreSigner {
    pub fn new(keystore: Arc<dyn Keystore>, label: &str) -> Result<KeystoreSigner, KeystoreError> {
        let public = keystore
            .public_key(label)?
            .ok_or_else(|| KeystoreError::Missing(label.into()))?;
        Ok(KeystoreSigner {
            keystore,
            label: label.into(),
            public,
        })
    }
}

impl Signer for KeystoreSigner {
    fn public_key(&self) -> EcPublicKey {
        self.public
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<Signature, KeyError> {
        self.keystore
            .sign_prehash(&self.label, digest)
            .map_err(|e| KeyError::Backend(e.to_string()))
    }
}

/// A stored ECDH key, usable wherever the protocol wants an [`EcdhKey`].
#[derive(Clone)]
pub struct KeystoreEcdh {
    keystore: Arc<dyn Keystore>,
    label: String,
    public: EcPublicKey,
}

impl KeystoreEcdh {
    pub fn new(keystore: Arc<dyn Keystore>, label: &str) -> Result<KeystoreEcdh, KeystoreError> {
        let public = keystore
            .public_key(label)?
            .ok_or_else(|| KeystoreError::Missing(label.into()))?;
        Ok(KeystoreEcdh {
            keystore,
            label: label.into(),
            public,
        })
    }
}

impl EcdhKey for KeystoreEcdh {
    fn public_key(&self) -> EcPublicKey {
        self.public
    }

    fn diffie_hellman(&self, peer: &EcPublicKey) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        self.keystore
            .ecdh(&self.label, peer)
            .map_err(|e| KeyError::Backend(e.to_string()))
    }
}
