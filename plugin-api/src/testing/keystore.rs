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

//! A node's keystore in the harness: real secp256k1 key pairs (the
//! protocol's own key types, wiped when dropped) and secrets, held in
//! memory for the life of the test network. What a plugin can observe of
//! the host's keystore is the same: one namespace of labels for key pairs
//! and secrets, a label taken once, and the same error codes (a missing
//! label is `not_found`, a taken one or one of another kind `conflict`).
//! Encryption at rest, which no handler can observe, is left out.

use std::{collections::HashMap, sync::Mutex};

use milagro_proto::{EcPublicKey, EcdhKey, LocalEcdhKey, LocalSigner, Signer};
use zeroize::Zeroizing;

use crate::{Error, abi::KeyKind};

/// What a label holds.
enum Entry {
    Signing(LocalSigner),
    Ecdh(LocalEcdhKey),
    Secret(Zeroizing<Vec<u8>>),
}

impl Entry {
    /// The name the host's keystore gives this kind in its errors.
    fn kind_name(&self) -> &'static str {
        match self {
            Entry::Signing(_) => "signing key",
            Entry::Ecdh(_) => "ECDH key",
            Entry::Secret(_) => "secret",
        }
    }
}

fn missing(label: &str) -> Error {
    Error::not_found(format!("no key or secret labelled {label:?}"))
}

fn wrong_kind(label: &str, expected: &str, found: &Entry) -> Error {
    Error::conflict(format!(
        "keystore: {label:?} is a {}, not a {expected}",
        found.kind_name()
    ))
}

fn rng_failed(e: milagro_proto::Error) -> Error {
    Error::internal(format!("keystore: cannot draw a key: {e}"))
}

/// One node's keys and secrets, by label.
#[derive(Default)]
pub(super) struct TestKeystore {
    entries: Mutex<HashMap<String, Entry>>,
}

impl TestKeystore {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().expect("keystore lock")
    }

    /// Generates a key pair under `label`; refused if the label is taken.
    pub(super) fn generate(&self, label: &str, kind: KeyKind) -> Result<EcPublicKey, Error> {
        let mut entries = self.entries();
        if entries.contains_key(label) {
            return Err(Error::conflict(format!(
                "keystore: {label:?} already exists"
            )));
        }
        let (public, entry) = match kind {
            KeyKind::Secp256k1Signing => {
                let key = LocalSigner::generate().map_err(rng_failed)?;
                (key.public_key(), Entry::Signing(key))
            }
            KeyKind::Secp256k1Ecdh => {
                let key = LocalEcdhKey::generate().map_err(rng_failed)?;
                (key.public_key(), Entry::Ecdh(key))
            }
        };
        entries.insert(label.into(), entry);
        Ok(public)
    }

    pub(super) fn public_key(&self, label: &str) -> Result<Option<EcPublicKey>, Error> {
        match self.entries().get(label) {
            None => Ok(None),
            Some(Entry::Signing(key)) => Ok(Some(key.public_key())),
            Some(Entry::Ecdh(key)) => Ok(Some(key.public_key())),
            Some(secret) => Err(wrong_kind(label, "key pair", secret)),
        }
    }

    /// ECDSA over a SHA-256 digest: 64 bytes r||s, low-S.
    pub(super) fn sign(&self, label: &str, digest: &[u8; 32]) -> Result<[u8; 64], Error> {
        match self.entries().get(label) {
            None => Err(missing(label)),
            Some(Entry::Signing(key)) => key
                .sign_prehash(digest)
                .map(|s| s.to_bytes())
                .map_err(|e| Error::internal(format!("signing with {label:?} failed: {e}"))),
            Some(other) => Err(wrong_kind(label, "signing key", other)),
        }
    }

    /// The x-coordinate of `secret * peer`.
    pub(super) fn ecdh(
        &self,
        label: &str,
        peer: &EcPublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, Error> {
        match self.entries().get(label) {
            None => Err(missing(label)),
            Some(Entry::Ecdh(key)) => key
                .diffie_hellman(peer)
                .map_err(|e| Error::bad_request(format!("keystore: ECDH with {label:?}: {e}"))),
            Some(other) => Err(wrong_kind(label, "ECDH key", other)),
        }
    }

    /// Stores or replaces a secret; refused over a key pair.
    pub(super) fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), Error> {
        let mut entries = self.entries();
        match entries.get(label) {
            Some(key @ (Entry::Signing(_) | Entry::Ecdh(_))) => {
                Err(wrong_kind(label, "secret", key))
            }
            _ => {
                entries.insert(label.into(), Entry::Secret(Zeroizing::new(secret.to_vec())));
                Ok(())
            }
        }
    }

    pub(super) fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        match self.entries().get(label) {
            None => Ok(None),
            Some(Entry::Secret(secret)) => Ok(Some(secret.clone())),
            Some(key) => Err(wrong_kind(label, "secret", key)),
        }
    }

    /// Erases a secret (no error if there is none); refused over a key pair.
    pub(super) fn delete_secret(&self, label: &str) -> Result<(), Error> {
        let mut entries = self.entries();
        match entries.get(label) {
            None => Ok(()),
            Some(Entry::Secret(_)) => {
                entries.remove(label);
                Ok(())
            }
            Some(key) => Err(wrong_kind(label, "secret", key)),
        }
    }
}
