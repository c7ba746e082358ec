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

//! The file keystore: one file per key or secret in `<data_dir>/keystore/`,
//! each AES-256-GCM encrypted under the master key.
//!
//! The master key is either a random 32-byte `master.key` file (mode 0600,
//! created on first use) or derived with Argon2id from a passphrase given in
//! an environment variable. A verifier entry written at creation makes a
//! wrong master key or passphrase fail at start-up, not at first use.
//!
//! Entry file (`<hex(label)>.entry`): `MKS1` | kind (1 byte) | public key
//! (33 bytes, key pairs only) | nonce (12) | ciphertext and tag. The AAD binds
//! the format, kind, label and public key, so an entry cannot be renamed to
//! another label or have its public key swapped unnoticed.
//!
//! A key pair is never overwritten once generated, so the node's signing
//! and ECDH keys are decrypted once, at first use, and kept in memory
//! (zeroized when the keystore is dropped) instead of being read, decrypted
//! and expanded again for every signature and every envelope opened. This
//! exposes nothing new: the master key that decrypts every entry, and the
//! node's ML-KEM key, are held in memory for the life of the process anyway.

use std::{
    collections::HashMap,
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use milagro_proto::{EcPublicKey, EcdhKey, LocalEcdhKey, LocalSigner, Signature, Signer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{KeyKind, Keystore, KeystoreConfig, KeystoreError};

const MAGIC: &[u8; 4] = b"MKS1";
const AAD_LABEL: &[u8] = b"milagro/keystore/v1\0";
const VERIFIER_LABEL: &str = "keystore/verifier";
const VERIFIER_VALUE: &[u8] = b"milagro keystore verifier v1";

/// What an entry holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EntryKind {
    Signing = 0,
    Ecdh = 1,
    Secret = 2,
}

impl EntryKind {
    fn from_byte(b: u8) -> Option<EntryKind> {
        [EntryKind::Signing, EntryKind::Ecdh, EntryKind::Secret]
            .into_iter()
            .find(|k| *k as u8 == b)
    }

    fn name(self) -> &'static str {
        match self {
            EntryKind::Signing => "signing key",
            EntryKind::Ecdh => "ECDH key",
            EntryKind::Secret => "secret",
        }
    }
}

