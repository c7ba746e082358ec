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

//! The plugin host, end to end: real `milagro` processes loading real
//! plugin libraries (the example plugin and the test probe).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use milagro_tests::{Node, NodeConfig, PluginEntry, assert_error, json, plugin_library};

fn example() -> PluginEntry {
    PluginEntry::new(
        "example",
        &plugin_library("milagro-plugin-example"),
        "{ greeting = \"Hi\" }",
    )
}

fn probe(name: &str, label: &str) -> PluginEntry {
    PluginEntry::new(
        name,
        &plugin_library("milagro-test-probe"),
        &format!("{{ label = \"{label}\" }}"),
    )
}

/// Regression for the `RootModule::load_from_file` trap: two different
/// libraries exporting the same root-module type each serve their own
/// routes, and one library instantiated twice serves both configs.
#[test]
fn two_libraries_and_two_instances_each_serve_their_own_routes() {
    let node = Node::start(
        NodeConfig::new("multi")
            .plugin(example())
            .plugin(probe("probe-a", "A"))
            .plugin(probe("probe-b", "B").mount("/v1/elsewhere/b")),
    );
    let greeting = node.get_auth("/v1/example/greeting?name=Ada");
    assert_eq!(greeting.0, 200, "{}", greeting.1);
    assert_eq!(json(&greeting.1)["message"], "Hi, Ada!");
    assert_eq!(json(&node.get_auth("/v1/probe-a/whoami").1)["label"], "A");
    assert_eq!(
        json(&node.get_auth("/v1/elsewhere/b/whoami").1)["label"],
        "B"
    );
    // each instance has only its own routes
    assert_error(&node.get_auth("/v1/example/whoami"), 404, "not_found");
    assert_error(&node.get_auth("/v1/probe-a/greeting"), 404, "not_found");

    let plugins = json(&node.get_auth("/v1/plugins").1);
    let names: Vec<_> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example", "probe-a", "probe-b"]);
    assert_eq!(plugins[0]["plugin"], "example");
    assert_eq!(plugins[1]["plugin"], "probe");
    assert_eq!(plugins[2]["mount"], "/v1/elsewhere/b");
    assert_eq!(plugins[1]["sha256"], plugins[2]["sha256"]);
    assert_ne!(plugins[0]["sha256"], plugins[1]["sha256"]);

    let status = json(&node.get("/v1/status").1);
    assert_eq!(status["node"], "multi");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["plugins"].as_array().unwrap().len(), 3);
}

