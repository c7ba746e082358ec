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

//! `milagro restore`: an archive checked whole, then written into a
//! staging dir, the restored node loaded and checked from it, and only
//! then moved into the (empty) data dir.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufReader},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use milagro_proto::{EcdhKey, Limits, Signer};

use super::{
    archive::{Records, read_archive},
    data_dir::{DATABASE_FILE, IPFS_KEY_FILE, ipfs_repo},
    encryption::{SecretString, decrypt},
    error::{BackupError, io_error, read_error},
    format::{DATABASE, KEYSTORE_PREFIX},
    manifest::Manifest,
};
use crate::{
    config::Config,
    identity::{self, IdentityError, NodeIdentity},
    keystore::{Keystore, file::FileKeystore},
    store::Store,
};

/// What a restore did.
pub struct Restored {
    pub manifest: Manifest,
    /// Database entries written.
    pub entries: u64,
    pub data_dir: PathBuf,
}

/// Whether `dir` is absent or an empty directory.
fn absent_or_empty(dir: &Path) -> Result<bool, BackupError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io_error("cannot read", dir)(e)),
    }
}

fn open_archive(path: &Path) -> Result<BufReader<File>, BackupError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(io_error("cannot open", path))
}

fn create_private(path: &Path) -> Result<File, BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("cannot create", path))
}

fn create_private_dir(path: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error("cannot create", path))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("cannot sync", dir))
}