impl From<KeyKind> for EntryKind {
    fn from(k: KeyKind) -> Self {
        match k {
            KeyKind::Secp256k1Signing => EntryKind::Signing,
            KeyKind::Secp256k1Ecdh => EntryKind::Ecdh,
        }
    }
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> KeystoreError {
    KeystoreError::Storage(format!("{what} {}: {e}", path.display()))
}

/// Longest label stored under its hex name (2 x 120 + ".entry" < 255 bytes).
const MAX_HEX_LABEL: usize = 120;

pub struct FileKeystore {
    dir: PathBuf,
    cipher: Aes256Gcm,
    /// Key pairs decrypted so far, by label.
    signers: KeyCache<LocalSigner>,
    ecdh_keys: KeyCache<LocalEcdhKey>,
}

/// Decrypted key pairs of one kind, by label (each zeroized on drop).
type KeyCache<K> = Mutex<HashMap<String, Arc<K>>>;

impl FileKeystore {
    /// Opens (creating if needed) the keystore in `dir`.
    pub fn open(dir: &Path, config: &KeystoreConfig) -> Result<FileKeystore, KeystoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("cannot create", dir, e))?;
        let master = match &config.passphrase_env {
            Some(var) => passphrase_key(dir, var)?,
            None => master_key_file(&dir.join("master.key"))?,
        };
        let keystore = FileKeystore {
            dir: dir.to_owned(),
            cipher: Aes256Gcm::new((&*master).into()),
            signers: Mutex::default(),
            ecdh_keys: Mutex::default(),
        };
        match keystore.read(VERIFIER_LABEL)? {
            None => keystore.write(VERIFIER_LABEL, EntryKind::Secret, None, VERIFIER_VALUE)?,
            Some((EntryKind::Secret, None, value)) if value.as_slice() == VERIFIER_VALUE => {}
            Some(_) => {
                return Err(KeystoreError::Decrypt {
                    label: VERIFIER_LABEL.into(),
                });
            }
        }
        Ok(keystore)
    }

    /// The entry file of `label`: the label in hex (readable in a listing)
    /// while that fits a file name, else `sha256-` and the label's SHA-256.
    /// Either way the label is bound to the entry by the AEAD's associated
    /// data, so an entry renamed to another label does not decrypt.
    fn path(&self, label: &str) -> PathBuf {
        let name = if label.len() <= MAX_HEX_LABEL {
            hex::encode(label)
        } else {
            format!("sha256-{}", hex::encode(Sha256::digest(label.as_bytes())))
        };
        self.dir.join(format!("{name}.entry"))
    }

    fn aad(kind: EntryKind, label: &str, public: Option<&[u8; 33]>) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        aad.push(kind as u8);
        aad.extend_from_slice(&(label.len() as u32).to_be_bytes());
        aad.extend_from_slice(label.as_bytes());
        aad.extend_from_slice(public.map(|p| p.as_slice()).unwrap_or_default());
        aad
    }

    /// Encrypts and durably writes an entry (temp file, fsync, rename, fsync dir).
    fn write(
        &self,
        label: &str,
        kind: EntryKind,
        public: Option<&[u8; 33]>,
        plaintext: &[u8],
    ) -> Result<(), KeystoreError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| KeystoreError::Io(format!("no randomness: {e}")))?;
        let aad = Self::aad(kind, label, public);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeystoreError::Io("encryption failed".into()))?;
        let mut file_bytes = MAGIC.to_vec();
        file_bytes.push(kind as u8);
        file_bytes.extend_from_slice(public.map(|p| p.as_slice()).unwrap_or_default());
        file_bytes.extend_from_slice(&nonce);
        file_bytes.extend_from_slice(&ciphertext);

        let path = self.path(label);
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err("cannot create", &tmp, e))?;
        if let Err(e) = file.write_all(&file_bytes).and_then(|()| file.sync_all()) {
            // A full disk leaves a partial file: do not keep it.
            let _ = fs::remove_file(&tmp);
            return Err(io_err("cannot write", &tmp, e));
        }
        fs::rename(&tmp, &path).map_err(|e| io_err("cannot rename", &tmp, e))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync", &self.dir, e))
    }

    /// Reads and decrypts an entry, if present.
    #[allow(clippy::type_complexity)]
    fn read(
        &self,
        label: &str,
    ) -> Result<Option<(EntryKind, Option<[u8; 33]>, Zeroizing<Vec<u8>>)>, KeystoreError> {
        let path = self.path(label);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot read", &path, e)),
        };
        let damaged = || KeystoreError::Decrypt {
            label: label.into(),
        };
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(damaged)?;
        let (&kind_byte, rest) = rest.split_first().ok_or_else(damaged)?;
        let kind = EntryKind::from_byte(kind_byte).ok_or_else(damaged)?;
        let (public, rest) = if kind == EntryKind::Secret {
            (None, rest)
        } else {
            let (p, rest) = rest.split_at_checked(33).ok_or_else(damaged)?;
            (Some(<[u8; 33]>::try_from(p).expect("33 bytes")), rest)
        };
        let (nonce, ciphertext) = rest.split_at_checked(12).ok_or_else(damaged)?;
        let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
        let aad = Self::aad(kind, label, public.as_ref());
        let plaintext = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| damaged())?;
        Ok(Some((kind, public, Zeroizing::new(plaintext))))
    }

    /// The 32-byte private scalar of a key pair of `kind`.
    fn private_key(
        &self,
        label: &str,
        kind: EntryKind,
    ) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let (found, _, secret) = self
            .read(label)?
            .ok_or_else(|| KeystoreError::Missing(label.into()))?;
        if found != kind {
            return Err(KeystoreError::WrongKind {
                label: label.into(),
                expected: kind.name(),
                found: found.name(),
            });
        }
        let scalar: [u8; 32] =
            secret
                .as_slice()
                .try_into()
                .map_err(|_| KeystoreError::Decrypt {
                    label: label.into(),
                })?;
        Ok(Zeroizing::new(scalar))
    }

    /// The key pair `label` of `kind` from `cache`, decrypted and parsed
    /// by `parse` on first use.
    fn cached<K>(
        &self,
        cache: &KeyCache<K>,
        label: &str,
        kind: EntryKind,
        parse: impl FnOnce(&[u8; 32]) -> milagro_proto::Result<K>,
    ) -> Result<Arc<K>, KeystoreError> {
        if let Some(key) = cache.lock().expect("key cache lock").get(label) {
            return Ok(Arc::clone(key));
        }
        let scalar = self.private_key(label, kind)?;
        let key = Arc::new(parse(&scalar).map_err(|_| KeystoreError::Decrypt {
            label: label.into(),
        })?);
        cache
            .lock()
            .expect("key cache lock")
            .insert(label.to_string(), Arc::clone(&key));
        Ok(key)
    }
}

