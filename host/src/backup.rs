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

//! Backups of a node: the archive format (docs/backup.md), the snapshot a
//! running node streams to `milagro backup`, the age encryption around it,
//! and `milagro restore` into a fresh data dir.
//!
//! The archive is an [age](https://age-encryption.org/v1) file encrypted to
//! a passphrase (scrypt). Its plaintext is a sequence of members, each
//! `u16 BE name length | name | u64 BE data length | data`; the first is
//! `manifest.json` (format, version, node ID, identity chain, keystore
//! backend, and the name, size and SHA-256 of every other member, in
//! order). age's STREAM AEAD authenticates every 64 KiB chunk and the end
//! of the stream; the manifest's digests are checked as the members are
//! read, by `milagro backup` before it keeps the file and by `milagro
//! restore` before it writes anything.
//!
//! The database is dumped from one redb read transaction (a consistent
//! snapshot that does not hold up the node's writers) as records
//! `u32 BE key length | key | u32 BE value length | value`. The file
//! keystore is copied after the snapshot is taken, so it holds every key
//! and secret the snapshot refers to (the keystore never deletes).

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

pub use age::secrecy::SecretString;
use bytes::Bytes;
use milagro_proto::{Cid, EcdhKey, Limits, Signer, VerifiedIdentity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    config::Config,
    identity::{self, IdentityError, NodeIdentity},
    keystore::{Keystore, KeystoreError, file::FileKeystore},
    store::{Entry, Snapshot, Store, StoreError},
};

/// The `format` of every manifest.
pub const FORMAT: &str = "milagro-backup";
/// The archive format version this build writes and reads.
pub const VERSION: u64 = 1;
/// The first member.
pub const MANIFEST: &str = "manifest.json";
/// The database dump.
pub const DATABASE: &str = "db.kv";
/// Prefix of the file keystore's files.
pub const KEYSTORE_PREFIX: &str = "keystore/";
/// The embedded IPFS node's libp2p key (its peer ID is in the identity
/// document).
pub const IPFS_KEY: &str = "ipfs/identity.key";
/// The libp2p key's file name in the IPFS repo.
const IPFS_KEY_FILE: &str = "identity.key";
/// The database file in the data dir.
pub const DATABASE_FILE: &str = "milagro.redb";
/// The environment variable a passphrase may come from.
pub const PASSPHRASE_ENV: &str = "MILAGRO_BACKUP_PASSPHRASE";
/// The shortest passphrase accepted (it is all that protects the archive).
pub const MIN_PASSPHRASE: usize = 16;

/// Largest manifest read (a hostile archive could claim more).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest key or value of a database record.
const MAX_RECORD_BYTES: u32 = 64 << 20;
/// Largest file of the keystore or IPFS key read into an archive.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Size of the chunks a node streams.
const CHUNK: usize = 64 * 1024;

/// Why a backup or restore failed; each is one line, no secret in it.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the archive is truncated: {0}")]
    Truncated(String),
    #[error("the archive is damaged, cut short or altered: {0}")]
    Damaged(String),
    #[error("the passphrase does not open this archive (wrong passphrase, or an altered header)")]
    WrongPassphrase,
    #[error("not a milagro backup: {0}")]
    NotAnArchive(String),
    #[error(
        "archive format version {found} is not supported: this milagro reads version {VERSION}"
    )]
    Version { found: String },
    #[error("the archive's manifest is invalid: {0}")]
    Manifest(String),
    #[error(
        "archive member {member} does not match the manifest ({what}): the archive was altered or damaged"
    )]
    Mismatch { member: String, what: &'static str },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the passphrase: {0}")]
    Passphrase(String),
    #[error("{0}")]
    Refused(String),
    #[error("the restored node does not check out: {0}")]
    Check(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// An error reading the archive's plaintext: age reports a chunk that does
/// not authenticate as `InvalidData` and a stream cut short as
/// `UnexpectedEof`.
fn read_error(at: &str, e: io::Error) -> BackupError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Truncated(format!("it ends in {at}")),
        io::ErrorKind::InvalidData => BackupError::Damaged(format!("{at}: {e}")),
        _ => BackupError::Damaged(format!("cannot read {at}: {e}")),
    }
}

