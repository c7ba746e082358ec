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

//! Where a plugin's library comes from, as a manifest entry pins it: this
//! workspace (a catalog plugin, the default), a local `path`, a prebuilt
//! library at a `url` (sha256 mandatory, optional minisign signature), a
//! `git` repository at a full commit, or a registry `crate` at an exact
//! version. One file per kind; each reads and checks its manifest keys, and
//! the fetched kinds fetch into a scratch directory outside the prefix and
//! check what they fetched before the installer stages anything.

pub mod build;
pub mod crate_source;
pub mod git;
pub mod path;
pub mod url;

use std::path::{Path, PathBuf};

use crate::{
    catalog::KnownPlugin,
    entry::{EntryError, Plugin},
    progress::Progress,
};

/// Why fetching or checking a plugin's library failed; one line each, naming
/// the plugin and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("plugin {name:?}: cannot download {url}: {reason}")]
    Download {
        name: String,
        url: String,
        reason: String,
    },
    #[error(
        "plugin {name:?}: truncated download from {url}: got {got} of {expected} bytes; nothing installed"
    )]
    Truncated {
        name: String,
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("plugin {name:?}: {origin} has sha256 {actual}, the manifest expects {expected}")]
    WrongHash {
        name: String,
        origin: String,
        actual: String,
        expected: String,
    },
    #[error("plugin {name:?}: bad signature for {url}: {reason}")]
    BadSignature {
        name: String,
        url: String,
        reason: String,
    },
    #[error("plugin {name:?}: git {url} at {rev}: {reason}")]
    Git {
        name: String,
        url: String,
        rev: String,
        reason: String,
    },
    #[error("plugin {name:?}: {reason}")]
    Build { name: String, reason: String },
    #[error("plugin {name:?}: cannot {what}: {source}")]
    Io {
        name: String,
        what: String,
        source: std::io::Error,
    },
}

/// Where one plugin entry's library comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Built from this workspace (a catalog plugin).
    Workspace(&'static KnownPlugin),
    Path(path::PathSource),
    Url(url::UrlSource),
    Git(git::GitSource),
    Crate(crate_source::CrateSource),
}

/// The source keys of a manifest entry, by kind, for "give one source".
const SOURCE_KEYS: [&str; 4] = ["path", "url", "git", "crate"];

impl PluginSource {
    /// Reads the entry's source keys: at most one of `path`, `url`, `git`,
    /// `crate`, and only the keys that kind takes. `None` when the entry
    /// names no source. `manifest_dir` is the directory of the manifest the
    /// entry is in (a `path` is relative to it).
    pub fn from_entry(entry: &Plugin, manifest_dir: &Path) -> Result<Option<Self>, EntryError> {
        let given: Vec<&str> = SOURCE_KEYS
            .into_iter()
            .zip([
                entry.path.as_ref().map(|v| v.span()),
                entry.url.as_ref().map(|v| v.span()),
                entry.git.as_ref().map(|v| v.span()),
                entry.crate_name.as_ref().map(|v| v.span()),
            ])
            .filter_map(|(key, span)| span.map(|_| key))
            .collect();
        if given.len() > 1 {
            return Err(EntryError::at(
                entry.name.span(),
                format!(
                    "plugin {:?}: give one source, not {}",
                    entry.name.get_ref(),
                    given.join(" and ")
                ),
            ));
        }
        // Keys of one kind given without it.
        let stray = [
            ("sha256", entry.sha256.as_ref(), &["path", "url"][..]),
            ("signature", entry.signature.as_ref(), &["url"]),
            ("signer_key", entry.signer_key.as_ref(), &["url"]),
            ("rev", entry.rev.as_ref(), &["git"]),
            ("version", entry.version.as_ref(), &["crate"]),
            ("registry", entry.registry.as_ref(), &["crate"]),
        ];
        for (key, value, kinds) in stray {
            if let Some(value) = value
                && !given.iter().any(|g| kinds.contains(g))
            {
                return Err(EntryError::at(
                    value.span(),
                    format!("{key} goes with {}", kinds.join(" or ")),
                ));
            }
        }
        Ok(match given.first() {
            None => None,
            Some(&"path") => Some(PluginSource::Path(path::PathSource::from_entry(
                entry,
                manifest_dir,
            )?)),
            Some(&"url") => Some(PluginSource::Url(url::UrlSource::from_entry(entry)?)),
            Some(&"git") => Some(PluginSource::Git(git::GitSource::from_entry(entry)?)),
            Some(_) => Some(PluginSource::Crate(crate_source::CrateSource::from_entry(
                entry,
            )?)),
        })
    }

