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

//! The install record, `<prefix>/etc/milagro/plugins.lock`: for each
//! installed plugin, its library file, its pinned source and the SHA-256 of
//! the library installed, and for a plugin built from source the lockfile of
//! that build (`etc/milagro/locks/<name>.Cargo.lock`). A re-install keeps a
//! library whose pin is unchanged (nothing fetched or rebuilt), seeds a
//! rebuild from its lockfile, and `plugins list` and `plugins verify` read it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::Layout;

/// Every installed plugin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    #[serde(default)]
    pub plugins: Vec<Installed>,
}

/// One installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    /// Instance name.
    pub name: String,
    /// Which plugin.
    pub plugin: String,
    /// File name in `lib/milagro/plugins/`.
    pub library: String,
    /// `PluginSource::pin`.
    pub source: String,
    pub sha256: String,
    /// The build's lockfile, relative to `etc/milagro/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockfile: Option<String>,
}

/// The record's path in a prefix.
pub fn path(layout: &Layout) -> PathBuf {
    layout.host_toml().with_file_name("plugins.lock")
}

/// The lockfile of plugin `name`'s build, relative to `etc/milagro/`.
pub fn lockfile_name(name: &str) -> String {
    format!("locks/{name}.Cargo.lock")
}

impl Record {
    /// The prefix's record; empty when it has none (a new prefix, or one
    /// installed before records).
    pub fn read(layout: &Layout) -> Result<Record, String> {
        let file = path(layout);
        match std::fs::read_to_string(&file) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| format!("{}: {}", file.display(), e.message().trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
            Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        }
    }

    pub fn find(&self, name: &str) -> Option<&Installed> {
        self.plugins.iter().find(|p| p.name == name)
    }

    pub fn to_text(&self) -> Result<String, toml::ser::Error> {
        Ok(format!(
            "# Written by milagro-install: the plugins installed, their pinned sources\n# and the SHA-256 of each library (see `milagro-install plugins verify`).\n\n{}",
            toml::to_string(self)?
        ))
    }
}

/// `<etc>/<relative>` of a prefix.
pub fn in_etc(layout: &Layout, relative: &str) -> PathBuf {
    layout
        .host_toml()
        .parent()
        .unwrap_or(Path::new("/"))
        .join(relative)
}
