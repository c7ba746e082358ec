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
//!
//! The files, each importing only those above it: `format` (the names of
//! the format and its members), `error`, `data_dir` (where a node keeps
//! what is backed up), `manifest` (and its checks), `archive` (the framing
//! of members and database records, read back with every member checked),
//! `encryption` (age and the passphrase), then `make` (a running node's
//! backup) and `restore`.

mod archive;
mod data_dir;
mod encryption;
mod error;
mod format;
mod make;
mod manifest;
mod restore;

pub use archive::read_archive;
pub use data_dir::DATABASE_FILE;
pub use encryption::{MIN_PASSPHRASE, PASSPHRASE_ENV, SecretString, decrypt, encrypt, passphrase};
pub use error::BackupError;
pub use format::{DATABASE, FORMAT, IPFS_KEY, KEYSTORE_PREFIX, MANIFEST, VERSION};
pub use make::{Chunks, Sources, stream};
pub use manifest::{KeystoreManifest, Manifest, Member, TokenObject};
pub use restore::{Restored, restore};

#[cfg(test)]
mod tests;