/// What the archive says about itself; the first member.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u64,
    /// The node's current ID.
    pub node_id: String,
    pub node_name: String,
    /// When the snapshot was taken (ms since the epoch).
    pub created_ms: u64,
    /// The milagro release that wrote it.
    pub milagro_version: String,
    /// The node's identity chain, newest (`node_id`) first.
    pub identity_chain: Vec<String>,
    pub keystore: KeystoreManifest,
    /// Every member after the manifest, in archive order.
    pub members: Vec<Member>,
}

/// The keystore the node used, and what a keystore plugin (an HSM) must
/// hold for the restored node: none of it is in the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreManifest {
    /// `file`, or the `[[plugins]]` entry that provided the keystore.
    pub backend: String,
    /// With a plugin backend: the node's identity keys and secrets, by
    /// keystore label (the plugin adds its own prefix). Plugins' secrets
    /// (custody shares, the D-TA master share) must be there too.
    pub token_must_hold: Vec<TokenObject>,
}

/// One object a keystore plugin must hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenObject {
    pub label: String,
    /// `signing key`, `ECDH key` or `secret`.
    pub kind: String,
    /// Hex compressed public key, for key pairs.
    pub public_key: Option<String>,
}

/// One member after the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub bytes: u64,
    /// Hex SHA-256 of the data.
    pub sha256: String,
}

/// Whether `name` is a member this format has: the database, the IPFS key,
/// or a keystore file (a plain file name, so it cannot leave its dir).
fn valid_member_name(name: &str) -> bool {
    match name.strip_prefix(KEYSTORE_PREFIX) {
        Some(file) => valid_file_name(file),
        None => name == DATABASE || name == IPFS_KEY,
    }
}

