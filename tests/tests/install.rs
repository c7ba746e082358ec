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

//! `milagro-install`, end to end: real installs into temporary prefixes,
//! with the artefacts the workspace build already made
//! (`MILAGRO_INSTALL_ARTIFACTS`, so no second, release build), real nodes
//! started by the installer, and the README's quick start run as written.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    artifact, free_port,
    installed::{Installed, QUICKSTART_PLUGINS, artefacts, manifest},
    json,
    pki::{Ca, agent},
    request, workspace_root,
};

const EXAMPLE_AND_DTA: &str = r#"
[node]
name = "re-run"

[[plugins]]
name = "example"
config = { greeting = "Hi" }

[[plugins]]
name = "dta"
"#;

/// Acceptance 3: a re-run keeps the node ID and applies a changed manifest;
/// `enabled = false` (in the manifest, or one line of host.toml) removes a
/// plugin's routes after a restart; only --force-new-identity replaces the
/// identity.
#[test]
fn rerun_keeps_identity_and_enabled_false_removes_routes_after_restart() {
    let node = Installed::new();
    let m = manifest(node.dir(), "node.toml", EXAMPLE_AND_DTA);
    let out = node.install_ok(&m, &["--start"]);
    let id = node.id();
    assert!(out.contains(&id), "the summary names the node ID: {out}");
    assert!(out.contains("api-token"), "{out}");
    assert_eq!(node.status_plugins(), ["example", "dta"]);
    assert_eq!(
        node.call("GET", "/v1/example/greeting?name=Ada", None).0,
        200
    );

    // Same manifest again, node running: restarted, same identity and data.
    node.call(
        "PUT",
        "/v1/example/notes/kept",
        Some(r#"{"text":"still here"}"#),
    );
    node.install_ok(&m, &["--start"]);
    assert_eq!(node.id(), id, "a re-run keeps the node ID");
    let note = node.call("GET", "/v1/example/notes/kept", None);
    assert_eq!(note.0, 200, "data survives a re-run: {}", note.1);

    // The manifest disables a plugin: its routes are gone after the restart.
    let disabled = EXAMPLE_AND_DTA.replace(
        "name = \"example\"\n",
        "name = \"example\"\nenabled = false\n",
    );
    let m2 = manifest(node.dir(), "node.toml", &disabled);
    node.install_ok(&m2, &["--start"]);
    assert_eq!(node.id(), id);
    assert_eq!(node.status_plugins(), ["dta"]);
    assert_eq!(
        node.call("GET", "/v1/example/greeting?name=Ada", None).0,
        404
    );

    // One line of host.toml turns it back on, applied on restart.
    let host_toml = node.prefix.join("etc/milagro/host.toml");
    let text = std::fs::read_to_string(&host_toml).unwrap();
    let at = text.find("name = \"example\"").expect("example entry");
    let (head, tail) = text.split_at(at);
    let edited = format!(
        "{head}{}",
        tail.replacen("enabled = false", "enabled = true", 1)
    );
    assert_ne!(edited, text);
    std::fs::write(&host_toml, edited).unwrap();
    node.stop();
    let mut serve = Command::new(node.prefix.join("bin/milagro"))
        .args(["serve", "--config"])
        .arg(&host_toml)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("milagro serve");
    std::fs::write(node.prefix.join("run/milagro.pid"), serve.id().to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while node.get("/v1/status").0 != 200 {
        assert!(Instant::now() < deadline, "node did not restart");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(node.status_plugins(), ["example", "dta"]);
    assert_eq!(
        node.call("GET", "/v1/example/greeting?name=Ada", None).0,
        200
    );
    assert_eq!(node.id(), id);

    // Only --force-new-identity replaces it.
    node.install_ok(&m2, &["--start", "--force-new-identity"]);
    // The installer stopped the node this test started by hand.
    let _ = serve.wait();
    let new_id = node.id();
    assert_ne!(new_id, id, "--force-new-identity gives a new node ID");
    node.install_ok(&m2, &["--start"]);
    assert_eq!(node.id(), new_id);
}

/// Runs the installer expecting a refusal; returns its one stderr line and
/// checks that nothing was installed.
fn refused(node: &Installed, manifest: &Path, extra: &[&str]) -> String {
    let out = node.install(manifest, extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the install must fail: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one message:\n{stderr}");
    assert!(
        !node.prefix.exists(),
        "nothing is left in the prefix after: {stderr}"
    );
    lines[0].to_string()
}

/// Acceptance 4: bad manifests fail with one clear message naming the file,
/// line and column, and leave nothing behind.
#[test]
fn bad_manifests_fail_with_one_message_and_install_nothing() {
    let node = Installed::new();
    let dir = node.dir();
    let cases = [
        ("[node\nname = \"x\"\n", "bad.toml:1:"),
        (
            "[node]\nname = \"x\"\n\n[[plugins]]\nname = \"wallet\"\n",
            "bad.toml:5:8: unknown plugin \"wallet\": expected one of",
        ),
        (
            "[node]\nname = \"x\"\ncolour = \"red\"\n",
            "bad.toml:3:1: unknown field `colour`",
        ),
        (
            "[network]\nlisten = \"127.0.0.1:7070\"\n",
            "missing field `node`",
        ),
        (
            "[node]\ndata_dir = \"d\"\n",
            "bad.toml:1:1: missing field `name`",
        ),
        (
            "[node]\nname = \"x\"\n[network]\nlisten = \"localhost\"\n",
            "bad.toml:4:10: invalid socket address",
        ),
        (
            "[node]\nname = \"x\"\n[[plugins]]\nname = \"dta\"\nenabled = \"yes\"\n",
            "bad.toml:5:11: invalid type: string \"yes\", expected a boolean",
        ),
    ];
    for (text, expected) in cases {
        let m = manifest(dir, "bad.toml", text);
        let line = refused(&node, &m, &[]);
        assert!(line.contains(expected), "{text:?}: {line}");
        assert!(line.starts_with("milagro-install: error: "), "{line}");
    }

    // A port in use: the manifest's own (its line and column) ...
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let m = manifest(
        dir,
        "busy.toml",
        &format!("[node]\nname = \"x\"\n[network]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let out = Command::new(artifact("milagro-install"))
        .arg("--manifest")
        .arg(&m)
        .arg("--prefix")
        .arg(&node.prefix)
        .env("MILAGRO_INSTALL_ARTIFACTS", artefacts())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !node.prefix.exists());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "busy.toml:4:10: HTTP listen address 127.0.0.1:{port}: port {port} cannot be used"
        )),
        "{stderr}"
    );
    // ... or one given on the command line.
    let ok = manifest(dir, "ok.toml", "[node]\nname = \"x\"\n");
    let out = Command::new(artifact("milagro-install"))
        .arg("--manifest")
        .arg(&ok)
        .arg("--prefix")
        .arg(&node.prefix)
        .args(["--ipfs-listen", &format!("127.0.0.1:{port}")])
        .env("MILAGRO_INSTALL_ARTIFACTS", artefacts())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success() && !node.prefix.exists());
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains(&format!("IPFS listen address 127.0.0.1:{port}")),
        "{line}"
    );
    drop(busy);

    // A failure after the files were staged (the keystore's passphrase
    // variable is unset, so `milagro init` fails): rolled back completely.
    let m = manifest(
        dir,
        "init.toml",
        "[node]\nname = \"x\"\n[keystore]\npassphrase_env = \"MILAGRO_TEST_UNSET_PASSPHRASE\"\n",
    );
    let out = node.install(&m, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("milagro init"), "{stderr}");
    assert!(
        !node.prefix.exists(),
        "a failed init leaves nothing: {stderr}"
    );

    // A refused re-run leaves the existing install untouched.
    node.install_ok(&ok, &[]);
    let host_toml = std::fs::read(node.prefix.join("etc/milagro/host.toml")).unwrap();
    let bad = manifest(
        dir,
        "bad.toml",
        "[node]\nname = \"x\"\n[[plugins]]\nname = \"nope\"\n",
    );
    let out = node.install(&bad, &[]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read(node.prefix.join("etc/milagro/host.toml")).unwrap(),
        host_toml
    );
    assert!(!node.prefix.join(".milagro-install").exists());
}

