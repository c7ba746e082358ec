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

//! A plugin built against a changed copy of plugin-api is refused at load
//! with one clear line. The test builds that plugin itself, from copies of
//! plugin-api and the probe plugin, in a target dir of its own.

use std::{path::Path, process::Command};

use milagro_tests::{Node, NodeConfig, PluginEntry, target_dir, workspace_root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Builds the probe plugin against a copy of plugin-api whose `AbiRequest`
/// has two fields swapped: same size, different layout contract.
fn build_incompatible_probe(work: &Path) -> std::path::PathBuf {
    let root = workspace_root();
    copy_dir(&root.join("plugin-api"), &work.join("plugin-api"));
    copy_dir(&root.join("tests/plugins/probe"), &work.join("probe"));
    // The workspace's [patch] section points into vendor/.
    copy_dir(&root.join("vendor"), &work.join("vendor"));
    std::fs::copy(root.join("Cargo.lock"), work.join("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").unwrap();
    let end = start + manifest[start..].find(']').unwrap() + 1;
    let manifest = format!(
        "{}members = [\"plugin-api\", \"probe\"]{}",
        &manifest[..start],
        &manifest[end..]
    );
    std::fs::write(work.join("Cargo.toml"), manifest).unwrap();
    replace_in(
        &work.join("plugin-api/src/abi/http.rs"),
        "    pub method: RString,\n    /// The request path as received, including the plugin's mount point.\n    pub path: RString,",
        "    /// The request path as received, including the plugin's mount point.\n    pub path: RString,\n    pub method: RString,",
    );
    let status = Command::new(env!("CARGO"))
        .args(["build", "--offline", "-p", "milagro-test-probe"])
        .current_dir(work)
        .env("CARGO_TARGET_DIR", target_dir().join("abi-mismatch"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the incompatible probe failed");
    target_dir().join("abi-mismatch/debug/libmilagro_test_probe.so")
}

#[test]
fn plugin_built_against_a_changed_plugin_api_is_refused_in_one_line() {
    let work = tempfile::tempdir().unwrap();
    let library = build_incompatible_probe(work.path());
    let exited = Node::start_expecting_exit(NodeConfig::new("abi").plugin(PluginEntry::new(
        "odd-probe",
        &library,
        "{ label = \"odd\" }",
    )));
    assert!(
        !exited.wrote_data,
        "a refused library must leave nothing on disk"
    );
    let line = exited.refusal_line();
    assert_eq!(
        exited.stderr.lines().count(),
        1,
        "nothing but that line:\n{}",
        exited.stderr
    );
    println!("refusal: {line}");
    assert!(
        line.contains("\"odd-probe\"") && line.contains("incompatible plugin-api"),
        "{line}"
    );
    assert!(
        line.contains("AbiRequest"),
        "the summary names the mismatching type: {line}"
    );
    assert!(
        line.contains("expected") && line.contains("found"),
        "{line}"
    );
    assert!(
        line.len() < 600,
        "summary too long ({} bytes): {line}",
        line.len()
    );
}
