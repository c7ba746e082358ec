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
//! Passphrase keystores keep the Argon2id parameters with the salt, in one
//! line of the `kdf` file (mode 0600, written once, atomically):
//! `argon2id v=19 m=<KiB> t=<passes> p=<lanes> salt=<hex>`. A keystore is
//! always opened with the parameters it was made with, so a later change of
//! the defaults ([`DEFAULT_KDF`]) does not lock anybody out. Keystores made
//! before the `kdf` file existed have only a raw `salt` file and were made
//! with [`LEGACY_KDF`] (argon2 0.6's defaults); the first open that proves
//! the passphrase right writes their `kdf` file (leaving `salt`, so an older
//! release still opens them). A `kdf` file below [`MIN_KDF`] or above
//! [`MAX_KDF_M_KIB`] is refused: a weakened or memory-exhausting file is
//! not silently used.
//!
//! Entry file (`<hex(label)>.entry`): `MKS1` | kind (1 byte) | public key
//! (33 bytes, key pairs only) | nonce (12) | ciphertext and tag. The AAD binds
//! the format, kind, label and public key, so an entry cannot be renamed to
//! another label or have its public key swapped unnoticed.
//!
//! Every file is written to a fresh temp file, fsynced, renamed (or, for
//! what must never be replaced, hard-linked) into place and the directory
//! fsynced, so a crash leaves the old or the new file, never a part. Writes
//! of one label are serialised (a lock per label stripe), so two threads
//! storing one label never interleave, and two generating one key pair
//! yield one key (the other gets [`KeystoreError::Exists`]).
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
/// The Argon2id parameters and salt of a passphrase keystore.
const KDF_FILE: &str = "kdf";
/// The salt of a keystore made before [`KDF_FILE`] existed.
const LEGACY_SALT_FILE: &str = "salt";
/// Stripes of the per-label write lock.
const LABEL_LOCKS: usize = 64;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

/// What new passphrase keystores use: RFC 9106's second recommended
/// setting (64 MiB, 3 passes, 4 lanes), above OWASP's minimum.
pub const DEFAULT_KDF: KdfParams = KdfParams {
    m_kib: 64 * 1024,
    t: 3,
    p: 4,
};
/// What keystores without a `kdf` file were made with (argon2 0.6's
/// `Argon2::default()`, which is OWASP's minimum: 19 MiB, 2 passes, 1 lane).
pub const LEGACY_KDF: KdfParams = KdfParams {
    m_kib: 19 * 1024,
    t: 2,
    p: 1,
};
/// The weakest parameters a `kdf` file may state (OWASP's minimum).
pub const MIN_KDF: KdfParams = LEGACY_KDF;
/// The most memory a `kdf` file may ask for (4 GiB), passes and lanes at
/// most 64: a file asking more would exhaust the host, not protect it.
pub const MAX_KDF_M_KIB: u32 = 4 * 1024 * 1024;
const MAX_KDF_T_P: u32 = 64;

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
    /// Writes of one label hold its stripe (see [`FileKeystore::label_lock`]).
    label_locks: [Mutex<()>; LABEL_LOCKS],
    /// Key pairs decrypted so far, by label.
    signers: KeyCache<LocalSigner>,
    ecdh_keys: KeyCache<LocalEcdhKey>,
}

/// Decrypted key pairs of one kind, by label (each zeroized on drop).
type KeyCache<K> = Mutex<HashMap<String, Arc<K>>>;

impl FileKeystore {
    /// Opens (creating if needed) the keystore in `dir`.
    pub fn open(dir: &Path, config: &KeystoreConfig) -> Result<FileKeystore, KeystoreError> {
        Self::open_with(dir, config, DEFAULT_KDF)
    }