impl Keystore for FileKeystore {
    fn generate(&self, label: &str, kind: KeyKind) -> Result<EcPublicKey, KeystoreError> {
        if self.path(label).exists() {
            return Err(KeystoreError::Exists {
                label: label.into(),
            });
        }
        let bad_rng = |e: milagro_proto::Error| KeystoreError::Io(e.to_string());
        let (public, secret) = match kind {
            KeyKind::Secp256k1Signing => {
                let key = LocalSigner::generate().map_err(bad_rng)?;
                (key.public_key(), key.to_bytes())
            }
            KeyKind::Secp256k1Ecdh => {
                let key = LocalEcdhKey::generate().map_err(bad_rng)?;
                (key.public_key(), key.to_bytes())
            }
        };
        self.write(
            label,
            kind.into(),
            Some(&public.to_bytes()),
            secret.as_slice(),
        )?;
        Ok(public)
    }

    fn public_key(&self, label: &str) -> Result<Option<EcPublicKey>, KeystoreError> {
        let Some((kind, public, _)) = self.read(label)? else {
            return Ok(None);
        };
        let public = public.ok_or(KeystoreError::WrongKind {
            label: label.into(),
            expected: "key pair",
            found: kind.name(),
        })?;
        EcPublicKey::from_bytes(&public, "keystore public key")
            .map(Some)
            .map_err(|_| KeystoreError::Decrypt {
                label: label.into(),
            })
    }

    fn sign_prehash(&self, label: &str, digest: &[u8; 32]) -> Result<Signature, KeystoreError> {
        let key = self.cached(
            &self.signers,
            label,
            EntryKind::Signing,
            LocalSigner::from_bytes,
        )?;
        key.sign_prehash(digest)
            .map_err(|e| KeystoreError::Io(format!("signing with {label:?} failed: {e}")))
    }

    fn ecdh(&self, label: &str, peer: &EcPublicKey) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let key = self.cached(
            &self.ecdh_keys,
            label,
            EntryKind::Ecdh,
            LocalEcdhKey::from_bytes,
        )?;
        key.diffie_hellman(peer)
            .map_err(|e| KeystoreError::Invalid(format!("ECDH with {label:?}: {e}")))
    }

    fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), KeystoreError> {
        if label == VERIFIER_LABEL {
            return Err(KeystoreError::Invalid(format!("{label:?} is reserved")));
        }
        match self.read(label)? {
            Some((kind, _, _)) if kind != EntryKind::Secret => Err(KeystoreError::WrongKind {
                label: label.into(),
                expected: EntryKind::Secret.name(),
                found: kind.name(),
            }),
            _ => self.write(label, EntryKind::Secret, None, secret),
        }
    }

    fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError> {
        match self.read(label)? {
            None => Ok(None),
            Some((EntryKind::Secret, _, secret)) => Ok(Some(secret)),
            Some((kind, _, _)) => Err(KeystoreError::WrongKind {
                label: label.into(),
                expected: EntryKind::Secret.name(),
                found: kind.name(),
            }),
        }
    }
}

/// Reads the master key file, creating it (0600) with a random key if absent.
fn master_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if !path.exists() {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut())
            .map_err(|e| KeystoreError::Io(format!("no randomness: {e}")))?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err("cannot create", path, e))?;
        file.write_all(key.as_ref())
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err("cannot write", path, e))?;
    }
    let mode = fs::metadata(path)
        .map_err(|e| io_err("cannot stat", path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeystoreError::Io(format!(
            "master key {} has mode {:o}: others can read it; run chmod 600",
            path.display(),
            mode & 0o777
        )));
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err("cannot read", path, e))?);
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        KeystoreError::Io(format!(
            "master key {} must be exactly 32 bytes",
            path.display()
        ))
    })?;
    Ok(Zeroizing::new(key))
}