fn valid_file_name(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 255
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Manifest {
    /// Parses and checks a manifest: format and version first (so another
    /// version is named as such), then every field.
    fn parse(bytes: &[u8]) -> Result<Manifest, BackupError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| BackupError::Manifest(format!("not JSON: {e}")))?;
        if value["format"] != FORMAT {
            return Err(BackupError::NotAnArchive(format!(
                "its manifest's format is {}, not {FORMAT:?}",
                value["format"]
            )));
        }
        if value["version"] != VERSION {
            return Err(BackupError::Version {
                found: value["version"].to_string(),
            });
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| BackupError::Manifest(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), BackupError> {
        let bad = |m: String| Err(BackupError::Manifest(m));
        if Cid::try_from(self.node_id.as_str()).is_err() {
            return bad(format!("node_id {:?} is not a CID", self.node_id));
        }
        if self.identity_chain.first() != Some(&self.node_id) {
            return bad("the identity chain does not start with node_id".into());
        }
        let mut names = std::collections::HashSet::new();
        for member in &self.members {
            if !valid_member_name(&member.name) {
                return bad(format!("member name {:?} is not allowed", member.name));
            }
            if !names.insert(member.name.as_str()) {
                return bad(format!("member {} is listed twice", member.name));
            }
            if member.sha256.len() != 64 || hex::decode(&member.sha256).is_err() {
                return bad(format!(
                    "member {}: sha256 is not 64 hex digits",
                    member.name
                ));
            }
        }
        if !names.contains(DATABASE) {
            return bad(format!("it lists no {DATABASE}"));
        }
        let has_keystore = names.iter().any(|n| n.starts_with(KEYSTORE_PREFIX));
        match (self.keystore.backend == "file", has_keystore) {
            (true, false) => bad("a file keystore backup without keystore files".into()),
            (false, true) => bad(format!(
                "keystore backend {:?} keeps its keys itself, yet the archive holds keystore files",
                self.keystore.backend
            )),
            _ => Ok(()),
        }
    }
}

fn write_member_header(out: &mut impl Write, name: &str, bytes: u64) -> io::Result<()> {
    let len = u16::try_from(name.len()).expect("member names are short");
    out.write_all(&len.to_be_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&bytes.to_be_bytes())
}

/// Reads one member header: (name, data length).
fn read_member_header(input: &mut impl Read, at: &str) -> Result<(String, u64), BackupError> {
    let mut len = [0u8; 2];
    input.read_exact(&mut len).map_err(|e| read_error(at, e))?;
    let mut name = vec![0u8; u16::from_be_bytes(len) as usize];
    input.read_exact(&mut name).map_err(|e| read_error(at, e))?;
    let mut bytes = [0u8; 8];
    input
        .read_exact(&mut bytes)
        .map_err(|e| read_error(at, e))?;
    let name = String::from_utf8(name)
        .map_err(|_| BackupError::Damaged(format!("{at}: a member name is not UTF-8")))?;
    Ok((name, u64::from_be_bytes(bytes)))
}

/// A writer that counts and hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The database records of `snapshot`, written to `out`.
fn write_records(snapshot: &Snapshot, out: &mut impl Write) -> Result<(), BackupError> {
    snapshot.for_each(|key, value| {
        for part in [key, value] {
            let len = u32::try_from(part.len())
                .ok()
                .filter(|&n| n <= MAX_RECORD_BYTES)
                .ok_or_else(|| BackupError::Refused("a database record is too large".into()))?;
            out.write_all(&len.to_be_bytes())
                .and_then(|()| out.write_all(part))
                .map_err(|e| BackupError::Damaged(format!("cannot stream the database: {e}")))?;
        }
        Ok(())
    })
}

/// Reads the records of a database member until its end.
struct Records<R> {
    input: R,
}

impl<R: Read> Records<R> {
    fn part(&mut self, first: bool) -> Result<Option<Vec<u8>>, BackupError> {
        let at = || format!("member {DATABASE}");
        let mut len = [0u8; 4];
        // A clean end is allowed only before a key.
        let mut filled = 0;
        while filled < 4 {
            match self.input.read(&mut len[filled..]) {
                Ok(0) if first && filled == 0 => return Ok(None),
                Ok(0) => return Err(BackupError::Damaged(format!("{}: a record is cut", at()))),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(&at(), e)),
            }
        }
        let len = u32::from_be_bytes(len);
        if len > MAX_RECORD_BYTES {
            return Err(BackupError::Damaged(format!(
                "{}: a record claims {len} bytes",
                at()
            )));
        }
        let mut part = vec![0u8; len as usize];
        self.input
            .read_exact(&mut part)
            .map_err(|_| BackupError::Damaged(format!("{}: a record is cut", at())))?;
        Ok(Some(part))
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Entry, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        let key = match self.part(true) {
            Ok(Some(key)) => key,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        Some(
            self.part(false)
                .map(|value| (key, value.unwrap_or_default())),
        )
    }
}

/// Reads an archive's plaintext: the manifest (checked), then each member
/// it lists, in order, handed to `visit` with a reader of its data; each
/// member's name, size and SHA-256 are checked against the manifest, and
/// nothing may follow the last. Returns the manifest once all matched.
pub fn read_archive(
    mut input: impl Read,
    mut visit: impl FnMut(&Member, &mut dyn Read) -> Result<(), BackupError>,
) -> Result<Manifest, BackupError> {
    let (name, bytes) = read_member_header(&mut input, "its first member")?;
    if name != MANIFEST {
        return Err(BackupError::NotAnArchive(format!(
            "its first member is {name:?}, not {MANIFEST}"
        )));
    }
    if bytes > MAX_MANIFEST_BYTES {
        return Err(BackupError::Manifest(format!("it claims {bytes} bytes")));
    }
    let mut manifest = vec![0u8; bytes as usize];
    input
        .read_exact(&mut manifest)
        .map_err(|e| read_error(MANIFEST, e))?;
    let manifest = Manifest::parse(&manifest)?;
    for member in &manifest.members {
        let at = format!("member {}", member.name);
        let (name, bytes) = read_member_header(&mut input, &at)?;
        let mismatch = |what| BackupError::Mismatch {
            member: member.name.clone(),
            what,
        };
        if name != member.name {
            return Err(mismatch("another member is in its place"));
        }
        if bytes != member.bytes {
            return Err(mismatch("size"));
        }
        let mut data = HashingReader {
            inner: (&mut input).take(bytes),
            hasher: Sha256::new(),
            error: None,
        };
        let visited = visit(member, &mut data);
        // A read error of the archive itself explains a visitor's failure.
        if let Some(e) = data.error.take() {
            return Err(read_error(&at, e));
        }
        visited?;
        io::copy(&mut data, &mut io::sink()).map_err(|e| read_error(&at, e))?;
        if data.inner.limit() != 0 {
            return Err(BackupError::Truncated(format!("it ends in {at}")));
        }
        if hex::encode(data.hasher.finalize()) != member.sha256 {
            return Err(mismatch("sha256"));
        }
    }
    let mut more = [0u8; 1];
    loop {
        match input.read(&mut more) {
            Ok(0) => return Ok(manifest),
            Ok(_) => {
                return Err(BackupError::Manifest(
                    "data follows the last member it lists".into(),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error("its end", e)),
        }
    }
}

/// A reader that hashes what it reads and keeps its first error.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    error: Option<io::Error>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error.get_or_insert(e);
                Err(copy)
            }
        }
    }
}

