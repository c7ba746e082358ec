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

//! Building a fetched plugin crate (git or registry) as a cdylib against
//! this host's plugin-api: `milagro-plugin-api` is patched to the host's
//! copy (so a plugin that depends on `milagro-plugin-api = "0.1"` is built
//! against exactly the ABI this host loads), the lockfile is seeded from the
//! plugin's previous install (else from the host's own Cargo.lock, so shared
//! dependencies resolve to the versions the host uses), and the lockfile of
//! the build is kept beside the install so that a re-install is the same
//! build. Also runs the workspace build's cargo (`run_cargo`).

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::{FetchContext, Fetched, SourceError};
use crate::progress::Progress;

/// The cargo to run: the one running us (`CARGO`), else `cargo` on PATH.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The most telling line of cargo's stderr: its first `error`, else its
/// last line.
pub fn last_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("cargo failed")
        .trim()
        .to_string()
}

/// Points `milagro-plugin-api` from crates.io at this host's copy.
pub fn patch_plugin_api(
    command: &mut Command,
    context: &FetchContext<'_>,
) -> Result<(), SourceError> {
    let workspace = context.workspace.ok_or_else(|| SourceError::Build {
        name: context.name.into(),
        reason: "building a plugin from source needs this host's plugin-api: pass --workspace DIR (a checkout of this version of Milagro Server)".into(),
    })?;
    let plugin_api = toml::Value::String(workspace.join("plugin-api").display().to_string());
    command.arg("--config").arg(format!(
        "patch.crates-io.milagro-plugin-api.path={plugin_api}"
    ));
    Ok(())
}

/// What a cargo run printed on stdout, or why it failed (its first error
/// line; the last lines of its output are printed to stderr first).
pub fn run_cargo(mut command: Command, what: &str, progress: &Progress) -> Result<String, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut counter = progress.counter(what);
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim_start().strip_prefix("Compiling ") {
                counter.compiled(rest);
            }
            tail.push(line);
            if tail.len() > 60 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    let stdout = reader.join().unwrap_or_default();
    let compiled = counter.finish();
    if !status.success() {
        for line in &tail {
            eprintln!("{line}");
        }
        return Err(format!("{what} failed: {}", last_error(&tail.join("\n"))));
    }
    progress.step(&format!("{what}: {compiled} crate(s) compiled"));
    Ok(stdout)
}

/// Writes `<dir>/Cargo.lock` from the plugin's previous build, else from
/// the host's own lockfile (when either is there); returns its path.
pub fn seed_lockfile(dir: &Path, context: &FetchContext<'_>) -> Result<PathBuf, SourceError> {
    let lockfile = dir.join("Cargo.lock");
    let seed = context
        .previous_lock
        .clone()
        .filter(|p| p.is_file())
        .or_else(|| {
            context
                .workspace
                .map(|w| w.join("Cargo.lock"))
                .filter(|p| p.is_file())
        });
    if let Some(seed) = seed {
        std::fs::copy(&seed, &lockfile)
            .map_err(context.io_error(format!("seed the lockfile from {}", seed.display())))?;
    }
    Ok(lockfile)
}

/// Builds the crate whose manifest is `<source>/Cargo.toml` (release,
/// library only) and returns its cdylib and the lockfile of the build.
pub fn build_library(source: &Path, context: &FetchContext<'_>) -> Result<Fetched, SourceError> {
    let name = context.name;
    let fail = |reason: String| SourceError::Build {
        name: name.into(),
        reason,
    };
    let manifest = source.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(fail("the source has no Cargo.toml at its root".into()));
    }
    let lockfile = seed_lockfile(source, context)?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| context.scratch.join("target"));
    let mut command = Command::new(cargo());
    command
        .args([
            "build",
            "--release",
            "--lib",
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    patch_plugin_api(&mut command, context)?;
    let stdout = run_cargo(
        command,
        &format!("plugin {name}: cargo build --release"),
        context.progress,
    )
    .map_err(fail)?;
    let manifest_text = manifest.display().to_string();
    let library = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["manifest_path"] == manifest_text.as_str())
        .filter(|m| {
            m["target"]["crate_types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .ok_or_else(|| {
            fail("the crate builds no cdylib: a plugin's Cargo.toml needs [lib] crate-type = [\"cdylib\"]".into())
        })?;
    // The target dir may be shared (CARGO_TARGET_DIR): keep this build's
    // library apart until it is staged.
    let kept = context.scratch_library();
    std::fs::copy(&library, &kept)
        .map_err(context.io_error(format!("copy {}", library.display())))?;
    Ok(Fetched {
        library: kept,
        lockfile: Some(lockfile),
    })
}