    /// [`FileKeystore::open`], making a new passphrase keystore with
    /// `new_kdf` (an existing one keeps the parameters in its `kdf` file).
    pub fn open_with(
        dir: &Path,
        config: &KeystoreConfig,
        new_kdf: KdfParams,
    ) -> Result<FileKeystore, KeystoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("cannot create", dir, e))?;
        let (master, legacy) = match &config.passphrase_env {
            Some(var) => {
                let (key, kdf) = passphrase_key(dir, var, new_kdf)?;
                (key, kdf.legacy.then_some(kdf))
            }
            None => (master_key_file(&dir.join("master.key"))?, None),
        };
        let keystore = FileKeystore {
            dir: dir.to_owned(),
            cipher: Aes256Gcm::new((&*master).into()),
            label_locks: std::array::from_fn(|_| Mutex::new(())),
            signers: Mutex::default(),
            ecdh_keys: Mutex::default(),
        };
        let mut verifier = keystore.read(VERIFIER_LABEL)?;
        if verifier.is_none() {
            match keystore.write(
                VERIFIER_LABEL,
                EntryKind::Secret,
                None,
                VERIFIER_VALUE,
                Replace::Never,
            ) {
                // Another process opening this new keystore wrote it first.
                Err(KeystoreError::Exists { .. }) => verifier = keystore.read(VERIFIER_LABEL)?,
                other => other?,
            }
        }
        match verifier {
            None => {}
            Some((EntryKind::Secret, None, value)) if value.as_slice() == VERIFIER_VALUE => {}
            Some(_) => {
                return Err(KeystoreError::Decrypt {
                    label: VERIFIER_LABEL.into(),
                });
            }
        }
        if let Some(kdf) = legacy {
            // The passphrase is proven right: record what this keystore was
            // made with, so a change of defaults never locks it out.
            write_file(dir, KDF_FILE, kdf.line().as_bytes(), Replace::Never)?;
            tracing::info!(
                dir = %dir.display(),
                "keystore: recorded the legacy Argon2id parameters in {KDF_FILE}"
            );
        }
        Ok(keystore)
    }

    /// The write lock of `label`'s stripe.
    fn label_lock(&self, label: &str) -> std::sync::MutexGuard<'_, ()> {
        let stripe = Sha256::digest(label.as_bytes())[0] as usize % LABEL_LOCKS;
        self.label_locks[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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

    /// Encrypts and durably writes an entry (temp file, fsync, rename, fsync
    /// dir); callers hold the label's lock.
    fn write(
        &self,
        label: &str,
        kind: EntryKind,
        public: Option<&[u8; 33]>,
        plaintext: &[u8],
        replace: Replace,
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
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("entry names are ASCII");
        write_file(&self.dir, name, &file_bytes, replace)
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
        let _lock = self.label_lock(label);
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
        // Never replaces: another process generating this label at the
        // same moment makes one of the two get `Exists`.
        self.write(
            label,
            kind.into(),
            Some(&public.to_bytes()),
            secret.as_slice(),
            Replace::Never,
        )
        .map_err(|e| match e {
            KeystoreError::Exists { .. } => KeystoreError::Exists {
                label: label.into(),
            },
            other => other,
        })?;
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
        let _lock = self.label_lock(label);
        match self.read(label)? {
            Some((kind, _, _)) if kind != EntryKind::Secret => Err(KeystoreError::WrongKind {
                label: label.into(),
                expected: EntryKind::Secret.name(),
                found: kind.name(),
            }),
            _ => self.write(label, EntryKind::Secret, None, secret, Replace::Always),
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

    fn delete_secret(&self, label: &str) -> Result<(), KeystoreError> {
        let _lock = self.label_lock(label);
        match self.read(label)? {
            None => Ok(()),
            Some((EntryKind::Secret, _, _)) => remove_file(&self.dir, &self.path(label)),
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

/// Whether [`write_file`] may replace an existing file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    Always,
    /// Fails with [`KeystoreError::Exists`] if the file exists (atomic:
    /// also against other processes).
    Never,
}

/// Durably writes `dir/name` (mode 0600): a temp file of its own, fsync,
/// rename (or hard link, for [`Replace::Never`]) into place, fsync `dir`.
fn write_file(dir: &Path, name: &str, bytes: &[u8], replace: Replace) -> Result<(), KeystoreError> {
    let mut unique = [0u8; 8];
    getrandom::fill(&mut unique).map_err(|e| KeystoreError::Io(format!("no randomness: {e}")))?;
    // Not derived from `name`: entry names already use most of the 255
    // bytes a file name may have.
    let tmp = dir.join(format!(".{}.tmp", hex::encode(unique)));
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err("cannot create", &tmp, e))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        // A full disk leaves a partial file: do not keep it.
        let _ = fs::remove_file(&tmp);
        return Err(io_err("cannot write", &tmp, e));
    }
    let placed = match replace {
        Replace::Always => fs::rename(&tmp, &path),
        Replace::Never => {
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            linked
        }
    };
    match placed {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeystoreError::Exists { label: name.into() });
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("cannot move into place", &path, e));
        }
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("cannot sync", dir, e))
}

