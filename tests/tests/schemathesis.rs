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

//! schemathesis (PyPI; scripts/test installs the pinned version) against
//! `/openapi.json` of a node playing every custody role and the D-TA: every
//! documented operation, with generated valid and invalid requests (coverage,
//! fuzzing and stateful phases), a bounded number of examples per operation
//! and a bounded time. Checks: no 5xx (`not_a_server_error`), every response
//! conforms to its documented schema (`response_schema_conformance`). A
//! second pass over the paged listings checks their `limit` bounds are
//! documented: in-range pages accepted, out-of-range ones refused.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    Node, PluginEntry,
    custody::{ALL_ROLES, node_config},
    plugin_library,
};
use serde_json::Value;

/// The version scripts/test installs; the test refuses another.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "25";
/// schemathesis' own time budget for the run over every operation and for
/// the one over the paged listings, in seconds.
const MAX_TIME_S: u64 = 90;
const PAGED_MAX_TIME_S: u64 = 30;
/// Fixed seed: a failure reproduces with the same command.
const SEED: &str = "9";

/// The paged listings (GET with `limit` 1-1000 and `cursor`), by operation id.
const PAGED: &str = "^(principal\\.list_orders|fiduciary\\.(shares|refusals)\
                     |beneficiary\\.(list_wallets|refusals)|dta\\.issuances)$";

/// The `schemathesis` command installed beside the Python packages the
/// tests use (`MILAGRO_PYTHON`, default `python3`).
fn schemathesis() -> PathBuf {
    let python = std::env::var("MILAGRO_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import sysconfig, importlib.metadata as m; \
             print(sysconfig.get_path('scripts')); print(m.version('schemathesis'))",
        ])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (Some(scripts), Some(version)) = (lines.next(), lines.next()) else {
        panic!(
            "schemathesis is not installed for {python} \
             (pip install schemathesis=={SCHEMATHESIS_VERSION}, as scripts/test does):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert_eq!(
        version, SCHEMATHESIS_VERSION,
        "scripts/test pins schemathesis {SCHEMATHESIS_VERSION}"
    );
    Path::new(scripts).join("schemathesis")
}

/// Runs schemathesis against the node with `args` for at most `max_time_s`,
/// killed if it overruns that by a minute; returns its JSON report.
fn run(node: &Node, name: &str, max_time_s: u64, args: &[&str]) -> Value {
    let report = node.dir.path().join(format!("schemathesis-{name}.json"));
    let log = node.dir.path().join(format!("schemathesis-{name}.log"));
    let mut child = Command::new(schemathesis())
        .arg("run")
        .arg(node.url("/openapi.json"))
        .args([
            "--header",
            &format!("Authorization: Bearer {}", node.token()),
        ])
        .args([
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            "--workers",
            "1",
        ])
        .args([
            "--max-time",
            &max_time_s.to_string(),
            "--request-timeout",
            "30",
        ])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(node.dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run schemathesis");
    let deadline = Instant::now() + Duration::from_secs(max_time_s + 60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait schemathesis") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("schemathesis overran its {max_time_s} s budget");
        }
        thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let report: Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("schemathesis wrote no report ({status}):\n{output}"));
    let failures = report["failures"].as_array().map_or(0, Vec::len);
    let errors = report["errors"].as_array().map_or(0, Vec::len);
    assert!(
        status.success() && failures == 0 && errors == 0,
        "schemathesis {name}: {failures} failure(s), {errors} error(s), {status}:\n{output}\n{}",
        node.log()
    );
    report
}

/// Requests the node has served (the sum of its per-route counters).
fn requests_served(node: &Node) -> u64 {
    let (status, text) = node.get("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .filter(|l| l.starts_with("milagro_http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn count(report: &Value, pointer: &str) -> u64 {
    report.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn schemathesis_finds_no_server_error_and_no_nonconforming_response() {
    let config = node_config("schemathesis", &ALL_ROLES, &[], 3_000).plugin(PluginEntry::new(
        "dta",
        &plugin_library("milagro-plugin-dta"),
        "{}",
    ));
    let node = Node::start(config);
    let before = requests_served(&node);

    let all = run(
        &node,
        "all",
        MAX_TIME_S,
        &["--checks", "not_a_server_error,response_schema_conformance"],
    );
    let paged = run(
        &node,
        "paged",
        PAGED_MAX_TIME_S,
        &[
            "--checks",
            "positive_data_acceptance,negative_data_rejection",
            "--include-operation-id-regex",
            PAGED,
            "--phases",
            "coverage,fuzzing",
        ],
    );
    // Less the one /metrics request of `before` itself.
    let requests = requests_served(&node) - before - 1;

    let operations = count(&all, "/operations/tested");
    assert_eq!(operations, count(&all, "/operations/selected"));
    // Every operation of the host, the custody roles and the D-TA (whose
    // `POST /check` was removed with the corrected design).
    assert!(operations >= 20, "operations tested: {operations}");
    assert_eq!(count(&paged, "/operations/tested"), 6);
    assert_eq!(node.get("/v1/status").0, 200, "node healthy after the runs");
    eprintln!(
        "schemathesis {SCHEMATHESIS_VERSION}: {operations} operations, {} test cases \
         (+{} on the 6 paged listings), {requests} requests served, 0 failures, 0 errors",
        count(&all, "/test_cases/generated"),
        count(&paged, "/test_cases/generated"),
    );
}