/// Restores the archive at `archive` into the empty (or absent) data dir
/// of `config`, with the node stopped. The whole archive is decrypted and
/// checked against its manifest first; then it is decrypted again into a
/// staging dir beside the data dir, the restored identity is loaded from
/// it (its keys must match the identity document, and its ID the
/// manifest's), and only then is the staging dir renamed into place.
/// Nothing is left behind when it fails.
pub fn restore(
    config: &Config,
    archive: &Path,
    passphrase: &SecretString,
) -> Result<Restored, BackupError> {
    let data_dir = &config.node.data_dir;
    if !absent_or_empty(data_dir)? {
        return Err(BackupError::Refused(format!(
            "the data dir {} is not empty: restore only into a new node's (empty) data dir, \
             so that nothing is overwritten",
            data_dir.display()
        )));
    }
    let ipfs_key = ipfs_repo(config).map(|repo| repo.join(IPFS_KEY_FILE));
    // An IPFS repo outside the data dir must not hold another key.
    let outside_key = ipfs_key.clone().filter(|k| !k.starts_with(data_dir));
    if let Some(key) = outside_key.as_deref().filter(|k| k.exists()) {
        return Err(BackupError::Refused(format!(
            "{} exists: the IPFS repo already has a peer key",
            key.display()
        )));
    }
    // Pass 1: everything checked, nothing written.
    let manifest = read_archive(decrypt(passphrase, open_archive(archive)?)?, |_, data| {
        io::copy(data, &mut io::sink())
            .map(drop)
            .map_err(|e| read_error("a member", e))
    })?;
    if manifest.keystore.backend != config.keystore.backend {
        return Err(BackupError::Refused(format!(
            "the archive was made with keystore backend {:?}, the config names {:?}",
            manifest.keystore.backend, config.keystore.backend
        )));
    }
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let leaf = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let staging = parent.join(format!(".{leaf}.restore-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let staged_key = outside_key
        .as_ref()
        .map(|_| staging.with_extension("ipfs-key"));
    let outcome = stage_and_check(
        config,
        archive,
        passphrase,
        &manifest,
        &staging,
        staged_key.as_deref(),
    )
    .and_then(|entries| {
        create_private_dir(parent)?;
        if data_dir.exists() {
            fs::remove_dir(data_dir).map_err(io_error("cannot replace", data_dir))?;
        }
        fs::rename(&staging, data_dir).map_err(io_error("cannot move into place", data_dir))?;
        sync_dir(parent)?;
        if let (Some(staged), Some(key)) = (&staged_key, &outside_key) {
            let repo = key.parent().expect("a key file is in a repo");
            create_private_dir(repo)?;
            fs::rename(staged, key).map_err(io_error("cannot move into place", key))?;
            sync_dir(repo)?;
        }
        Ok(entries)
    });
    match outcome {
        Ok(entries) => Ok(Restored {
            manifest,
            entries,
            data_dir: data_dir.clone(),
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            if let Some(staged) = &staged_key {
                let _ = fs::remove_file(staged);
            }
            Err(e)
        }
    }
}

/// Pass 2 of a restore: writes the members into `staging` (the IPFS key
/// to `staged_key` when the repo is outside the data dir), then checks the
/// restored node. Returns the number of database entries.
fn stage_and_check(
    config: &Config,
    archive: &Path,
    passphrase: &SecretString,
    manifest: &Manifest,
    staging: &Path,
    staged_key: Option<&Path>,
) -> Result<u64, BackupError> {
    create_private_dir(staging)?;
    let mut entries = 0;
    let embedded = ipfs_repo(config).is_some();
    let again = read_archive(
        decrypt(passphrase, open_archive(archive)?)?,
        |member, data| {
            let name = member.name.as_str();
            if name == DATABASE {
                entries =
                    Store::create_from(&staging.join(DATABASE_FILE), Records { input: data })?;
                return Ok(());
            }
            let path = match name.strip_prefix(KEYSTORE_PREFIX) {
                Some(file) => {
                    create_private_dir(&staging.join("keystore"))?;
                    staging.join("keystore").join(file)
                }
                // Kubo mode: the peer key belongs to the Kubo daemon.
                None if !embedded => return Ok(()),
                None => match staged_key {
                    Some(staged) => staged.to_owned(),
                    None => {
                        let repo = staging.join("ipfs");
                        create_private_dir(&repo)?;
                        repo.join(IPFS_KEY_FILE)
                    }
                },
            };
            let mut file = create_private(&path)?;
            io::copy(data, &mut file).map_err(|e| read_error(name, e))?;
            file.sync_all().map_err(io_error("cannot sync", &path))
        },
    )?;
    if again.created_ms != manifest.created_ms || again.node_id != manifest.node_id {
        return Err(BackupError::Damaged(
            "the archive changed between the check and the restore".into(),
        ));
    }
    if staging.join("keystore").exists() {
        sync_dir(&staging.join("keystore"))?;
    }
    sync_dir(staging)?;
    check_restored(config, manifest, staging).map_err(|e| BackupError::Check(e.to_string()))?;
    Ok(entries)
}

/// Loads the restored node's identity from `staging` with the configured
/// keystore: the chain must be the manifest's, the keys the documents', and
/// with a keystore plugin every object the manifest lists must be there.
fn check_restored(config: &Config, manifest: &Manifest, staging: &Path) -> Result<(), BackupError> {
    let store = Store::open(&staging.join(DATABASE_FILE))?;
    let node = store.namespace("node");
    let limits = Limits::default();
    let chain = identity::stored_chain(&|key| node.get(key), &limits)?;
    let ids: Vec<String> = chain.iter().map(|d| d.id().to_string()).collect();
    if ids != manifest.identity_chain {
        return Err(BackupError::Check(format!(
            "the database's identity chain {ids:?} is not the manifest's {:?}",
            manifest.identity_chain
        )));
    }
    let keystore: Arc<dyn Keystore> =
        match crate::plugins::open_keystore(&config.plugins, &config.keystore.backend)
            .map_err(|e| BackupError::Check(e.to_string()))?
        {
            Some(plugin) => Arc::new(plugin),
            None => Arc::new(FileKeystore::open(
                &staging.join("keystore"),
                &config.keystore,
            )?),
        };
    for object in &manifest.keystore.token_must_hold {
        let missing = || {
            BackupError::Check(format!(
                "the keystore ({}) does not hold {} {:?}; restore the token from its own backup first",
                config.keystore.backend, object.kind, object.label
            ))
        };
        match &object.public_key {
            Some(expected) => {
                let held = keystore.public_key(&object.label)?.ok_or_else(missing)?;
                if &hex::encode(held.to_bytes()) != expected {
                    return Err(BackupError::Check(format!(
                        "the keystore's {:?} is another key than the backed-up node's",
                        object.label
                    )));
                }
            }
            None => {
                keystore.get_secret(&object.label)?.ok_or_else(missing)?;
            }
        }
    }
    let restored =
        NodeIdentity::load(&node, &keystore, &limits)?.ok_or(IdentityError::NotInitialised)?;
    let document = &restored.document;
    if restored.id().to_string() != manifest.node_id {
        return Err(BackupError::Check(format!(
            "the restored node ID is {}, the archive's {}",
            restored.id(),
            manifest.node_id
        )));
    }
    if &restored.signer.public_key() != document.signing_key()
        || &EcdhKey::public_key(&restored.ecdh) != document.ecdh_key()
        || restored.kem.public_key().to_bytes() != document.kem_key().to_bytes()
    {
        return Err(BackupError::Check(
            "the keystore's keys are not the ones the identity document names".into(),
        ));
    }
    Ok(())
}