/// `--dry-run` validates and writes nothing.
#[test]
fn dry_run_writes_nothing() {
    let node = Installed::new();
    let m = workspace_root().join("manifests/dta.toml");
    let out = node.install_ok(&m, &["--dry-run"]);
    assert!(
        out.contains("dry run") && out.contains("plugin dta"),
        "{out}"
    );
    assert!(!node.prefix.exists());
}

/// Every manifest in manifests/ is accepted (dry run) where its plugins exist.
#[test]
fn shipped_manifests_validate() {
    for entry in std::fs::read_dir(workspace_root().join("manifests")).unwrap() {
        let path = entry.unwrap().path();
        let node = Installed::new();
        let out = Command::new(artifact("milagro-install"))
            .arg("--manifest")
            .arg(&path)
            .arg("--prefix")
            .arg(&node.prefix)
            .args(["--listen", &format!("127.0.0.1:{}", node.port)])
            .args(["--ipfs-listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--dry-run")
            .arg("--workspace")
            .arg(workspace_root())
            .env_remove("MILAGRO_INSTALL_ARTIFACTS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("is not in the workspace") {
            continue; // a plugin this checkout does not have yet
        }
        assert!(out.status.success(), "{}: {stderr}", path.display());
    }
}

/// Orders a wallet on `principal` from `fiduciaries` for `beneficiary`,
/// redeems it and returns the beneficiary's wallet record with its key.
fn order_redeem_key(
    principal: &Installed,
    fiduciaries: &[String],
    beneficiary: &Installed,
) -> serde_json::Value {
    let body = serde_json::json!({
        "fiduciaries": fiduciaries,
        "beneficiary": beneficiary.id(),
        "coin": "btc",
    })
    .to_string();
    let (status, order) = principal.call("POST", "/v1/custody/orders", Some(&body));
    assert_eq!(status, 201, "order: {order}\n{}", principal.log());
    let order = json(&order);
    let reference = order["reference"].as_str().expect("reference").to_string();
    assert!(order["address"].is_string(), "{order}");
    let (status, body) = principal.call(
        "POST",
        &format!("/v1/custody/orders/{reference}/redeem"),
        None,
    );
    assert_eq!(status, 202, "redeem: {body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) =
            beneficiary.call("GET", &format!("/v1/beneficiary/wallets/{reference}"), None);
        if status == 200 && json(&body)["secret_key"].is_string() {
            return json(&body);
        }
        assert!(
            Instant::now() < deadline,
            "no key after 60 s: {status} {body}\n{}",
            beneficiary.log()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// Acceptance 2: principal, two fiduciaries and a beneficiary, installed
/// from the shipped manifests into four prefixes (distinct ports, each
/// bootstrapped to the nodes installed before it), form a custody network.
#[test]
fn four_installs_form_a_custody_network() {
    let manifests = workspace_root().join("manifests");
    let principal = Installed::new();
    principal.install_ok(&manifests.join("principal.toml"), &["--start"]);
    let mut bootstrap = vec![principal.url("")];
    let mut nodes = Vec::new();
    for (name, file) in [
        ("fiduciary-1", "fiduciary.toml"),
        ("fiduciary-2", "fiduciary.toml"),
        ("beneficiary", "beneficiary.toml"),
    ] {
        let node = Installed::new();
        let mut args = vec!["--start", "--name", name];
        for b in &bootstrap {
            args.extend(["--bootstrap", b.as_str()]);
        }
        node.install_ok(&manifests.join(file), &args);
        bootstrap.push(node.url(""));
        nodes.push(node);
    }
    let fiduciaries = vec![nodes[0].id(), nodes[1].id()];
    let wallet = order_redeem_key(&principal, &fiduciaries, &nodes[2]);
    assert!(wallet["wif"].is_string(), "{wallet}");
}

/// A manifest for a node with the example plugin and `network` lines.
fn tls_manifest(dir: &Path, name: &str, network: &str) -> PathBuf {
    manifest(
        dir,
        &format!("{name}.toml"),
        &format!(
            "[node]\nname = \"{name}\"\n\n[network]\n{network}\n[[plugins]]\nname = \"example\"\n"
        ),
    )
}

/// Issue 17: a node installed with `[network] tls_cert`, `tls_key` and
/// `tls_ca` (a private CA made here) is started and checked by `--start`
/// over HTTPS and serves nothing in plain HTTP; a second one installed with
/// `--bootstrap https://` of the first resolves it through that CA; a third
/// whose manifest trusts only the system roots is refused that bootstrap,
/// the message naming the certificate problem, and nothing is installed.
#[test]
fn tls_installs_start_and_bootstrap_over_https() {
    let ca = Ca::new("milagro install test CA");
    let first = Installed::new();
    let ca_file = ca.write(&first.dir().join("ca.pem"));
    let https = |node: &Installed, path: &str| {
        let url = format!("https://127.0.0.1:{}{path}", node.port);
        request(agent(ca.pem().as_bytes()).get(&url), None)
    };
    let with_tls = |node: &Installed, name: &str, serial: u64| {
        let (cert, key) = ca.leaf(serial, 2030).write(node.dir(), name);
        tls_manifest(
            node.dir(),
            name,
            &format!("tls_cert = {cert:?}\ntls_key = {key:?}\ntls_ca = {ca_file:?}\n"),
        )
    };

    let out = first.install_ok(&with_tls(&first, "first", 1), &["--start"]);
    let (status, body) = https(&first, "/v1/identity");
    assert_eq!(status, 200, "{body}\n{out}");
    let first_id = json(&body);
    assert!(out.contains(first_id["id"].as_str().unwrap()), "{out}");
    assert!(
        first_id["endpoints"]["http"][0]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{first_id}"
    );
    let (status, body) = first.get("/v1/status");
    assert_eq!(status, 0, "plain HTTP answered: {body}");

    let base = format!("https://127.0.0.1:{}", first.port);
    let second = Installed::new();
    second.install_ok(
        &with_tls(&second, "second", 2),
        &["--start", "--bootstrap", &base],
    );
    let host_toml =
        std::fs::read_to_string(second.prefix.join("etc/milagro/host.toml")).expect("host.toml");
    let peer_id = first_id["endpoints"]["peer_id"].as_str().unwrap();
    assert!(
        host_toml.contains(&format!("/p2p/{peer_id}")),
        "the bootstrap was not resolved to the first node's peer:\n{host_toml}"
    );
    assert_eq!(https(&second, "/v1/status").0, 200);

    let third = Installed::new();
    let plain = tls_manifest(third.dir(), "third", "");
    let out = third.install(&plain, &["--bootstrap", &base]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("bootstrap over HTTPS without the CA: {}", stderr.trim());
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("bootstrap peer {base}")) && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    assert!(!third.prefix.join("etc/milagro/host.toml").exists());
}

/// The README's code blocks: the quick start (first block) and the
/// walkthrough (first block under "## Walkthrough").
fn readme_blocks() -> (String, String) {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let block_after = |from: usize| -> String {
        let start = readme[from..].find("```sh\n").expect("a sh block") + from + 6;
        let end = readme[start..].find("```").expect("block end") + start;
        readme[start..end].to_string()
    };
    let quick = block_after(0);
    let walk = readme
        .find("## Walkthrough")
        .expect("a Walkthrough section");
    (quick, block_after(walk))
}

/// The first `sh` block of the README after the heading `heading`.
fn readme_block_after(heading: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let from = readme.find(heading).expect("the heading");
    let start = readme[from..].find("```sh\n").expect("a sh block") + from + 6;
    let end = readme[start..].find("```").expect("block end") + start;
    readme[start..end].to_string()
}

/// Copies the checkout's files (tracked and new, not ignored) into `dest`,
/// as a clean clone would have them.
fn clone_checkout(dest: &Path) {
    let root = workspace_root();
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|out| out.status.success() && !out.stdout.is_empty());
    let Some(out) = listed else {
        // An unpacked source tarball (scripts/verify-release): no git.
        copy_tree(&root, dest);
        return;
    };
    for file in out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let rel = Path::new(std::str::from_utf8(file).unwrap());
        let from = root.join(rel);
        if !from.is_file() {
            continue;
        }
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
}

/// Copies a source tree, leaving out build output and state.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        let path = entry.path();
        if path.is_dir() {
            if ["target", "node_modules", ".git", "quickstart"]
                .iter()
                .any(|skip| name == *skip)
            {
                continue;
            }
            copy_tree(&path, &to.join(&name));
        } else if path.is_file() {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Acceptance 1: the README's first command, run as written in a copy of
/// the checkout, brings up a node whose status lists its plugins, and the
/// README's walkthrough (order -> redeem -> key) succeeds on it.
#[test]
fn readme_quick_start_and_walkthrough_work_as_written() {
    let (quick, walkthrough) = readme_blocks();
    let first = quick
        .lines()
        .next()
        .and_then(|l| l.split('#').next())
        .map(str::trim)
        .expect("a first command")
        .to_string();
    assert_eq!(
        first, "scripts/quickstart",
        "the README opens with the quick start"
    );
    let clone = tempfile::Builder::new()
        .prefix("milagro-readme-")
        .tempdir()
        .unwrap();
    clone_checkout(clone.path());
    let node = QuickstartNode(clone.path().join("quickstart"));
    let run = |script: &str| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(clone.path())
            .env("MILAGRO_INSTALL_ARTIFACTS", artefacts())
            .output()
            .expect("bash")
    };
    let out = run(&first);
    assert!(
        out.status.success(),
        "`{first}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = request(ureq::get("http://127.0.0.1:7070/v1/status"), None);
    assert_eq!(status.0, 200);
    let plugins = json(&status.1)["plugins"].clone();
    for p in QUICKSTART_PLUGINS {
        assert!(
            plugins.as_array().unwrap().iter().any(|v| v == p),
            "{plugins}"
        );
    }
    let out = run(&walkthrough);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed:\n{stdout}{}\nnode log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(node.0.join("var/log/milagro/milagro.log")).unwrap_or_default()
    );
    let wallet = json(&std::fs::read_to_string(clone.path().join("wallet.json")).unwrap());
    assert!(wallet["secret_key"].is_string(), "{wallet}");
    // The D-TA walkthrough, on the same node.
    let dta = readme_block_after("## Walkthrough: M-Pin");
    let out = run(&dta);
    assert!(
        out.status.success(),
        "D-TA walkthrough failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = json(&std::fs::read_to_string(clone.path().join("secrets.json")).unwrap());
    assert_eq!(
        secrets["secrets"].as_array().map(Vec::len),
        Some(2),
        "{secrets}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("logged in as alice@example.org"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Kills the quick-start node (by its pid file) when dropped.
struct QuickstartNode(PathBuf);

impl Drop for QuickstartNode {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("run/milagro.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

/// The Dockerfile builds every installable plugin of the workspace, and a
/// container starts with the installer invocation these tests use
/// (`--artifacts`, nothing built at run time), then `milagro serve`.
#[test]
fn dockerfile_builds_every_plugin_and_starts_with_the_installer() {
    let root = workspace_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let build = dockerfile
        .split("RUN cargo build --release --locked")
        .nth(1)
        .and_then(|rest| rest.split("&&").next())
        .expect("the build step")
        .to_string();
    for entry in std::fs::read_dir(root.join("plugins")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        if !manifest.contains("cdylib") {
            continue; // a library shared by plugins, not a plugin
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            build.contains(&format!("-p milagro-plugin-{name}")),
            "the Dockerfile does not build plugin {name}"
        );
    }
    assert!(build.contains("-p milagro-install") && build.contains("-p milagro "));
    assert!(
        dockerfile.contains("milagro-install --manifest /usr/share/milagro/manifests/${MILAGRO_MANIFEST}.toml --prefix /opt/milagro --artifacts /usr/lib/milagro/artifacts")
            && dockerfile.contains("exec /opt/milagro/bin/milagro serve --config /opt/milagro/etc/milagro/host.toml"),
        "the container's start is the installer with --artifacts, then milagro serve"
    );
    let compose = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    for service in ["principal:", "fiduciary-1:", "fiduciary-2:", "beneficiary:"] {
        assert!(
            compose.contains(&format!("\n  {service}")),
            "compose.yaml lacks {service}"
        );
    }
}