/// The example plugin's store round trip through the host facility,
/// surviving a restart of the node (the database is durable).
#[test]
fn plugin_store_is_durable_and_pages() {
    let mut node = Node::start(NodeConfig::new("store").plugin(example()));
    for key in ["a", "b", "c"] {
        let body = format!("{{\"text\": \"note {key}\"}}");
        let r = node.call(
            "PUT",
            &format!("/v1/example/notes/{key}"),
            Some(body.as_bytes()),
        );
        assert_eq!(r.0, 200, "{}", r.1);
    }
    let page = json(&node.get_auth("/v1/example/notes?limit=2").1);
    assert_eq!(page["notes"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_cursor"], "b");
    let rest = json(&node.get_auth("/v1/example/notes?limit=2&cursor=b").1);
    assert_eq!(rest["notes"][0]["key"], "c");
    assert!(rest["next_cursor"].is_null());
    assert_error(
        &node.call("PUT", "/v1/example/notes/x", Some(b"{bad")),
        400,
        "bad_request",
    );
    assert_error(
        &node.call("PUT", "/v1/example/notes/x", Some(b"{\"txt\": 1}")),
        422,
        "unprocessable",
    );

    // same data dir, new process
    let config_dir = node.dir.path().to_path_buf();
    node.kill();
    let port = node.port;
    let out = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args(["serve", "--config"])
        .arg(config_dir.join("host.toml"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut restarted = ChildGuard(out);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = node.get_auth("/v1/example/notes/a");
        if r.0 == 200 {
            assert_eq!(json(&r.1)["text"], "note a");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restarted node did not answer on {port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    restarted.0.kill().unwrap();
}

struct ChildGuard(std::process::Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a node that must refuse; returns its one error line.
fn refusal(config: NodeConfig, writes_nothing: bool) -> String {
    let exited = Node::start_expecting_exit(config);
    if writes_nothing {
        assert!(
            !exited.wrote_data,
            "a refused library must leave nothing on disk"
        );
    }
    exited.refusal_line().to_string()
}

#[test]
fn tampered_missing_and_failing_plugins_stop_startup() {
    let mut tampered = probe("probe-t", "T");
    tampered.sha256 = "ab".repeat(32);
    let line = refusal(
        NodeConfig::new("t").plugin(example()).plugin(tampered),
        true,
    );
    assert!(
        line.contains("\"probe-t\"") && line.contains("sha256"),
        "{line}"
    );

    let mut missing = probe("probe-m", "M");
    missing.path = missing.path.with_file_name("libdoes_not_exist.so");
    let line = refusal(NodeConfig::new("m").plugin(missing), true);
    assert!(
        line.contains("\"probe-m\"") && line.contains("cannot read"),
        "{line}"
    );

    let failing = probe("probe-f", "F");
    let failing = PluginEntry {
        config: "{ label = \"F\", fail_in_new = true }".into(),
        ..failing
    };
    let line = refusal(NodeConfig::new("f").plugin(failing), false);
    assert!(
        line.contains("\"probe-f\"") && line.contains("asked to fail"),
        "{line}"
    );

    let panicking = probe("probe-p", "P");
    let panicking = PluginEntry {
        config: "{ label = \"P\", panic_in_new = true }".into(),
        ..panicking
    };
    let line = refusal(NodeConfig::new("p").plugin(panicking), false);
    assert!(
        line.contains("\"probe-p\"") && line.contains("panicked in new"),
        "{line}"
    );

    let bad_config = probe("probe-c", "C");
    let bad_config = PluginEntry {
        config: "{ labell = \"C\" }".into(),
        ..bad_config
    };
    let line = refusal(NodeConfig::new("c").plugin(bad_config), false);
    assert!(
        line.contains("\"probe-c\"") && line.contains("labell"),
        "{line}"
    );
}

#[test]
fn disabled_plugin_is_neither_listed_nor_routed() {
    // Its file does not even need to exist: a disabled plugin is not opened.
    let mut disabled = probe("probe-off", "OFF").disabled();
    disabled.path = disabled.path.with_file_name("libgone.so");
    let node = Node::start(NodeConfig::new("d").plugin(example()).plugin(disabled));
    let plugins = json(&node.get_auth("/v1/plugins").1);
    assert_eq!(plugins.as_array().unwrap().len(), 1);
    assert_error(&node.get_auth("/v1/probe-off/whoami"), 404, "not_found");
    let openapi = node.get_auth("/openapi.json").1;
    assert!(!openapi.contains("probe-off"));
}

#[test]
fn handler_panic_is_a_500_and_other_requests_keep_succeeding() {
    let node = Arc::new(Node::start(
        NodeConfig::new("panics")
            .plugin(probe("probe", "X"))
            .plugin(example()),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (node, stop, served) = (Arc::clone(&node), Arc::clone(&stop), Arc::clone(&served));
            thread::spawn(move || {
                for _ in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = node.get_auth("/v1/example/greeting");
                    assert_eq!(
                        r.0, 200,
                        "a healthy route failed while another panicked: {}",
                        r.1
                    );
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for _ in 0..50 {
        let r = node.get_auth("/v1/probe/panic");
        assert_error(&r, 500, "internal");
        assert!(r.1.contains("panicked"), "{}", r.1);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker saw only successes");
    }
    assert!(served.load(Ordering::Relaxed) > 0);
    assert_eq!(node.get("/v1/status").0, 200, "host still up");
}

#[test]
fn slow_handler_gets_a_504_at_the_configured_timeout() {
    let node = Node::start(
        NodeConfig::new("slow")
            .http("handler_timeout_ms = 300")
            .plugin(probe("probe", "S")),
    );
    let fast = node.get_auth("/v1/probe/sleep/10");
    assert_eq!(fast.0, 200, "{}", fast.1);
    let started = std::time::Instant::now();
    let slow = node.get_auth("/v1/probe/sleep/5000");
    assert_error(&slow, 504, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the host waited for the handler"
    );
    assert_eq!(node.get_auth("/v1/probe/whoami").0, 200);
}

#[test]
fn operator_routes_need_the_token_and_open_routes_do_not() {
    let node = Node::start(NodeConfig::new("auth").plugin(example()));
    for path in [
        "/v1/plugins",
        "/openapi.json",
        "/v1/example/greeting",
        "/v1/example/notes/a",
    ] {
        assert_error(&node.get(path), 401, "unauthorized");
        let wrong = milagro_tests::request(
            ureq::get(&node.url(path)).set("Authorization", "Bearer 0000"),
            None,
        );
        assert_error(&wrong, 401, "unauthorized");
        let no_scheme = milagro_tests::request(
            ureq::get(&node.url(path)).set("Authorization", &node.token()),
            None,
        );
        assert_error(&no_scheme, 401, "unauthorized");
    }
    assert_eq!(node.get("/v1/status").0, 200);
    assert_eq!(node.get("/metrics").0, 200);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(node.dir.path().join("data/api-token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn http_errors_are_json_with_the_right_status() {
    let node = Node::start(
        NodeConfig::new("errors")
            .http("max_body_bytes = 1024")
            .plugin(probe("probe", "E")),
    );
    assert_error(&node.get("/nowhere"), 404, "not_found");
    assert_error(
        &node.call("DELETE", "/v1/status", None),
        405,
        "method_not_allowed",
    );
    let ok = node.call("POST", "/v1/probe/echo", Some(&[7u8; 1024]));
    assert_eq!(ok.0, 200);
    assert_error(
        &node.call("POST", "/v1/probe/echo", Some(&[7u8; 1025])),
        413,
        "payload_too_large",
    );
}

#[test]
fn metrics_count_requests_per_route_template() {
    let node = Node::start(NodeConfig::new("metrics").plugin(example()));
    for key in ["k1", "k2"] {
        node.get_auth(&format!("/v1/example/notes/{key}"));
    }
    let text = node.get("/metrics").1;
    assert!(
        text.contains(r#"milagro_http_requests_total{route="/v1/example/notes/{key}",method="GET",status="404"} 2"#),
        "{text}"
    );
    assert!(
        text.contains("milagro_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

/// Validates `/openapi.json` with a real OpenAPI 3 validator (the
/// `openapi-spec-validator` package from PyPI, installed by scripts/test).
#[test]
fn openapi_document_is_valid_and_lists_every_plugin_route() {
    let node = Node::start(
        NodeConfig::new("openapi")
            .plugin(example())
            .plugin(probe("probe-a", "A"))
            .plugin(probe("probe-b", "B").mount("/v1/x/b")),
    );
    let (status, body) = node.get_auth("/openapi.json");
    assert_eq!(status, 200);
    let doc = json(&body);
    let plugins = json(&node.get_auth("/v1/plugins").1);
    let mut count = 0;
    for plugin in plugins.as_array().unwrap() {
        for route in plugin["routes"].as_array().unwrap() {
            let path = route["path"].as_str().unwrap();
            let method = route["method"].as_str().unwrap().to_ascii_lowercase();
            assert!(
                doc["paths"][path][&method].is_object(),
                "{method} {path} missing from openapi.json"
            );
            count += 1;
        }
    }
    assert_eq!(count, 4 + 12 + 12);

    milagro_tests::assert_valid_openapi(node.dir.path(), &body);
}

/// The example plugin is the template for third-party authors: it uses the
/// safe layer alone.
#[test]
fn example_plugin_needs_no_unsafe_no_abi_types_and_no_runtime() {
    let root = milagro_tests::workspace_root().join("plugins/example");
    let source = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(source.contains("#![forbid(unsafe_code)]"));
    for banned in [
        "unsafe {",
        "unsafe fn",
        "abi_stable",
        "RString",
        "RVec",
        "RBox",
        "RResult",
        "tokio",
        "catch_unwind",
        "FfiFuture",
    ] {
        assert!(
            !source.contains(banned),
            "the example plugin mentions {banned}"
        );
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    // What it links; its tests add plugin-api's harness (`[dev-dependencies]`).
    let deps: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("[dev-dependencies]")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(
        deps,
        [
            "milagro-plugin-api.workspace",
            "serde.workspace",
            "serde_json.workspace"
        ]
    );
    let tree = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            "milagro-plugin-example",
        ])
        .current_dir(milagro_tests::workspace_root())
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("milagro-plugin-api"), "{tree}");
    assert!(
        !tree.lines().any(|l| l.starts_with("tokio ")),
        "the example plugin links tokio:\n{tree}"
    );
}

/// The release test's canary (scripts/test-release): with
/// `MILAGRO_RELEASE_CANARY=fail` it fails with its own message, which the
/// release test must then find in its output, so a test failing in the
/// tarball run is shown by its panic message and not hidden behind the end
/// of a log. Without the variable there is nothing to check and it passes.
#[test]
fn release_canary() {
    if std::env::var_os("MILAGRO_RELEASE_CANARY").is_some_and(|v| v == "fail") {
        panic!("release canary: deliberate failure (MILAGRO_RELEASE_CANARY=fail)");
    }
}
