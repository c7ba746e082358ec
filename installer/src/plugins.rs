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

//! `milagro-install plugins list|add|verify`: what a prefix has installed
//! (names, sources, hashes), a new plugin entry added to a manifest and
//! installed, and every installed library re-hashed against host.toml, the
//! install record and the manifest's pins.

use std::path::{Path, PathBuf};

use crate::{
    InstallError, Options, Report, install, layout::Layout, manifest, record::Record,
    source::PluginSource,
};

/// A source given on the command line (`plugins add`).
#[derive(Debug, Clone)]
pub enum SourceArg {
    Crate {
        crate_name: String,
        version: String,
        registry: Option<String>,
    },
    Git {
        url: String,
        rev: String,
    },
    Url {
        url: String,
        sha256: String,
        signature: Option<String>,
        signer_key: Option<String>,
    },
    Path {
        path: PathBuf,
        sha256: Option<String>,
    },
}

/// The plugin entry `plugins add` appends.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    pub name: String,
    pub plugin: Option<String>,
    pub mount: Option<String>,
    pub source: SourceArg,
}

impl NewPlugin {
    /// The entry as manifest text: `[[plugins]]` and its keys, quoted by
    /// the TOML serialiser.
    fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let mut entry = toml::Table::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                entry.insert(key.into(), value.into());
            }
        };
        put("name", Some(self.name.clone()));
        put("plugin", self.plugin.clone());
        put("mount", self.mount.clone());
        match &self.source {
            SourceArg::Crate {
                crate_name,
                version,
                registry,
            } => {
                put("crate", Some(crate_name.clone()));
                put("version", Some(version.clone()));
                put("registry", registry.clone());
            }
            SourceArg::Git { url, rev } => {
                put("git", Some(url.clone()));
                put("rev", Some(rev.clone()));
            }
            SourceArg::Url {
                url,
                sha256,
                signature,
                signer_key,
            } => {
                put("url", Some(url.clone()));
                put("sha256", Some(sha256.clone()));
                put("signature", signature.clone());
                put("signer_key", signer_key.clone());
            }
            SourceArg::Path { path, sha256 } => {
                put("path", Some(path.display().to_string()));
                put("sha256", sha256.clone());
            }
        }
        Ok(format!("\n[[plugins]]\n{}", toml::to_string(&entry)?))
    }
}

/// Appends `plugin` to the manifest and installs; the manifest is put back
/// as it was when the install fails (the installer rolls the prefix back).
pub fn add(options: &Options, plugin: &NewPlugin) -> Result<Report, InstallError> {
    let path = &options.manifest;
    let before =
        std::fs::read_to_string(path).map_err(crate::io_err(format!("read {}", path.display())))?;
    let entry = plugin
        .to_toml()
        .map_err(|e| InstallError::Usage(format!("cannot write the plugin entry: {e}")))?;
    let separator = if before.ends_with('\n') { "" } else { "\n" };
    std::fs::write(path, format!("{before}{separator}{entry}"))
        .map_err(crate::io_err(format!("write {}", path.display())))?;
    let result = install(options);
    if result.is_err() {
        let _ = std::fs::write(path, &before);
    }
    result
}

fn layout_of(prefix: &Path) -> Layout {
    let prefix = crate::layout::absolute(prefix);
    Layout {
        data_dir: prefix.join("var/lib/milagro"),
        prefix,
    }
}

