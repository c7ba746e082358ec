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

//! `crate = "name", version = "x.y.z"` (optional `registry`): a plugin
//! crate published to crates.io or a named cargo registry, at one exact
//! version. Cargo downloads the crate's source (checked against the
//! registry's checksum) through a stub package that depends on it, with the
//! lockfile the build starts from; the installer builds a copy of that
//! source (`build`).

use std::process::{Command, Stdio};

use super::{FetchContext, Fetched, SourceError, build, copy_tree, required_pin};
use crate::entry::{EntryError, Plugin};

/// A registry crate at an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateSource {
    pub crate_name: String,
    pub version: String,
    /// A registry named in cargo's config; `None`: crates.io.
    pub registry: Option<String>,
}

/// `x.y.z`, optionally `-pre` and `+build`: one exact version, no range.
fn is_exact_version(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b))
}

fn is_crate_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CrateSource {
    pub fn from_entry(entry: &Plugin) -> Result<Self, EntryError> {
        let crate_name = entry.crate_name.as_ref().expect("a crate entry has crate");
        if !is_crate_name(crate_name.get_ref()) {
            return Err(EntryError::at(
                crate_name.span(),
                format!("crate {:?}: not a crate name", crate_name.get_ref()),
            ));
        }
        let version = required_pin(
            crate_name.span(),
            entry.version.as_ref(),
            "a crate source needs version = \"x.y.z\" (one exact version)",
            is_exact_version,
            |version| format!("version {version:?}: expected one exact version x.y.z, not a range"),
        )?;
        if let Some(registry) = &entry.registry
            && !is_crate_name(registry.get_ref())
        {
            return Err(EntryError::at(
                registry.span(),
                format!(
                    "registry {:?}: expected the name of a registry in cargo's config",
                    registry.get_ref()
                ),
            ));
        }
        Ok(CrateSource {
            crate_name: crate_name.get_ref().clone(),
            version,
            registry: entry.registry.as_ref().map(|r| r.get_ref().clone()),
        })
    }

    pub fn pin(&self) -> String {
        format!(
            "registry+{}:{}@{}",
            self.registry.as_deref().unwrap_or("crates-io"),
            self.crate_name,
            self.version
        )
    }

    /// Downloads the crate's source through a stub package and builds a
    /// copy of it.
    pub fn fetch(&self, context: &FetchContext<'_>) -> Result<Fetched, SourceError> {
        let name = context.name;
        let fail = |reason: String| SourceError::Build {
            name: name.into(),
            reason,
        };
        context.progress.step(&format!(
            "plugin {name}: fetching crate {} {}",
            self.crate_name, self.version
        ));
        let stub = context.scratch.join(format!("{name}-fetch"));
        std::fs::create_dir_all(&stub).map_err(context.io_error("create the fetch stub"))?;
        let mut dependency = toml::Table::new();
        dependency.insert("version".into(), format!("={}", self.version).into());
        if let Some(registry) = &self.registry {
            dependency.insert("registry".into(), registry.clone().into());
        }
        let mut manifest: toml::Table = toml::from_str(
            "[package]\nname = \"milagro-install-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[lib]\npath = \"lib.rs\"\n",
        )
        .map_err(|e| fail(e.to_string()))?;
        manifest.insert(
            "dependencies".into(),
            toml::Table::from_iter([(self.crate_name.clone(), dependency.into())]).into(),
        );
        let manifest = toml::to_string(&manifest).map_err(|e| fail(e.to_string()))?;
        std::fs::write(stub.join("Cargo.toml"), manifest)
            .map_err(context.io_error("write the fetch stub"))?;
        std::fs::write(stub.join("lib.rs"), "")
            .map_err(context.io_error("write the fetch stub"))?;
        let mut metadata = Command::new(build::cargo());
        metadata
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(stub.join("Cargo.toml"));
        build::patch_plugin_api(&mut metadata, context)?;
        let out = metadata
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "cannot fetch crate {} {}: {}",
                self.crate_name,
                self.version,
                build::last_error(&String::from_utf8_lossy(&out.stderr))
            )));
        }
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("cargo metadata: {e}")))?;
        let manifest_path = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["name"] == self.crate_name.as_str() && p["version"] == self.version.as_str()
            })
            .and_then(|p| p["manifest_path"].as_str())
            .ok_or_else(|| {
                fail(format!(
                    "cargo fetched no crate {} {}",
                    self.crate_name, self.version
                ))
            })?;
        let source_dir = std::path::Path::new(manifest_path)
            .parent()
            .unwrap_or(std::path::Path::new("/"));
        // Cargo's registry cache is shared: build a copy.
        let copy = context.scratch.join(format!("{name}-src"));
        copy_tree(source_dir, &copy, &["target"])
            .map_err(context.io_error("copy the crate's source"))?;
        build::build_library(&copy, context)
    }
}
