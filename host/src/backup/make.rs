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

//! Making a backup of a running node: the snapshot of its database and
//! keystore, the manifest that describes them, and the archive's plaintext
//! streamed to `milagro backup` from a blocking thread.

use std::{
    fs::{self, File},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use bytes::Bytes;
use milagro_proto::{Limits, VerifiedIdentity};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    archive::{Hashing, sha256_hex, write_member_header, write_records},
    data_dir::{IPFS_KEY_FILE, ipfs_repo},
    error::{BackupError, io_error},
    format::{DATABASE, FORMAT, IPFS_KEY, KEYSTORE_PREFIX, MANIFEST, VERSION, valid_file_name},
    manifest::{KeystoreManifest, Manifest, Member, TokenObject},
};
use crate::{
    config::Config,
    identity::{self, IdentityError},
    keystore::Keystore,
    store::{Snapshot, Store},
};

/// Largest file of the keystore or IPFS key read into an archive.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Size of the chunks a node streams.
const CHUNK: usize = 64 * 1024;

/// What the running node needs to stream its backups.
pub struct Sources {
    pub store: Store,
    pub node_name: String,
    /// `[keystore] backend`.
    pub backend: String,
    /// The file keystore's dir, with the file backend.
    pub keystore_dir: Option<PathBuf>,
    pub keystore: Arc<dyn Keystore>,
    /// The embedded IPFS node's key file, in embedded mode.
    pub ipfs_key: Option<PathBuf>,
    /// One backup at a time.
    running: AtomicBool,
}

impl Sources {
    pub fn new(config: &Config, store: Store, keystore: Arc<dyn Keystore>) -> Sources {
        let data_dir = &config.node.data_dir;
        Sources {
            store,
            node_name: config.node.name.clone(),
            backend: config.keystore.backend.clone(),
            keystore_dir: (config.keystore.backend == "file").then(|| data_dir.join("keystore")),
            keystore,
            ipfs_key: ipfs_repo(config).map(|repo| repo.join(IPFS_KEY_FILE)),
            running: AtomicBool::new(false),
        }
    }
}

