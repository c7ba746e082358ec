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

//! Where the `milagro` binary and the plugin libraries come from: built from
//! this workspace (`cargo build --release`), taken from a directory of
//! already-built artefacts (`--artifacts DIR`, e.g. `target/debug` in the
//! tests), or, per plugin, the source its manifest entry pins (`source`):
//! fetched and checked (hash, signature, this host's plugin-api) into a
//! scratch directory outside the prefix, or kept as installed when its pin
//! is unchanged.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use milagro_plugin_api::library::open_library;

use crate::{
    InstallError,
    layout::Layout,
    manifest::PluginPlan,
    progress::Progress,
    record::{self, Record},
    source::{self, FetchContext, PluginSource, build},
};

/// Where binaries come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Build them with cargo in this workspace (release profile).
    Build { workspace: PathBuf },
    /// Take them from a directory of built artefacts.
    Dir(PathBuf),
}

/// How a library gets into the staged plugin directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Copy,
    /// The installed library, unchanged: linked, so it keeps its inode and
    /// mtime (nothing was fetched or rebuilt).
    Link,
}

/// The files to install.
#[derive(Debug)]
pub struct Artifacts {
    pub milagro: PathBuf,
    /// Library file name in the prefix -> the file to stage, and how.
    pub libraries: BTreeMap<String, (PathBuf, Placement)>,
    /// Instance name -> the lockfile of its build.
    pub lockfiles: BTreeMap<String, PathBuf>,
    /// Holds what was fetched until it is staged.
    _scratch: tempfile::TempDir,
}

/// The cargo packages a build needs: the host and every plugin built from
/// this workspace.
pub fn packages(plans: &[PluginPlan]) -> Vec<&'static str> {
    let mut packages = vec!["milagro"];
    for p in plans {
        if let PluginSource::Workspace(known) = p.source
            && !packages.contains(&known.package)
        {
            packages.push(known.package);
        }
    }
    packages
}

/// Checks, before anything is built or written, that every artefact can be
/// had: the plugin crates exist in the workspace, or the files in the
/// artefact directory.
pub fn check(source: &Source, plans: &[PluginPlan]) -> Result<(), InstallError> {
    let workspace_plugins = plans.iter().filter_map(|p| match p.source {
        PluginSource::Workspace(known) => Some((p, known)),
        _ => None,
    });
    match source {
        Source::Build { workspace } => {
            for (p, known) in workspace_plugins {
                let manifest = workspace.join(known.crate_dir).join("Cargo.toml");
                if !manifest.is_file() {
                    return Err(InstallError::Artifact(format!(
                        "plugin {:?}: {} is not in the workspace at {} (this checkout does not have it yet); give a prebuilt library with `path`",
                        p.name,
                        known.crate_dir,
                        workspace.display()
                    )));
                }
            }
        }
        Source::Dir(dir) => {
            let mut needed = vec!["milagro".to_string()];
            needed.extend(workspace_plugins.map(|(_, known)| known.library.to_string()));
            for file in needed {
                if !dir.join(&file).is_file() {
                    return Err(InstallError::Artifact(format!(
                        "{} is missing from the artefact directory {}",
                        file,
                        dir.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Builds, fetches (or finds) every artefact; writes nothing to the prefix.
/// `workspace` is this host's source (its plugin-api) for plugins built
/// from source; `installed` the prefix's record.
pub fn obtain(
    source: &Source,
    plans: &[PluginPlan],
    layout: &Layout,
    workspace: Option<&Path>,
    progress: &Progress,
) -> Result<Artifacts, InstallError> {
    let scratch = tempfile::Builder::new()
        .prefix("milagro-install-")
        .tempdir()
        .map_err(crate::io_err("create a scratch directory"))?;
    let installed = Record::read(layout).map_err(InstallError::Artifact)?;
    let dir = match source {
        Source::Dir(dir) => dir.clone(),
        Source::Build { workspace } => build(workspace, &packages(plans), progress)?,
    };
    let mut libraries = BTreeMap::new();
    let mut lockfiles = BTreeMap::new();
    for p in plans {
        let (file, placement) = match &p.source {
            PluginSource::Workspace(known) => (dir.join(known.library), Placement::Copy),
            PluginSource::Path(path) => (path.file.clone(), Placement::Copy),
            fetched => {
                let previous_lock = record::in_etc(layout, &record::lockfile_name(&p.name));
                if let Some(kept) = unchanged(p, fetched, &installed, layout) {
                    progress.step(&format!(
                        "plugin {}: unchanged ({}): kept, nothing fetched or rebuilt",
                        p.name,
                        fetched.pin()
                    ));
                    if previous_lock.is_file() {
                        lockfiles.insert(p.name.clone(), previous_lock);
                    }
                    (kept, Placement::Link)
                } else {
                    let fetched_library = source::fetch(
                        fetched,
                        &FetchContext {
                            name: &p.name,
                            scratch: scratch.path(),
                            workspace,
                            previous_lock: Some(previous_lock),
                            progress,
                        },
                    )?;
                    // Refused here, with the host's own check and line,
                    // not when the node first starts.
                    open_library(&p.name, Path::new(&fetched.pin()), &fetched_library.library)?;
                    progress.step(&format!(
                        "plugin {}: compatible with this host's plugin-api",
                        p.name
                    ));
                    if let Some(lock) = fetched_library.lockfile {
                        lockfiles.insert(p.name.clone(), lock);
                    }
                    (fetched_library.library, Placement::Copy)
                }
            }
        };
        libraries.insert(p.library.clone(), (file, placement));
    }
    Ok(Artifacts {
        milagro: dir.join("milagro"),
        libraries,
        lockfiles,
        _scratch: scratch,
    })
}

/// The installed library of `plan`, when the record pins it to the same
/// source and the file still has the recorded hash.
fn unchanged(
    plan: &PluginPlan,
    source: &PluginSource,
    installed: &Record,
    layout: &Layout,
) -> Option<PathBuf> {
    let entry = installed.find(&plan.name)?;
    let file = layout.plugins_dir().join(&plan.library);
    let same = entry.source == source.pin()
        && entry.library == plan.library
        && crate::sha256_file(&file).ok()? == entry.sha256;
    same.then_some(file)
}

/// The workspace's target directory, as cargo sees it (honours
/// `CARGO_TARGET_DIR` and cargo config).
fn target_dir(workspace: &Path) -> Result<PathBuf, InstallError> {
    let out = Command::new(build::cargo())
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(workspace)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| InstallError::Build(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(InstallError::Build(format!(
            "cargo metadata failed in {}",
            workspace.display()
        )));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| InstallError::Build(format!("cargo metadata: {e}")))?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| InstallError::Build("cargo metadata names no target directory".into()))
}

/// `cargo build --release --locked -p ...`; returns the release directory.
fn build(
    workspace: &Path,
    packages: &[&str],
    progress: &Progress,
) -> Result<PathBuf, InstallError> {
    let release = target_dir(workspace)?.join("release");
    let mut command = Command::new(build::cargo());
    command
        .args(["build", "--release", "--locked"])
        .current_dir(workspace);
    for p in packages {
        command.args(["-p", p]);
    }
    progress.step(&format!(
        "building (release): cargo build --release --locked -p {}",
        packages.join(" -p ")
    ));
    build::run_cargo(command, "cargo build --release", progress).map_err(InstallError::Build)?;
    Ok(release)
}
