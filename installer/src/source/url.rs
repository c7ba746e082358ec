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

//! `url = "https://.../libfoo.so", sha256 = "..."`: a prebuilt library
//! downloaded from where it is published, its length checked against the
//! announced one (a truncated download), its hash against the pin, and, with
//! `signature` and `signer_key`, its minisign signature, all before it is
//! staged.

use std::{io::Read, path::PathBuf, time::Duration};

use minisign_verify::{PublicKey, Signature};

use super::{FetchContext, SourceError, check_url, pinned_sha256, sha256_hex};
use crate::entry::{EntryError, Plugin};

/// A prebuilt library at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSource {
    pub url: String,
    /// Lower-case hex.
    pub sha256: String,
    pub signature: Option<SignatureSource>,
}

/// A detached minisign signature and the key it must be made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSource {
    pub url: String,
    /// The minisign public key, base64 (`RW...`).
    pub signer_key: String,
}

/// The longest signature file read (a minisign signature is ~300 bytes).
const MAX_SIGNATURE: u64 = 64 * 1024;
/// The largest library downloaded: far above any plugin (a debug build is
/// ~10 MB), so that a hostile or broken server cannot fill the memory.
const MAX_LIBRARY: u64 = 512 << 20;

impl UrlSource {
    pub fn from_entry(entry: &Plugin) -> Result<Self, EntryError> {
        let url = entry.url.as_ref().expect("a url entry has a url");
        check_url(url.get_ref(), &[]).map_err(|m| EntryError::at(url.span(), m))?;
        let sha256 = pinned_sha256(entry, true)?.unwrap_or_default();
        let signature = match (&entry.signature, &entry.signer_key) {
            (None, None) => None,
            (Some(sig), Some(key)) => {
                check_url(sig.get_ref(), &[]).map_err(|m| EntryError::at(sig.span(), m))?;
                PublicKey::from_base64(key.get_ref()).map_err(|e| {
                    EntryError::at(
                        key.span(),
                        format!("signer_key: not a minisign public key ({e})"),
                    )
                })?;
                Some(SignatureSource {
                    url: sig.get_ref().clone(),
                    signer_key: key.get_ref().clone(),
                })
            }
            (Some(sig), None) => {
                return Err(EntryError::at(sig.span(), "signature needs signer_key"));
            }
            (None, Some(key)) => {
                return Err(EntryError::at(key.span(), "signer_key needs signature"));
            }
        };
        Ok(UrlSource {
            url: url.get_ref().clone(),
            sha256,
            signature,
        })
    }

    pub fn pin(&self) -> String {
        let signer = self
            .signature
            .as_ref()
            .map(|s| format!(";signer={}", s.signer_key))
            .unwrap_or_default();
        format!("url+{}#sha256={}{signer}", self.url, self.sha256)
    }

    /// Downloads the library into the scratch directory and checks it.
    pub fn fetch(&self, context: &FetchContext<'_>) -> Result<PathBuf, SourceError> {
        let name = context.name;
        let download_error = |url: &str, reason: String| SourceError::Download {
            name: name.into(),
            url: url.into(),
            reason,
        };
        context
            .progress
            .step(&format!("plugin {name}: downloading {}", self.url));
        let bytes = download(&self.url, MAX_LIBRARY, context).map_err(|e| match e {
            Failure::Truncated { got, expected } => SourceError::Truncated {
                name: name.into(),
                url: self.url.clone(),
                got,
                expected,
            },
            Failure::Other(reason) => download_error(&self.url, reason),
        })?;
        let actual = sha256_hex(&bytes);
        if actual != self.sha256 {
            return Err(SourceError::WrongHash {
                name: name.into(),
                origin: self.url.clone(),
                actual,
                expected: self.sha256.clone(),
            });
        }
        if let Some(signature) = &self.signature {
            let bad = |reason: String| SourceError::BadSignature {
                name: name.into(),
                url: self.url.clone(),
                reason,
            };
            let text = download(&signature.url, MAX_SIGNATURE, context).map_err(|e| {
                download_error(
                    &signature.url,
                    match e {
                        Failure::Truncated { got, expected } => {
                            format!("truncated: got {got} of {expected} bytes")
                        }
                        Failure::Other(reason) => reason,
                    },
                )
            })?;
            let text = String::from_utf8(text)
                .map_err(|_| bad(format!("{} is not a minisign signature", signature.url)))?;
            let decoded = Signature::decode(&text).map_err(|e| {
                bad(format!(
                    "{} is not a minisign signature ({e})",
                    signature.url
                ))
            })?;
            let key = PublicKey::from_base64(&signature.signer_key)
                .map_err(|e| bad(format!("signer_key: {e}")))?;
            key.verify(&bytes, &decoded, false)
                .map_err(|e| bad(format!("not signed by signer_key ({e})")))?;
            context
                .progress
                .step(&format!("plugin {name}: signature verified"));
        }
        context
            .progress
            .step(&format!("plugin {name}: sha256 {actual} verified"));
        let file = context.scratch_library();
        std::fs::write(&file, &bytes)
            .map_err(context.io_error(format!("write {}", file.display())))?;
        Ok(file)
    }
}

/// Why a download failed.
enum Failure {
    /// Fewer bytes than the server announced.
    Truncated {
        got: u64,
        expected: u64,
    },
    Other(String),
}

/// GETs `url` into memory, with a byte counter on a terminal; refuses more
/// than `limit` bytes, announced or sent.
fn download(url: &str, limit: u64, context: &FetchContext<'_>) -> Result<Vec<u8>, Failure> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        // A redirect must not turn an https download into a plain one.
        .https_only(url.starts_with("https://"))
        .build();
    let response = agent.get(url).call().map_err(|e| {
        Failure::Other(match e {
            ureq::Error::Status(code, _) => format!("the server answered {code}"),
            ureq::Error::Transport(t) => t.to_string(),
        })
    })?;
    let expected: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    if let Some(expected) = expected
        && expected > limit
    {
        return Err(Failure::Other(format!(
            "{expected} bytes, more than the {limit} expected"
        )));
    }
    let bar = context.progress.bytes(expected);
    let mut reader = response.into_reader().take(limit + 1);
    let mut bytes = Vec::with_capacity(expected.unwrap_or(0).min(256 << 20) as usize);
    let mut chunk = vec![0u8; 64 * 1024];
    let result = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                bar.inc(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    bar.finish_and_clear();
    let got = bytes.len() as u64;
    match (result, expected) {
        _ if got > limit => Err(Failure::Other(format!(
            "more than the {limit} bytes expected"
        ))),
        (_, Some(expected)) if got < expected => Err(Failure::Truncated { got, expected }),
        (Err(e), _) => Err(Failure::Other(e.to_string())),
        (Ok(()), _) => Ok(bytes),
    }
}
