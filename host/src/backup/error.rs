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

//! Why a backup or restore failed, and the mapping of I/O errors (of the
//! file system, and of age reading the archive) onto it.

use std::{
    io,
    path::{Path, PathBuf},
};

use super::format::VERSION;
use crate::{identity::IdentityError, keystore::KeystoreError, store::StoreError};

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

pub(super) fn io_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// An error reading the archive's plaintext: age reports a chunk that does
/// not authenticate as `InvalidData` and a stream cut short as
/// `UnexpectedEof`.
pub(super) fn read_error(at: &str, e: io::Error) -> BackupError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Truncated(format!("it ends in {at}")),
        io::ErrorKind::InvalidData => BackupError::Damaged(format!("{at}: {e}")),
        _ => BackupError::Damaged(format!("cannot read {at}: {e}")),
    }
}
