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

//! The age encryption around the archive: the passphrase it is encrypted
//! to (scrypt), and the writer and reader of the encrypted file.

use std::{
    fs,
    io::{self, Read, Write},
    path::Path,
};

pub use age::secrecy::SecretString;
use zeroize::Zeroizing;

use super::error::BackupError;

/// The environment variable a passphrase may come from.
pub const PASSPHRASE_ENV: &str = "MILAGRO_BACKUP_PASSPHRASE";
/// The shortest passphrase accepted (it is all that protects the archive).
pub const MIN_PASSPHRASE: usize = 16;

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
