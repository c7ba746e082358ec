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

//! The manifest, the archive's first member: what it says about the node
//! and the members that follow, and the checks a manifest from a hostile
//! archive must pass before anything else is read.

use milagro_proto::Cid;
use serde::{Deserialize, Serialize};

use super::{
    error::BackupError,
    format::{DATABASE, FORMAT, KEYSTORE_PREFIX, VERSION, valid_member_name},
};

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

impl Manifest {
    /// Parses and checks a manifest: format and version first (so another
    /// version is named as such), then every field.
    pub(super) fn parse(bytes: &[u8]) -> Result<Manifest, BackupError> {
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
