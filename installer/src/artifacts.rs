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
//! tests), or, per plugin, a prebuilt library named in the manifest.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, IsTerminal},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{InstallError, manifest::PluginPlan};

/// Where binaries come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Build them with cargo in this workspace (release profile).
    Build { workspace: PathBuf },
    /// Take them from a directory of built artefacts.
    Dir(PathBuf),
}

/// The files to install.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub milagro: PathBuf,
    /// Library file name in the prefix -> the file to copy.
    pub libraries: BTreeMap<String, PathBuf>,
}

/// The cargo packages a build needs: the host and every plugin listed
/// without a prebuilt `path`.
pub fn packages(plans: &[PluginPlan]) -> Vec<&'static str> {
    let mut packages = vec!["milagro"];
    for p in plans.iter().filter(|p| p.prebuilt.is_none()) {
        if !packages.contains(&p.known.package) {
            packages.push(p.known.package);
        }
    }
    packages
}

/// Checks, before anything is built or written, that every artefact can be
/// had: the plugin crates exist in the workspace, or the files in the
/// artefact directory.
pub fn check(source: &Source, plans: &[PluginPlan]) -> Result<(), InstallError> {
    match source {
        Source::Build { workspace } => {
            for p in plans.iter().filter(|p| p.prebuilt.is_none()) {
                let manifest = workspace.join(p.known.crate_dir).join("Cargo.toml");
                if !manifest.is_file() {
                    return Err(InstallError::Artifact(format!(
                        "plugin {:?}: {} is not in the workspace at {} (this checkout does not have it yet); give a prebuilt library with `path`",
                        p.name,
                        p.known.crate_dir,
                        workspace.display()
                    )));
                }
            }
        }
        Source::Dir(dir) => {
            let mut needed = vec!["milagro".to_string()];
            needed.extend(
                plans
                    .iter()
                    .filter(|p| p.prebuilt.is_none())
                    .map(|p| p.known.library.to_string()),
            );
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

/// Builds (or finds) every artefact.
pub fn obtain(source: &Source, plans: &[PluginPlan]) -> Result<Artifacts, InstallError> {
    let dir = match source {
        Source::Dir(dir) => dir.clone(),
        Source::Build { workspace } => build(workspace, &packages(plans))?,
    };
    let mut libraries = BTreeMap::new();
    for p in plans {
        let file = match &p.prebuilt {
            Some((path, _)) => path.clone(),
            None => dir.join(p.known.library),
        };
        libraries.insert(p.known.library.to_string(), file);
    }
    Ok(Artifacts {
        milagro: dir.join("milagro"),
        libraries,
    })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The workspace's target directory, as cargo sees it (honours
/// `CARGO_TARGET_DIR` and cargo config).
fn target_dir(workspace: &Path) -> Result<PathBuf, InstallError> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(workspace)
        .stderr(Stdio::inherit())
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

/// A spinner on stderr (drawn only on a terminal).
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `cargo build --release --locked -p ...`; returns the release directory.
fn build(workspace: &Path, packages: &[&str]) -> Result<PathBuf, InstallError> {
    let release = target_dir(workspace)?.join("release");
    let mut command = Command::new(cargo());
    command
        .args(["build", "--release", "--locked"])
        .current_dir(workspace);
    for p in packages {
        command.args(["-p", p]);
    }
    eprintln!(
        "milagro-install: building (release): cargo build --release --locked -p {}",
        packages.join(" -p ")
    );
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| InstallError::Build(format!("cannot run cargo: {e}")))?;
    let bar = spinner("cargo build --release");
    let tty = std::io::stderr().is_terminal();
    let mut compiled = 0usize;
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("Compiling ") {
                compiled += 1;
                bar.set_message(format!("cargo build --release: {compiled} crates, {rest}"));
                // No spinner is drawn without a terminal: a line now and then.
                if !tty && compiled.is_multiple_of(50) {
                    eprintln!("milagro-install: building: {compiled} crates compiled");
                }
            }
            tail.push(line);
            if tail.len() > 60 {
                tail.remove(0);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| InstallError::Build(format!("cargo: {e}")))?;
    bar.finish_and_clear();
    if !status.success() {
        for line in &tail {
            eprintln!("{line}");
        }
        let first_error = tail
            .iter()
            .find(|l| l.starts_with("error"))
            .cloned()
            .unwrap_or_else(|| format!("cargo exited with {status}"));
        return Err(InstallError::Build(format!(
            "cargo build failed: {first_error}"
        )));
    }
    eprintln!("milagro-install: built {compiled} crate(s)");
    Ok(release)
}