/// Derives the master key from a passphrase in the environment (Argon2id,
/// with a random salt kept beside the entries).
fn passphrase_key(dir: &Path, var: &str) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let passphrase = Zeroizing::new(std::env::var(var).map_err(|_| {
        KeystoreError::Invalid(format!("the keystore passphrase variable {var} is not set"))
    })?);
    if passphrase.len() < 12 {
        return Err(KeystoreError::Invalid(format!(
            "the keystore passphrase in {var} must be at least 12 characters"
        )));
    }
    let salt_path = dir.join("salt");
    if !salt_path.exists() {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| KeystoreError::Io(format!("no randomness: {e}")))?;
        fs::write(&salt_path, salt).map_err(|e| io_err("cannot write", &salt_path, e))?;
    }
    let salt = fs::read(&salt_path).map_err(|e| io_err("cannot read", &salt_path, e))?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), &salt, key.as_mut())
        .map_err(|e| KeystoreError::Invalid(format!("cannot derive the master key: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> FileKeystore {
        FileKeystore::open(dir, &KeystoreConfig::default()).unwrap()
    }

    #[test]
    fn keys_sign_and_agree_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ks = open(dir.path());
        let signing = ks
            .generate("node/signing", KeyKind::Secp256k1Signing)
            .unwrap();
        let ecdh = ks.generate("node/ecdh", KeyKind::Secp256k1Ecdh).unwrap();
        assert!(matches!(
            ks.generate("node/signing", KeyKind::Secp256k1Signing),
            Err(KeystoreError::Exists { .. })
        ));
        let digest = [7u8; 32];
        let sig = ks.sign_prehash("node/signing", &digest).unwrap();
        signing.verify_prehash(&digest, &sig, "test").unwrap();

        let peer = LocalEcdhKey::generate().unwrap();
        let ours = ks.ecdh("node/ecdh", &peer.public_key()).unwrap();
        assert_eq!(*ours, *peer.diffie_hellman(&ecdh).unwrap());

        ks.put_secret("plugin/x/share", b"s3cret").unwrap();
        drop(ks);
        let ks = open(dir.path());
        assert_eq!(ks.public_key("node/signing").unwrap(), Some(signing));
        assert_eq!(
            &**ks.get_secret("plugin/x/share").unwrap().unwrap(),
            b"s3cret"
        );
        assert!(ks.get_secret("nope").unwrap().is_none());
        assert!(matches!(
            ks.sign_prehash("node/ecdh", &digest),
            Err(KeystoreError::WrongKind { .. })
        ));
        assert!(matches!(
            ks.get_secret("node/signing"),
            Err(KeystoreError::WrongKind { .. })
        ));
    }

    #[test]
    fn long_labels_are_stored_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let ks = open(dir.path());
        let long = format!(
            "plugin/fiduciary/dkg-deal/{}/{}",
            "b".repeat(59),
            "c".repeat(59)
        );
        let longer = format!("{long}x");
        ks.put_secret(&long, b"one").unwrap();
        ks.put_secret(&longer, b"two").unwrap();
        let exact = "e".repeat(MAX_HEX_LABEL);
        ks.put_secret(&exact, b"three").unwrap();
        drop(ks);
        let ks = open(dir.path());
        assert_eq!(&**ks.get_secret(&long).unwrap().unwrap(), b"one");
        assert_eq!(&**ks.get_secret(&longer).unwrap().unwrap(), b"two");
        assert_eq!(&**ks.get_secret(&exact).unwrap().unwrap(), b"three");
        let hashed = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("sha256-")
            })
            .count();
        assert_eq!(hashed, 2);
    }

    #[test]
    fn nothing_secret_is_stored_in_clear_and_entries_cannot_be_moved() {
        let dir = tempfile::tempdir().unwrap();
        let ks = open(dir.path());
        let secret = b"0123456789abcdef-very-secret-share";
        ks.put_secret("a", secret).unwrap();
        for entry in fs::read_dir(dir.path()).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret));
        }
        // An entry copied under another label does not decrypt.
        fs::copy(ks.path("a"), ks.path("b")).unwrap();
        assert!(matches!(
            ks.get_secret("b"),
            Err(KeystoreError::Decrypt { .. })
        ));
        let mode = fs::metadata(ks.path("a")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn wrong_master_key_or_passphrase_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path());
        fs::write(dir.path().join("master.key"), [1u8; 32]).unwrap();
        assert!(matches!(
            FileKeystore::open(dir.path(), &KeystoreConfig::default()),
            Err(KeystoreError::Decrypt { .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        let config = KeystoreConfig {
            passphrase_env: Some("MILAGRO_TEST_KEYSTORE_PASSPHRASE".into()),
            ..KeystoreConfig::default()
        };
        // SAFETY: this test is the only user of this variable.
        unsafe { std::env::set_var("MILAGRO_TEST_KEYSTORE_PASSPHRASE", "correct horse battery") };
        FileKeystore::open(dir.path(), &config)
            .unwrap()
            .put_secret("s", b"x")
            .unwrap();
        unsafe { std::env::set_var("MILAGRO_TEST_KEYSTORE_PASSPHRASE", "wrong horse battery") };
        assert!(matches!(
            FileKeystore::open(dir.path(), &config),
            Err(KeystoreError::Decrypt { .. })
        ));
        assert!(!dir.path().join("master.key").exists());
    }
}
