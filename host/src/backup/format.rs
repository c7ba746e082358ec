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

//! The archive format's names: what a manifest says the archive is, and
//! the members it may list (the layout is in the module doc of `backup`
//! and in docs/backup.md).

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

/// Whether `name` is a member this format has: the database, the IPFS key,
/// or a keystore file (a plain file name, so it cannot leave its dir).
pub(super) fn valid_member_name(name: &str) -> bool {
    match name.strip_prefix(KEYSTORE_PREFIX) {
        Some(file) => valid_file_name(file),
        None => name == DATABASE || name == IPFS_KEY,
    }
}

/// Whether `file` is a plain file name a keystore member may have.
pub(super) fn valid_file_name(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 255
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