/// One line per installed plugin: name, plugin, sha256 and pinned source;
/// a plugin host.toml lists that the record does not (an install made
/// before records) with host.toml's hash and an unknown source.
pub fn list(prefix: &Path) -> Result<Vec<String>, InstallError> {
    let layout = layout_of(prefix);
    let installed = Record::read(&layout).map_err(InstallError::Usage)?;
    if !layout.host_toml().is_file() {
        return Err(InstallError::Usage(format!(
            "{} has no install (no {})",
            layout.prefix.display(),
            layout.host_toml().display()
        )));
    }
    let mut lines = vec![format!(
        "{:<20} {:<20} {:<64} SOURCE",
        "NAME", "PLUGIN", "SHA256"
    )];
    for p in &installed.plugins {
        lines.push(format!(
            "{:<20} {:<20} {:<64} {}",
            p.name, p.plugin, p.sha256, p.source
        ));
    }
    for p in configured(&layout)?
        .into_iter()
        .filter(|p| installed.find(&p.name).is_none())
    {
        lines.push(format!(
            "{:<20} {:<20} {:<64} unknown (no install record): {}",
            p.name,
            "?",
            p.sha256,
            p.path.display()
        ));
    }
    Ok(lines)
}

/// A plugin entry of host.toml, as `verify` reads it.
struct Configured {
    name: String,
    path: PathBuf,
    sha256: String,
}

fn configured(layout: &Layout) -> Result<Vec<Configured>, InstallError> {
    let file = layout.host_toml();
    let text = std::fs::read_to_string(&file)
        .map_err(crate::io_err(format!("read {}", file.display())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| InstallError::Usage(format!("{}: {e}", file.display())))?;
    let field = |p: &toml::Value, key: &str| p.get(key).and_then(|v| v.as_str()).map(String::from);
    Ok(table
        .get("plugins")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Configured {
                name: field(p, "name")?,
                path: PathBuf::from(field(p, "path")?),
                sha256: field(p, "sha256")?.to_ascii_lowercase(),
            })
        })
        .collect())
}

/// What `verify` found: a line per plugin, and whether all were intact.
pub struct Verified {
    pub lines: Vec<String>,
    pub intact: bool,
}

/// Re-hashes every library host.toml names and compares it with host.toml,
/// the install record and the pins of `manifest` (default the copy the
/// installer keeps, `etc/milagro/manifest.toml`).
pub fn verify(prefix: &Path, manifest: Option<&Path>) -> Result<Verified, InstallError> {
    let layout = layout_of(prefix);
    let installed = Record::read(&layout).map_err(InstallError::Usage)?;
    let manifest_path = manifest
        .map(Path::to_path_buf)
        .unwrap_or_else(|| layout.host_toml().with_file_name("manifest.toml"));
    let mut lines = Vec::new();
    // The kept copy names `path` sources relative to where the manifest
    // was: it may not load from etc/milagro; its pins are then skipped.
    let pinned = match manifest::load(&manifest_path) {
        Ok(loaded) => loaded.plugins,
        Err(e) if manifest.is_none() => {
            lines.push(format!("note: the manifest's pins are not checked: {e}"));
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let mut intact = true;
    for plugin in configured(&layout)? {
        let actual = match crate::sha256_file(&plugin.path) {
            Ok(sha) => sha,
            Err(e) => {
                intact = false;
                lines.push(format!("MODIFIED plugin {:?}: {e}", plugin.name));
                continue;
            }
        };
        let mut expected = vec![("host.toml", plugin.sha256.clone())];
        if let Some(entry) = installed.find(&plugin.name) {
            expected.push(("the install record", entry.sha256.clone()));
        }
        let manifest_pin =
            pinned
                .iter()
                .find(|p| p.name == plugin.name)
                .and_then(|p| match &p.source {
                    PluginSource::Url(u) => Some(u.sha256.clone()),
                    PluginSource::Path(p) => p.sha256.clone(),
                    _ => None,
                });
        if let Some(sha) = manifest_pin {
            expected.push(("the manifest", sha));
        }
        match expected.iter().find(|(_, sha)| *sha != actual) {
            Some((by, sha)) => {
                intact = false;
                lines.push(format!(
                    "MODIFIED plugin {:?}: {} has sha256 {actual}, {by} expects {sha}",
                    plugin.name,
                    plugin.path.display()
                ));
            }
            None => lines.push(format!(
                "ok plugin {:?}: {} sha256 {actual}",
                plugin.name,
                plugin.path.display()
            )),
        }
    }
    Ok(Verified { lines, intact })
}