    /// The source and its pin in one string, cargo style
    /// (`git+URL#REV`): what the install record keeps and `plugins list`
    /// shows; an unchanged pin means an unchanged library.
    pub fn pin(&self) -> String {
        match self {
            PluginSource::Workspace(known) => format!("workspace:{}", known.package),
            PluginSource::Path(p) => p.pin(),
            PluginSource::Url(u) => u.pin(),
            PluginSource::Git(g) => g.pin(),
            PluginSource::Crate(c) => c.pin(),
        }
    }

    /// Whether the library is fetched from elsewhere (and so checked
    /// against this host's plugin-api before it is installed).
    pub fn is_fetched(&self) -> bool {
        matches!(
            self,
            PluginSource::Url(_) | PluginSource::Git(_) | PluginSource::Crate(_)
        )
    }
}

/// What fetching needs: a scratch directory outside the prefix, this host's
/// plugin-api (for builds), the lockfile of the previous install of the
/// plugin, and where to report progress.
pub struct FetchContext<'a> {
    pub name: &'a str,
    pub scratch: &'a Path,
    pub workspace: Option<&'a Path>,
    pub previous_lock: Option<PathBuf>,
    pub progress: &'a Progress,
}

impl FetchContext<'_> {
    /// Where this plugin's library is kept until it is staged.
    pub fn scratch_library(&self) -> PathBuf {
        self.scratch.join(format!("{}.so", self.name))
    }

    /// An I/O error while fetching this plugin.
    pub fn io_error(&self, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SourceError {
        let name = self.name.to_string();
        let what = what.into();
        move |source| SourceError::Io { name, what, source }
    }
}

/// A required key of a source kind (`rev` of git, `version` of crate):
/// `missing` when absent (at the source key's `anchor`), `invalid` when it
/// is not `valid`.
pub fn required_pin(
    anchor: std::ops::Range<usize>,
    value: Option<&toml::Spanned<String>>,
    missing: &str,
    valid: fn(&str) -> bool,
    invalid: impl FnOnce(&str) -> String,
) -> Result<String, EntryError> {
    let value = value.ok_or_else(|| EntryError::at(anchor, missing))?;
    if !valid(value.get_ref()) {
        return Err(EntryError::at(value.span(), invalid(value.get_ref())));
    }
    Ok(value.get_ref().clone())
}

/// A fetched and checked library, and the lockfile of its build if it was
/// built.
#[derive(Debug)]
pub struct Fetched {
    pub library: PathBuf,
    pub lockfile: Option<PathBuf>,
}

/// Fetches one plugin's library into `context.scratch` (the fetched kinds
/// only) and checks it as its kind requires.
pub fn fetch(source: &PluginSource, context: &FetchContext<'_>) -> Result<Fetched, SourceError> {
    match source {
        PluginSource::Url(u) => u.fetch(context).map(|library| Fetched {
            library,
            lockfile: None,
        }),
        PluginSource::Git(g) => g.fetch(context),
        PluginSource::Crate(c) => c.fetch(context),
        PluginSource::Workspace(_) | PluginSource::Path(_) => {
            unreachable!("only fetched sources are fetched")
        }
    }
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// The entry's `sha256`, checked; required when `required`.
pub fn pinned_sha256(entry: &Plugin, required: bool) -> Result<Option<String>, EntryError> {
    match &entry.sha256 {
        Some(sha) if is_sha256(sha.get_ref()) => Ok(Some(sha.get_ref().to_ascii_lowercase())),
        Some(sha) => Err(EntryError::at(sha.span(), "sha256: expected 64 hex digits")),
        None if required => Err(EntryError::at(
            entry.name.span(),
            format!(
                "plugin {:?}: a url source needs sha256 (the library's SHA-256, 64 hex digits)",
                entry.name.get_ref()
            ),
        )),
        None => Ok(None),
    }
}

/// Whether `text` is 64 hex digits.
fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a URL the installer fetches from: `https://`, or plain `http://`
/// to a loopback host only (a test server; anyone on the path could change
/// a plain download elsewhere, and the signature would then be all that
/// stands). `extra` are further schemes this kind allows (git's `ssh`,
/// `file`).
pub fn check_url(url: &str, extra: &[&str]) -> Result<(), String> {
    let parsed = ::url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(::url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(::url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(::url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{url}: plain http is allowed to loopback only; use https"
                ))
            }
        }
        other if extra.contains(&other) => Ok(()),
        other => Err(format!(
            "{url}: scheme {other:?} is not allowed; use https{}",
            extra.iter().map(|s| format!(", {s}")).collect::<String>()
        )),
    }
}

/// Copies a directory tree (regular files and directories; symlinks are
/// copied as the files they point to), skipping `skip` names at the top.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &dest, &[])?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