/// The passphrase from `file` (which others must not be able to read), else
/// from [`PASSPHRASE_ENV`]; never from the command line. At least
/// [`MIN_PASSPHRASE`] characters, surrounding white space removed.
pub fn passphrase(file: Option<&Path>) -> Result<SecretString, BackupError> {
    let text = match file {
        Some(path) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path)
                .map_err(|e| BackupError::Passphrase(format!("{}: {e}", path.display())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(BackupError::Passphrase(format!(
                    "{}: mode {:o} lets others read it; run chmod 600",
                    path.display(),
                    mode & 0o777
                )));
            }
            Zeroizing::new(
                fs::read_to_string(path)
                    .map_err(|e| BackupError::Passphrase(format!("{}: {e}", path.display())))?,
            )
        }
        None => Zeroizing::new(std::env::var(PASSPHRASE_ENV).map_err(|_| {
            BackupError::Passphrase(format!(
                "give it in a file (--passphrase-file FILE) or in ${PASSPHRASE_ENV}"
            ))
        })?),
    };
    let trimmed = text.trim();
    if trimmed.chars().count() < MIN_PASSPHRASE {
        return Err(BackupError::Passphrase(format!(
            "it must be at least {MIN_PASSPHRASE} characters"
        )));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

/// Wraps `output` so that what is written is encrypted to `passphrase`
/// (age, scrypt); `finish` the writer to complete the file.
pub fn encrypt<W: Write>(
    passphrase: SecretString,
    output: W,
) -> io::Result<age::stream::StreamWriter<W>> {
    age::Encryptor::with_user_passphrase(passphrase).wrap_output(output)
}

/// The plaintext of the archive `input`, encrypted to `passphrase`.
pub fn decrypt<R: Read>(
    passphrase: &SecretString,
    input: R,
) -> Result<age::stream::StreamReader<R>, BackupError> {
    let decryptor = age::Decryptor::new(input).map_err(|e| match e {
        age::DecryptError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            BackupError::Truncated("it ends in its header".into())
        }
        e => BackupError::NotAnArchive(format!("not an age file: {e}")),
    })?;
    if !decryptor.is_scrypt() {
        return Err(BackupError::NotAnArchive(
            "it is not encrypted to a passphrase".into(),
        ));
    }
    let identity = age::scrypt::Identity::new(passphrase.clone());
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::ExcessiveWork { required, .. } => BackupError::Refused(format!(
                "the archive asks for scrypt work 2^{required}, more than this machine allows"
            )),
            age::DecryptError::InvalidHeader => {
                BackupError::Damaged("its header is invalid".into())
            }
            _ => BackupError::WrongPassphrase,
        })
}

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

/// The embedded IPFS node's repo, in embedded mode.
fn ipfs_repo(config: &Config) -> Option<PathBuf> {
    (config.ipfs.mode == milagro_ipfs::Mode::Embedded).then(|| {
        config
            .ipfs
            .repo
            .clone()
            .unwrap_or_else(|| config.node.data_dir.join("ipfs"))
    })
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

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
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

#[cfg(test)]
mod tests;
