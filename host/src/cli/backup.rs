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

//! `milagro backup` and `milagro restore` (docs/backup.md).
//!
//! `backup` asks the running node for a snapshot (`GET /v1/backup`) and
//! encrypts it as it arrives into `FILE.partial`, checking every member
//! against the manifest on the way; only a complete, checked archive is
//! renamed to `FILE`, so the plaintext never reaches the disk and a broken
//! stream leaves no file. `restore` works on a stopped node's (empty) data
//! dir, see [`crate::backup::restore`].

use std::{
    fs::{self, File},
    io::{self, BufWriter, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use serde_json::json;

use super::{
    CliError,
    node_api::NodeApi,
    output::{Format, print_json},
};
use crate::{
    backup::{self, BackupError, Manifest},
    config::Config,
};

/// The passphrase option both commands take.
#[derive(clap::Args, Debug, Clone)]
pub struct PassphraseArgs {
    /// File holding the archive's passphrase (mode 0600, at least 16
    /// characters); default $MILAGRO_BACKUP_PASSPHRASE. Never on the
    /// command line.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// A backup or restore failure as a CLI error: a missing or weak
/// passphrase is a usage error (2), a refusal of the node's state (a data
/// dir not empty, a backup running) 6, anything else 1.
fn cli_error(e: BackupError) -> CliError {
    match e {
        BackupError::Passphrase(_) => CliError::Usage(e.to_string()),
        BackupError::Refused(_) => CliError::Refused(e.to_string()),
        e => CliError::Failed(e.to_string()),
    }
}

/// `milagro backup --out FILE`.
pub async fn backup(
    node: &NodeApi,
    format: Format,
    out: &Path,
    passphrase: &PassphraseArgs,
) -> Result<(), CliError> {
    let passphrase =
        backup::passphrase(passphrase.passphrase_file.as_deref()).map_err(cli_error)?;
    if out.exists() {
        return Err(CliError::Usage(format!(
            "{} exists: name a new file (an archive is never overwritten)",
            out.display()
        )));
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| {
            CliError::Failed(format!(
                "cannot create {}: {e} (another backup writing it, or one that died: remove it)",
                partial.display()
            ))
        })?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let target = partial.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<Manifest, BackupError> {
        let cannot_write = |source| BackupError::Io {
            what: "cannot write",
            path: target.clone(),
            source,
        };
        let sealed = backup::encrypt(passphrase, BufWriter::new(file)).map_err(cannot_write)?;
        let mut tee = Tee {
            input: ChannelReader {
                rx,
                chunk: Bytes::new(),
            },
            sealed,
            write_error: None,
        };
        let read = backup::read_archive(&mut tee, |_, data| {
            io::copy(data, &mut io::sink())
                .map(drop)
                .map_err(|e| BackupError::Damaged(format!("the node's stream: {e}")))
        });
        // A full disk is this machine's failure, not the stream's.
        if let Some(e) = tee.write_error.take() {
            return Err(cannot_write(e));
        }
        let manifest = read?;
        tee.sealed
            .finish()
            .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
            .and_then(|f| f.sync_all())
            .map_err(cannot_write)?;
        Ok(manifest)
    });
    let fetched = node.download("/v1/backup", &tx).await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| CliError::Failed(format!("the archive writer failed: {e}")));
    // The node's refusal first; else what the writer found.
    let failed = match (fetched, written) {
        (Ok(()), Ok(Ok(manifest))) => Ok(manifest),
        (Err(e), _) | (_, Err(e)) => Err(e),
        (_, Ok(Err(e))) => Err(cli_error(e)),
    };
    let manifest = failed.inspect_err(|_| {
        let _ = fs::remove_file(&partial);
    })?;
    fs::rename(&partial, out).map_err(|e| {
        let _ = fs::remove_file(&partial);
        CliError::Failed(format!(
            "cannot rename the archive to {}: {e}",
            out.display()
        ))
    })?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::Failed(format!("cannot sync {}: {e}", dir.display())))?;
    let size = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    report(format, "backup", &manifest, out, size);
    Ok(())
}

/// `milagro restore --in FILE`, the node stopped.
pub async fn restore(
    config: Config,
    format: Format,
    archive: &Path,
    passphrase: &PassphraseArgs,
) -> Result<(), CliError> {
    let passphrase =
        backup::passphrase(passphrase.passphrase_file.as_deref()).map_err(cli_error)?;
    let archive = archive.to_owned();
    let restored =
        tokio::task::spawn_blocking(move || backup::restore(&config, &archive, &passphrase))
            .await
            .map_err(|e| CliError::Failed(format!("the restore failed: {e}")))?
            .map_err(cli_error)?;
    let size = restored.entries;
    report(
        format,
        "restore",
        &restored.manifest,
        &restored.data_dir,
        size,
    );
    Ok(())
}

/// One line (or a JSON object) saying what was backed up or restored.
fn report(format: Format, what: &str, manifest: &Manifest, path: &Path, size: u64) {
    let created = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(manifest.created_ms),
    );
    let token = &manifest.keystore.token_must_hold;
    match format {
        Format::Json => print_json(&json!({
            "node_id": manifest.node_id,
            "node_name": manifest.node_name,
            "created": created.to_string(),
            "path": path.display().to_string(),
            if what == "backup" { "bytes" } else { "database_entries" }: size,
            "members": manifest.members.len() + 1,
            "keystore": manifest.keystore.backend,
            "token_must_hold": token.iter().map(|o| &o.label).collect::<Vec<_>>(),
        })),
        Format::Human => {
            match what {
                "backup" => println!(
                    "backup of node {} ({}) taken {created}: {} ({size} bytes, {} members)",
                    manifest.node_id,
                    manifest.node_name,
                    path.display(),
                    manifest.members.len() + 1
                ),
                _ => println!(
                    "restored node {} ({}) as of {created} into {} ({size} database entries); start it with `milagro serve`",
                    manifest.node_id,
                    manifest.node_name,
                    path.display()
                ),
            }
            if !token.is_empty() {
                println!(
                    "keystore {:?}: its token must hold {} (and the plugins' secrets); none of them is in the archive",
                    manifest.keystore.backend,
                    token
                        .iter()
                        .map(|o| o.label.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
}

/// The node's stream, as a `Read` on a blocking thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A reader that writes what it reads into the encrypted archive, keeping
/// the first write error apart from the stream's.
struct Tee<W: Write> {
    input: ChannelReader,
    sealed: age::stream::StreamWriter<W>,
    write_error: Option<io::Error>,
}

impl<W: Write> Read for Tee<W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        if let Err(e) = self.sealed.write_all(&buf[..n]) {
            let copy = io::Error::new(e.kind(), e.to_string());
            self.write_error.get_or_insert(e);
            return Err(copy);
        }
        Ok(n)
    }
}