/// Clears [`Sources::running`] when the backup ends, however it ends.
struct Running(Arc<Sources>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

/// A member read into memory (keystore files and the IPFS key are small;
/// the master key among them is zeroized when dropped).
struct SmallMember {
    name: String,
    data: Zeroizing<Vec<u8>>,
}

fn read_small(path: &Path) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let file = File::open(path).map_err(io_error("cannot read", path))?;
    let mut data = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(io_error("cannot read", path))?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(BackupError::Refused(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(data)
}

/// The keystore's files (temp files of writes in progress left out).
fn keystore_files(dir: &Path) -> Result<Vec<SmallMember>, BackupError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("cannot list", dir))? {
        let entry = entry.map_err(io_error("cannot list", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if valid_file_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            Ok(SmallMember {
                data: read_small(&dir.join(&name))?,
                name: format!("{KEYSTORE_PREFIX}{name}"),
            })
        })
        .collect()
}

/// What a keystore plugin must hold for this node: every generation's key
/// pairs (with their public keys) and ML-KEM seed, and the beneficiary key.
fn token_objects(
    keystore: &dyn Keystore,
    generation: u32,
    chain: &[VerifiedIdentity],
) -> Result<Vec<TokenObject>, BackupError> {
    let mut objects = Vec::new();
    for g in 1..=generation {
        for (what, kind) in [("signing", "signing key"), ("ecdh", "ECDH key")] {
            let label = identity::label(g, what);
            let public = keystore.public_key(&label)?;
            objects.push(TokenObject {
                label,
                kind: kind.into(),
                public_key: public.map(|k| hex::encode(k.to_bytes())),
            });
        }
        objects.push(TokenObject {
            label: identity::label(g, "kem"),
            kind: "secret".into(),
            public_key: None,
        });
    }
    if chain.iter().any(|d| d.beneficiary_key().is_some()) {
        objects.push(TokenObject {
            label: identity::BENEFICIARY.into(),
            kind: "secret".into(),
            public_key: None,
        });
    }
    Ok(objects)
}

/// A snapshot of the node with its manifest, ready to be written.
struct Prepared {
    snapshot: Snapshot,
    small: Vec<SmallMember>,
    manifest: Manifest,
}

/// Takes the snapshot and builds the manifest: the database is read once
/// to hash it (the snapshot gives the same bytes when it is streamed).
fn prepare(sources: &Sources) -> Result<Prepared, BackupError> {
    let snapshot = sources.store.snapshot()?;
    let limits = Limits::default();
    let read = |key: &[u8]| snapshot.get("node", key);
    let chain = identity::stored_chain(&read, &limits)?;
    let Some(current) = chain.first() else {
        return Err(IdentityError::NotInitialised.into());
    };
    let generation = identity::stored_generation(&read)?;
    let mut hashing = Hashing {
        inner: io::sink(),
        hasher: Sha256::new(),
        bytes: 0,
    };
    write_records(&snapshot, &mut hashing)?;
    let mut members = vec![Member {
        name: DATABASE.into(),
        bytes: hashing.bytes,
        sha256: hex::encode(hashing.hasher.finalize()),
    }];
    // After the snapshot: every secret it refers to is in the keystore.
    let mut small = match &sources.keystore_dir {
        Some(dir) => keystore_files(dir)?,
        None => Vec::new(),
    };
    if let Some(path) = sources.ipfs_key.as_deref().filter(|p| p.exists()) {
        small.push(SmallMember {
            name: IPFS_KEY.into(),
            data: read_small(path)?,
        });
    }
    members.extend(small.iter().map(|m| Member {
        name: m.name.clone(),
        bytes: m.data.len() as u64,
        sha256: sha256_hex(&m.data),
    }));
    let token_must_hold = match sources.keystore_dir {
        Some(_) => Vec::new(),
        None => token_objects(sources.keystore.as_ref(), generation, &chain)?,
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        node_id: current.id().to_string(),
        node_name: sources.node_name.clone(),
        created_ms: crate::clock::now_ms(),
        milagro_version: env!("CARGO_PKG_VERSION").into(),
        identity_chain: chain.iter().map(|d| d.id().to_string()).collect(),
        keystore: KeystoreManifest {
            backend: sources.backend.clone(),
            token_must_hold,
        },
        members,
    };
    Ok(Prepared {
        snapshot,
        small,
        manifest,
    })
}

/// Writes the archive's plaintext: manifest, database, small members.
fn write_archive(prepared: &Prepared, out: &mut impl Write) -> Result<(), BackupError> {
    let broken = |e: io::Error| BackupError::Damaged(format!("cannot stream the backup: {e}"));
    let manifest = serde_json::to_vec(&prepared.manifest).expect("a manifest serialises");
    write_member_header(out, MANIFEST, manifest.len() as u64).map_err(broken)?;
    out.write_all(&manifest).map_err(broken)?;
    write_member_header(out, DATABASE, prepared.manifest.members[0].bytes).map_err(broken)?;
    write_records(&prepared.snapshot, out)?;
    for member in &prepared.small {
        write_member_header(out, &member.name, member.data.len() as u64).map_err(broken)?;
        out.write_all(&member.data).map_err(broken)?;
    }
    out.flush().map_err(broken)
}

/// A `Write` that sends what is written, in chunks, to a channel.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The chunks of a backup being streamed; an `Err` item breaks the stream.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>;

/// Starts a backup of the running node: takes the snapshot and builds the
/// manifest, then streams the archive's plaintext on a blocking thread.
/// `Err` before anything is streamed (one backup at a time; no identity;
/// the snapshot failed).
pub async fn stream(sources: &Arc<Sources>) -> Result<(Manifest, Chunks), BackupError> {
    if sources.running.swap(true, Ordering::SeqCst) {
        return Err(BackupError::Refused(
            "a backup of this node is already being taken".into(),
        ));
    }
    let running = Running(Arc::clone(sources));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let prepared = match prepare(&running.0) {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        if ready_tx.send(Ok(prepared.manifest.clone())).is_err() {
            return;
        }
        let mut out = ChannelWriter {
            tx,
            buffer: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = write_archive(&prepared, &mut out) {
            tracing::warn!("backup stream stopped: {e}");
            let _ = out
                .tx
                .blocking_send(Err(io::Error::other("the backup stream stopped")));
        }
        drop(running);
    });
    let manifest = ready_rx
        .await
        .map_err(|_| BackupError::Refused("the backup task ended early".into()))??;
    tracing::info!(
        node_id = %manifest.node_id,
        members = manifest.members.len() + 1,
        "backup snapshot taken; streaming it"
    );
    Ok((manifest, rx))
}
