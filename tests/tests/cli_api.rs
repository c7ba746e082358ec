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

//! `milagro api METHOD PATH`: any route of the local node (`--config`: its
//! address, TLS settings and token) or of another (`--url`, `--tls-ca`,
//! `--token-file`), against a real node; and what it does with bad input:
//! one error line and a non-zero exit each time.

use std::process::{Command, Output, Stdio};

use milagro_tests::{Node, NodeConfig, PluginEntry, artifact, free_port, json, plugin_library};

/// `milagro api <args>`; (success, stdout, the error lines of stderr).
fn api(args: &[&str]) -> (bool, String, Vec<String>) {
    let out: Output = Command::new(artifact("milagro"))
        .arg("api")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MILAGRO_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run milagro api");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.starts_with("error:"))
        .map(String::from)
        .collect();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        errors,
    )
}

/// Asserts a failure with one error line containing `text`; returns it.
fn refused(args: &[&str], text: &str) -> String {
    let (ok, stdout, errors) = api(args);
    assert!(!ok, "{args:?} succeeded: {stdout}");
    assert_eq!(errors.len(), 1, "{args:?}: {errors:?}");
    assert!(errors[0].contains(text), "{args:?}: {errors:?}");
    errors[0].clone()
}

#[test]
fn api_calls_any_route_of_the_local_or_a_remote_node_and_refuses_bad_input() {
    let node = Node::start(NodeConfig::new("api").plugin(PluginEntry::new(
        "example",
        &plugin_library("milagro-plugin-example"),
        "{ greeting = \"Hi\" }",
    )));
    let config = node.dir.path().join("host.toml");
    let config = config.to_str().unwrap();
    let url = node.url("");
    let token_file = node.dir.path().join("token");
    std::fs::write(&token_file, node.token()).unwrap();
    let token_file = token_file.to_str().unwrap();

    // The local node, by its config (operator token included).
    let (ok, stdout, errors) = api(&["GET", "/v1/status", "--config", config]);
    assert!(ok, "{errors:?}");
    assert!(json(&stdout)["plugins"].is_array(), "{stdout}");
    let (ok, stdout, errors) = api(&[
        "put",
        "/v1/example/notes/n1",
        "--data",
        r#"{"text": "from the CLI"}"#,
        "--config",
        config,
    ]);
    assert!(ok, "{errors:?}");
    assert_eq!(json(&stdout)["text"], "from the CLI", "{stdout}");
    // Another node by URL, with and without its token.
    let (ok, stdout, errors) = api(&[
        "GET",
        "/v1/example/notes/n1",
        "--url",
        &url,
        "--token-file",
        token_file,
    ]);
    assert!(ok, "{errors:?}");
    assert_eq!(json(&stdout)["text"], "from the CLI", "{stdout}");
    let (ok, _, errors) = api(&["GET", "/v1/identity", "--url", &url]);
    assert!(ok, "{errors:?}");

    // Each failure: one line, non-zero exit.
    let lines = [
        refused(&["GET", "/v1/example/notes/n1", "--url", &url], "401"),
        refused(
            &["GET", "/v1/example/notes/none", "--config", config],
            "404",
        ),
        refused(
            &[
                "GET",
                "/v1/status",
                "--url",
                &format!("http://127.0.0.1:{}", free_port()),
            ],
            "(is it running?)",
        ),
        refused(
            &["GET", "/v1/status", "--url", "ftp://127.0.0.1:1"],
            "expected http://",
        ),
        refused(&["GET", "v1/status", "--config", config], "absolute path"),
        refused(
            &["G ET", "/v1/status", "--config", config],
            "not an HTTP method",
        ),
        refused(
            &[
                "POST",
                "/v1/status",
                "--data",
                "@/nonexistent/body.json",
                "--config",
                config,
            ],
            "cannot read /nonexistent/body.json",
        ),
        refused(
            &[
                "GET",
                "/v1/status",
                "--url",
                &url,
                "--token-file",
                "/nonexistent/token",
            ],
            "cannot read the API token in /nonexistent/token",
        ),
        refused(&["GET", "/v1/status"], "name the node: --config FILE"),
        refused(
            &["GET", "/v1/status", "--config", config, "--url", &url],
            "cannot be used with",
        ),
    ];
    println!("milagro api refusals:\n{}", lines.join("\n"));
}
