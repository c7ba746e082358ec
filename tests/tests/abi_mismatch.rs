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
//! with one clear line. The plugin is built from copies of plugin-api and
//! the probe plugin, in a target dir of its own
//! (`milagro_tests::test_plugins::abi_mismatch_probe`).

use milagro_tests::{Node, NodeConfig, PluginEntry, test_plugins};

#[test]
fn plugin_built_against_a_changed_plugin_api_is_refused_in_one_line() {
    let library = test_plugins::abi_mismatch_probe();
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
