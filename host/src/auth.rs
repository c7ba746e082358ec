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

//! The operator's bearer token.
//!
//! The token lives in a file readable by its owner only (created with mode
//! 0600 if absent). The host keeps only its SHA-256 and compares digests in
//! constant time, so neither timing nor a memory dump of the comparison
//! reveals the token.

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token file {path}: {message}")]
    TokenFile { path: PathBuf, message: String },
}

pub struct Auth {
    token_sha256: [u8; 32],
}

impl Auth {
    /// Reads the token file, creating it with a fresh random token if absent.
    pub fn load_or_create(path: &Path) -> Result<Auth, AuthError> {
        let fail = |message: String| AuthError::TokenFile {
            path: path.to_owned(),
            message,
        };
        if !path.exists() {
            let mut raw = Zeroizing::new([0u8; 32]);
            getrandom::fill(raw.as_mut()).map_err(|e| fail(format!("no randomness: {e}")))?;
            let token = Zeroizing::new(hex::encode(raw.as_ref()));
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| fail(format!("cannot create: {e}")))?;
            file.write_all(token.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(format!("cannot write: {e}")))?;
            tracing::info!(path = %path.display(), "created the operator API token");
        }
        let mode = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "mode {:o} lets others read it; run chmod 600",
                mode & 0o777
            )));
        }
        let token = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
        let token = token.trim();
        if token.len() < 32 {
            return Err(fail("the token must be at least 32 characters".into()));
        }
        Ok(Auth {
            token_sha256: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether an `Authorization` header value carries the operator token.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token).into();
        presented.ct_eq(&self.token_sha256).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_token_and_checks_it() {
        let dir = std::env::temp_dir().join(format!("milagro-auth-{}", std::process::id()));
        let path = dir.join("token");
        let _ = std::fs::remove_dir_all(&dir);
        let auth = Auth::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = std::fs::read_to_string(&path).unwrap();
        assert!(auth.allows(Some(format!("Bearer {token}").as_bytes())));
        assert!(!auth.allows(Some(b"Bearer wrong")));
        assert!(!auth.allows(Some(token.as_bytes())));
        assert!(!auth.allows(None));
        // reloading keeps the same token
        let again = Auth::load_or_create(&path).unwrap();
        assert!(again.allows(Some(format!("Bearer {token}").as_bytes())));
        // a readable-by-others token file is refused
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Auth::load_or_create(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
