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

//! One `[[plugins]]` entry of an install manifest, as written, and the
//! refusal of one of its values. The plugin sources (`source`) read their
//! keys from an entry alone; the manifest (`manifest`), above them, places
//! a refusal in the file and validates the whole.

use std::{ops::Range, path::PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// A `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    /// Instance name: unique in the node, `[a-z0-9-]`.
    pub name: Spanned<String>,
    /// Which plugin; default the instance name.
    pub plugin: Option<Spanned<String>>,
    /// `false`: installed and listed in host.toml, but not loaded.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Mount point; default the plugin's usual one, else `/v1/<name>`.
    pub mount: Option<Spanned<String>>,
    /// A prebuilt library instead of building it from this workspace
    /// (relative to the manifest).
    pub path: Option<Spanned<PathBuf>>,
    /// With `path` or `url`: the library's expected SHA-256 (hex).
    pub sha256: Option<Spanned<String>>,
    /// A prebuilt library to download (https, or http to loopback).
    pub url: Option<Spanned<String>>,
    /// With `url`: where its detached minisign signature is.
    pub signature: Option<Spanned<String>>,
    /// With `signature`: the minisign public key it must be made with.
    pub signer_key: Option<Spanned<String>>,
    /// A git repository whose root is the plugin crate.
    pub git: Option<Spanned<String>>,
    /// With `git`: the full commit ID to build.
    pub rev: Option<Spanned<String>>,
    /// A registry crate to build.
    #[serde(rename = "crate")]
    pub crate_name: Option<Spanned<String>>,
    /// With `crate`: its exact version.
    pub version: Option<Spanned<String>>,
    /// With `crate`: a registry named in cargo's config (default crates.io).
    pub registry: Option<Spanned<String>>,
    /// Handed to the plugin's constructor.
    #[serde(default)]
    pub config: toml::Table,
}

fn yes() -> bool {
    true
}

/// A value of an entry that is refused: where it is in the manifest's text
/// (an empty span at 0 when it has no place) and why.
#[derive(Debug, Clone)]
pub struct EntryError {
    pub span: Range<usize>,
    pub message: String,
}

impl EntryError {
    pub fn at(span: Range<usize>, message: impl Into<String>) -> EntryError {
        EntryError {
            span,
            message: message.into(),
        }
    }
}
