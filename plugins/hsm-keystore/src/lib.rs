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

//! `hsm-keystore`: the node's keystore in a PKCS#11 token (SoftHSM2, a
//! network HSM, a cloud HSM), through the `cryptoki` crate.
//!
//! - Key pairs (secp256k1 signing and ECDH keys) are generated **inside the
//!   token** as token objects with `CKA_SENSITIVE` true and
//!   `CKA_EXTRACTABLE` false; their private halves never leave it. Signing
//!   is `CKM_ECDSA` over the 32-byte digest the host computes, normalised
//!   to low-S here; ECDH is `CKM_ECDH1_DERIVE` with `CKD_NULL`, returning the
//!   shared x-coordinate (the host applies HKDF).
//! - Secrets (custody shares, the D-TA master share, the beneficiary key,
//!   the ML-KEM seed) are encrypted with `CKM_AES_GCM` under one
//!   non-extractable AES-256 token key (created on first use) and the
//!   ciphertext is kept in the token too, as a private `CKO_DATA` object.
//!   Plaintext exists only in memory, for the call, and is zeroized after.
//! - Everything is found by label (`key_prefix` + the host's label) after a
//!   restart, never by a stored handle.
//! - One logged-in session lives as long as the keystore (PKCS#11 login
//!   state is lost when an application's last session closes); operations
//!   take a session from a small pool, so concurrent calls do not queue
//!   behind one another.
//!
//! Configured by the `[[plugins]]` entry that `[keystore] backend` names;
//! see `docs/hsm.md`.

#![forbid(unsafe_code)]

mod token;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Error, KeyType, KeystoreBackend};
use serde::Deserialize;

pub use token::{Token, TokenError};

/// The `config` table of the plugin entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Path of the PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Label of the token to use.
    pub token_label: String,
    /// Environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// File holding the user PIN (mode 0600 or stricter; a trailing newline
    /// is ignored).
    pub pin_file: Option<PathBuf>,
    /// Prepended to every object label, so several nodes can share a token.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Most idle sessions kept open for reuse.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
}

fn default_prefix() -> String {
    "milagro/".into()
}

fn default_sessions() -> usize {
    8
}

/// The keystore backend this library exports.
pub struct HsmKeystore {
    token: Arc<Token>,
    /// Serialises label creation (a check then a create must not interleave).
    create: Mutex<()>,
}

impl HsmKeystore {
    pub fn open(config: &Config) -> Result<HsmKeystore, TokenError> {
        Ok(HsmKeystore {
            token: Arc::new(Token::open(config)?),
            create: Mutex::new(()),
        })
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    fn creating(&self) -> std::sync::MutexGuard<'_, ()> {
        self.create.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeystoreBackend for HsmKeystore {
    type Config = Config;
    const NAME: &'static str = "hsm-keystore";

    fn new(config: Config) -> Result<Self, Error> {
        HsmKeystore::open(&config).map_err(Error::from)
    }

    fn describe(&self) -> String {
        self.token.describe()
    }

    fn generate(&self, label: &str, kind: KeyType) -> Result<Vec<u8>, Error> {
        let _creating = self.creating();
        if self.token.label_taken(label)? {
            return Err(Error::conflict(format!("{label:?} already exists")));
        }
        Ok(self.token.generate(label, kind)?.to_vec())
    }

    fn public_key(&self, label: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.token.key(label)?.map(|k| k.public.to_vec()))
    }

    fn sign_prehash(&self, label: &str, digest: &[u8; 32]) -> Result<[u8; 64], Error> {
        Ok(self.token.sign_prehash(label, digest)?)
    }

    fn ecdh(&self, label: &str, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        Ok(self.token.ecdh(label, peer)?)
    }

    fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), Error> {
        let _creating = self.creating();
        Ok(self.token.put_secret(label, secret)?)
    }

    fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        Ok(self.token.get_secret(label)?)
    }

    fn delete_secret(&self, label: &str) -> Result<(), Error> {
        Ok(self.token.delete_secret(label)?)
    }
}

milagro_plugin_api::export_keystore!(HsmKeystore);
