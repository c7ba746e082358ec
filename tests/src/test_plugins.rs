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

//! The plugin libraries only tests load, built outside the workspace's own
//! build, into one target dir of their own, [`test_plugins_dir`] (one build
//! of the dependencies serves them all): the fault-injecting variants (the
//! `test-faults` feature, which the workspace build must never have) and a
//! probe built against a changed plugin-api.
//!
//! `scripts/test` builds them all before the suite (`build-test-plugins`,
//! which calls [`build_all`]), so no test compiles while others run; a test
//! run alone builds what it needs the same way, and cargo finds it fresh
//! when it was built already.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{target_dir, workspace_root};

/// The crates with a `test-faults` feature. They are built together, in one
/// cargo command, so one dependency build serves both.
pub const TEST_FAULTS_CRATES: [&str; 2] =
    ["milagro-plugin-custody-fiduciary", "milagro-plugin-dta"];

/// `<target>/test-plugins`: the target dir of these libraries.
pub fn test_plugins_dir() -> PathBuf {
    target_dir().join("test-plugins")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run_cargo(mut command: Command, what: &str) {
    let out = command.output().expect("run cargo");
    assert!(
        out.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn library_file(crate_name: &str) -> String {
    format!("lib{}.so", crate_name.replace('-', "_"))
}

/// Builds the [`TEST_FAULTS_CRATES`] with their `test-faults` feature into
/// [`test_plugins_dir`].
fn build_test_faults() {
    let mut command = cargo();
    command
        .args(["build", "--locked", "--target-dir"])
        .arg(test_plugins_dir())
        .current_dir(workspace_root());
    let mut features = Vec::new();
    for name in TEST_FAULTS_CRATES {
        command.args(["-p", name]);
        features.push(format!("{name}/test-faults"));
    }
    command.args(["--features", &features.join(",")]);
    run_cargo(command, "the test-faults plugin variants");
}

/// The library of `crate_name` (one of [`TEST_FAULTS_CRATES`]) built with
/// its `test-faults` feature; built once per test process.
pub fn test_faults_library(crate_name: &str) -> PathBuf {
    assert!(
        TEST_FAULTS_CRATES.contains(&crate_name),
        "{crate_name} is not one of {TEST_FAULTS_CRATES:?}"
    );
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(build_test_faults);
    test_plugins_dir()
        .join("debug")
        .join(library_file(crate_name))
}

/// Writes `text` to `path` unless it holds it already: an unchanged file
/// keeps its mtime, so cargo finds an earlier build of it fresh.
fn write_if_changed(path: &Path, text: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).expect("write a file of the abi-mismatch workspace");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory of the abi-mismatch workspace");
    for entry in std::fs::read_dir(from).expect("read a source directory") {
        let entry = entry.expect("read a source directory entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            write_if_changed(
                &dest,
                &std::fs::read(entry.path()).expect("read a source file"),
            );
        }
    }
}

fn replaced(path: &Path, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}",
        path.display()
    );
    text.replacen(from, to, 1)
}

/// The probe plugin built against a copy of plugin-api whose `AbiRequest`
/// has two fields swapped: same size, different layout contract.
///
/// The copy is a workspace of its own, `<test-plugins>/abi-mismatch`, whose
/// members sit in directories the real workspace does not have
/// (`abi-plugin-api/`, `abi-probe/`): cargo names a path crate's artifacts
/// by its path inside the workspace, so the changed plugin-api can share
/// the target dir without ever replacing the real one's artifacts.
pub fn abi_mismatch_probe() -> PathBuf {
    let root = workspace_root();
    let work = test_plugins_dir().join("abi-mismatch");
    // One builder at a time rewrites the copy (cargo serialises the builds).
    std::fs::create_dir_all(&work).expect("create the abi-mismatch workspace");
    let lock = std::fs::File::create(test_plugins_dir().join("abi-mismatch.lock"))
        .expect("create the copy lock");
    lock.lock().expect("lock the abi-mismatch copy");
    copy_dir(&root.join("plugin-api"), &work.join("abi-plugin-api"));
    copy_dir(&root.join("tests/plugins/probe"), &work.join("abi-probe"));
    // The workspace's [patch] section points into vendor/; plugin-api's
    // optional proto (features `host`, `testing`) must resolve, though this
    // build never enables them.
    copy_dir(&root.join("vendor"), &work.join("vendor"));
    copy_dir(&root.join("proto"), &work.join("proto"));
    write_if_changed(
        &work.join("Cargo.lock"),
        &std::fs::read(root.join("Cargo.lock")).expect("read Cargo.lock"),
    );
    let manifest = replaced(
        &root.join("Cargo.toml"),
        "milagro-plugin-api = { path = \"plugin-api\" }",
        "milagro-plugin-api = { path = \"abi-plugin-api\" }",
    );
    let start = manifest.find("members = [").expect("workspace members");
    let end = start + manifest[start..].find(']').expect("end of members") + 1;
    let manifest = format!(
        "{}members = [\"abi-plugin-api\", \"abi-probe\"]{}",
        &manifest[..start],
        &manifest[end..]
    );
    write_if_changed(&work.join("Cargo.toml"), manifest.as_bytes());
    let swapped = replaced(
        &root.join("plugin-api/src/abi/http.rs"),
        "    /// The upper-case HTTP method.\n    pub method: RString,\n    /// The request path as received, including the plugin's mount point.\n    pub path: RString,",
        "    /// The request path as received, including the plugin's mount point.\n    pub path: RString,\n    /// The upper-case HTTP method.\n    pub method: RString,",
    );
    write_if_changed(
        &work.join("abi-plugin-api/src/abi/http.rs"),
        swapped.as_bytes(),
    );
    let mut command = cargo();
    command
        .args([
            "build",
            "--offline",
            "-p",
            "milagro-test-probe",
            "--target-dir",
        ])
        .arg(test_plugins_dir())
        .current_dir(&work);
    run_cargo(command, "the probe against a changed plugin-api");
    test_plugins_dir()
        .join("debug")
        .join(library_file("milagro-test-probe"))
}

/// Builds every library of this module; returns their paths.
pub fn build_all() -> Vec<PathBuf> {
    build_test_faults();
    let mut built: Vec<PathBuf> = TEST_FAULTS_CRATES
        .iter()
        .map(|name| test_plugins_dir().join("debug").join(library_file(name)))
        .collect();
    built.push(abi_mismatch_probe());
    built
}
