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

//! The archive's plaintext: the framing of its members and of the database
//! records, written by a node and read back with every member checked
//! against the manifest (name, size, SHA-256, nothing after the last).

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::{
    error::{BackupError, read_error},
    format::{DATABASE, MANIFEST},
    manifest::{Manifest, Member},
};
use crate::store::{Entry, Snapshot};

/// Largest manifest read (a hostile archive could claim more).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest key or value of a database record.
const MAX_RECORD_BYTES: u32 = 64 << 20;

pub(super) fn write_member_header(out: &mut impl Write, name: &str, bytes: u64) -> io::Result<()> {
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
pub(super) struct Hashing<W> {
    pub(super) inner: W,
    pub(super) hasher: Sha256,
    pub(super) bytes: u64,
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

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The database records of `snapshot`, written to `out`.
pub(super) fn write_records(snapshot: &Snapshot, out: &mut impl Write) -> Result<(), BackupError> {
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
pub(super) struct Records<R> {
    pub(super) input: R,
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