/// Durably removes `path` from `dir`: its bytes are overwritten with zeros
/// and synced first (the entry is encrypted anyway; this keeps a later
/// theft of the master key from reading an erased share off the disk's
/// blocks where the filesystem rewrites in place), then it is unlinked and
/// `dir` synced.
fn remove_file(dir: &Path, path: &Path) -> Result<(), KeystoreError> {
    let len = fs::metadata(path)
        .map_err(|e| io_err("cannot read", path, e))?
        .len();
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(&vec![0u8; len as usize])?;
            f.sync_all()
        })
        .map_err(|e| io_err("cannot overwrite", path, e))?;
    fs::remove_file(path).map_err(|e| io_err("cannot remove", path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("cannot sync", dir, e))
}

/// A passphrase keystore's Argon2id parameters and salt.
struct Kdf {
    params: KdfParams,
    salt: Vec<u8>,
    /// Read from a legacy `salt` file (no `kdf` file yet).
    legacy: bool,
}

impl Kdf {
    /// The `kdf` file's line.
    fn line(&self) -> String {
        let KdfParams { m_kib, t, p } = self.params;
        format!(
            "argon2id v=19 m={m_kib} t={t} p={p} salt={}\n",
            hex::encode(&self.salt)
        )
    }

    /// Parses a `kdf` file, refusing anything but exactly the format, and
    /// parameters outside [`MIN_KDF`]..[`MAX_KDF_M_KIB`].
    fn parse(text: &str, path: &Path) -> Result<Kdf, KeystoreError> {
        let bad = |why: &str| {
            KeystoreError::Invalid(format!(
                "{} is not a keystore kdf file: {why}",
                path.display()
            ))
        };
        let line = text.strip_suffix('\n').unwrap_or(text);
        let fields: Vec<&str> = line.split(' ').collect();
        let [algorithm, version, m, t, p, salt] = fields.as_slice() else {
            return Err(bad("expected `argon2id v=19 m=.. t=.. p=.. salt=..`"));
        };
        if *algorithm != "argon2id" || *version != "v=19" {
            return Err(bad("only argon2id v=19 is supported"));
        }
        let number = |field: &str, key: &str| -> Result<u32, KeystoreError> {
            field
                .strip_prefix(key)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(&format!("bad {key}")))
        };
        let params = KdfParams {
            m_kib: number(m, "m=")?,
            t: number(t, "t=")?,
            p: number(p, "p=")?,
        };
        check_kdf(params).map_err(|why| bad(&why))?;
        let salt = salt
            .strip_prefix("salt=")
            .and_then(|h| hex::decode(h).ok())
            .filter(|s| (16..=64).contains(&s.len()))
            .ok_or_else(|| bad("salt must be 16 to 64 bytes, hex"))?;
        Ok(Kdf {
            params,
            salt,
            legacy: false,
        })
    }
}

/// Refuses parameters weaker than [`MIN_KDF`] (less memory, or less
/// memory x passes) or beyond the maxima.
pub fn check_kdf(params: KdfParams) -> Result<(), String> {
    let KdfParams { m_kib, t, p } = params;
    let work = u64::from(m_kib) * u64::from(t);
    let floor = u64::from(MIN_KDF.m_kib) * u64::from(MIN_KDF.t);
    if m_kib < MIN_KDF.m_kib || work < floor || t == 0 || p == 0 {
        return Err(format!(
            "Argon2id m={m_kib} t={t} p={p} is below the floor m={} t={} p={}",
            MIN_KDF.m_kib, MIN_KDF.t, MIN_KDF.p
        ));
    }
    if m_kib > MAX_KDF_M_KIB || t > MAX_KDF_T_P || p > MAX_KDF_T_P || m_kib < 8 * p {
        return Err(format!(
            "Argon2id m={m_kib} t={t} p={p} is beyond the maximum (m {MAX_KDF_M_KIB} KiB, t and p {MAX_KDF_T_P})"
        ));
    }
    Ok(())
}

/// The keystore's KDF: its `kdf` file, else a legacy `salt` file, else a
/// new `kdf` file with `new` and a random salt.
fn load_or_create_kdf(dir: &Path, new: KdfParams) -> Result<Kdf, KeystoreError> {
    let path = dir.join(KDF_FILE);
    for _ in 0..2 {
        match fs::read_to_string(&path) {
            Ok(text) => return Kdf::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("cannot read", &path, e)),
        }
        let legacy_path = dir.join(LEGACY_SALT_FILE);
        match fs::read(&legacy_path) {
            Ok(salt) if salt.len() >= 8 => {
                return Ok(Kdf {
                    params: LEGACY_KDF,
                    salt,
                    legacy: true,
                });
            }
            Ok(_) => {
                return Err(KeystoreError::Invalid(format!(
                    "{} is shorter than 8 bytes: a damaged keystore salt",
                    legacy_path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("cannot read", &legacy_path, e)),
        }
        check_kdf(new).map_err(KeystoreError::Invalid)?;
        let mut salt = vec![0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| KeystoreError::Io(format!("no randomness: {e}")))?;
        let kdf = Kdf {
            params: new,
            salt,
            legacy: false,
        };
        match write_file(dir, KDF_FILE, kdf.line().as_bytes(), Replace::Never) {
            Ok(()) => return Ok(kdf),
            // Another process made it first: use theirs.
            Err(KeystoreError::Exists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(KeystoreError::Io(format!(
        "{} keeps appearing and vanishing",
        path.display()
    )))
}

/// Derives the master key from a passphrase in the environment with the
/// keystore's Argon2id parameters and salt.
fn passphrase_key(
    dir: &Path,
    var: &str,
    new: KdfParams,
) -> Result<(Zeroizing<[u8; 32]>, Kdf), KeystoreError> {
    let passphrase = Zeroizing::new(std::env::var(var).map_err(|_| {
        KeystoreError::Invalid(format!("the keystore passphrase variable {var} is not set"))
    })?);
    if passphrase.len() < 12 {
        return Err(KeystoreError::Invalid(format!(
            "the keystore passphrase in {var} must be at least 12 characters"
        )));
    }
    let kdf = load_or_create_kdf(dir, new)?;
    let key = derive(passphrase.as_bytes(), &kdf)?;
    Ok((key, kdf))
}

fn derive(passphrase: &[u8], kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let KdfParams { m_kib, t, p } = kdf.params;
    let params = argon2::Params::new(m_kib, t, p, Some(32))
        .map_err(|e| KeystoreError::Invalid(format!("Argon2id parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, &kdf.salt, key.as_mut())
        .map_err(|e| KeystoreError::Invalid(format!("cannot derive the master key: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests;
