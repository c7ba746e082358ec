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

//! The `milagro` CLI as an operator uses it (docs/cli.md): custody, the
//! D-TA, M-Pin and the generic `api` only through the CLI against nodes
//! installed by `milagro-install`, in the human and the `--json` form; and
//! every failure one line with its documented exit code.

use std::{
    io::Write as _,
    net::TcpListener,
    path::Path,
    process::{Command, Output, Stdio},
};

use milagro_tests::{
    Node, NodeConfig, artifact,
    custody::{Role, entry},
    free_port,
    installed::{Installed, QUICKSTART_PLUGINS},
    json,
    wallet::{check_taproot, check_wallets},
    workspace_root,
};
use serde_json::Value;

/// `milagro ARGS` (command-line words, split on spaces), with `stdin`;
/// (exit code, stdout, stderr).
fn milagro(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(artifact("milagro"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MILAGRO_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run milagro");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out: Output = child.wait_with_output().expect("milagro output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `milagro` with `line` split on spaces plus `extra`; stdout, asserting
/// success.
fn ok(line: &str, extra: &[&str]) -> String {
    let args: Vec<&str> = line
        .split_whitespace()
        .chain(extra.iter().copied())
        .collect();
    let (code, stdout, stderr) = milagro(&args, "");
    assert_eq!(code, 0, "milagro {args:?} failed:\n{stderr}");
    stdout
}

/// The same with `--json` first; the output parsed.
fn ok_json(line: &str, extra: &[&str]) -> Value {
    json(&ok(&format!("--json {line}"), extra))
}

/// `milagro` with `line` and `extra` expected to fail with exit `code` and
/// exactly one error line containing `text`; that line.
fn fails(line: &str, extra: &[&str], code: i32, text: &str) -> String {
    let args: Vec<&str> = line
        .split_whitespace()
        .chain(extra.iter().copied())
        .collect();
    let (got, stdout, stderr) = milagro(&args, "");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.starts_with("error:"))
        .collect();
    assert_eq!(
        got, code,
        "milagro {args:?}: exit {got}, stdout {stdout}\n{stderr}"
    );
    assert_eq!(
        errors.len(),
        1,
        "milagro {args:?}: one error line:\n{stderr}"
    );
    assert!(
        errors[0].contains(text),
        "milagro {args:?}: {:?} lacks {text:?}",
        errors[0]
    );
    errors[0].to_string()
}

/// Acceptance 1: an all-roles node (the quick-start manifest) and a second
/// fiduciary, installed; order, redeem and the wallet key (checked by the
/// independent checker), a D-TA client secret logged in with through the
/// mpin plugin, and `api GET /v1/status`: all through the CLI.
#[test]
fn the_cli_drives_custody_the_dta_and_mpin_on_installed_nodes() {
    let manifests = workspace_root().join("manifests");
    let a = Installed::new();
    a.install_ok(&manifests.join("quickstart.toml"), &["--start"]);
    let b = Installed::new();
    b.install_ok(
        &manifests.join("fiduciary.toml"),
        &["--start", "--name", "fid-b", "--bootstrap", &a.url("")],
    );
    let config_a = a.config();
    let a_ = ["--config", config_a.to_str().unwrap()];
    let token_b = b.dir().join("token-b");
    std::fs::write(&token_b, b.token()).unwrap();
    let b_url = b.url("");
    let b_ = ["--url", &b_url, "--token-file", token_b.to_str().unwrap()];

    // The installer put the man pages and completions beside the binary.
    for file in [
        "share/man/man1/milagro.1",
        "share/man/man1/milagro-custody-order.1",
        "share/bash-completion/completions/milagro",
        "share/zsh/site-functions/_milagro",
    ] {
        assert!(a.prefix.join(file).is_file(), "{file} installed");
    }

    // The node itself.
    let status = ok("status", &a_);
    assert!(
        status.contains("quickstart") && status.contains(&a.id()),
        "{status}"
    );
    assert_eq!(ok_json("status", &a_)["id"], a.id());
    let plugins = ok("plugins", &a_);
    for p in QUICKSTART_PLUGINS {
        assert!(plugins.contains(p), "{plugins}");
    }
    let api = ok("api GET /v1/status", &a_);
    assert_eq!(json(&api)["node"], "quickstart", "{api}");
    assert_eq!(ok_json("api GET /v1/status", &a_)["node"], "quickstart");

    // Custody: order from this node and B, for this node.
    let order = ok(
        &format!(
            "custody order --fiduciary self --fiduciary {} --coin btc --reference cli-1",
            b.id()
        ),
        &a_,
    );
    assert!(
        order.contains("cli-1") && order.contains("ready"),
        "{order}"
    );
    let shown = ok_json("custody show cli-1", &a_);
    assert_eq!(shown["status"], "ready", "{shown}");
    let address = shown["address"].as_str().expect("an address").to_string();
    assert!(order.contains(&address), "{order}");
    assert!(ok("custody list", &a_).contains("cli-1"));
    let listed = ok_json("custody list", &a_);
    assert!(
        listed["orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["reference"] == "cli-1"),
        "{listed}"
    );
    // An eth order in the JSON form, left unredeemed.
    let eth = ok_json(
        "custody order --fiduciary self --coin eth --reference cli-eth",
        &a_,
    );
    assert_eq!(eth["coin"], "eth", "{eth}");
    // A Taproot wallet of this node alone (its own beneficiary, with its
    // published key): it signs, checked independently.
    let taproot = ok_json(
        "custody order --fiduciary self --coin btc-taproot --reference cli-tr",
        &a_,
    );
    let tr_address = taproot["address"].as_str().unwrap().to_string();
    assert!(tr_address.starts_with("bc1p"), "{taproot}");
    // Announced to the beneficiary (not complete: it is not redeemed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while milagro(&["beneficiary", "wallet", "cli-tr", a_[0], a_[1]], "").0 != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "cli-tr never announced"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let digest = "ab".repeat(32);
    let human = ok(&format!("beneficiary sign cli-tr --message {digest}"), &a_);
    assert!(
        human.contains("signature") && human.contains(&tr_address),
        "{human}"
    );
    let signed = ok_json(&format!("beneficiary sign cli-tr --message {digest}"), &a_);
    assert_eq!(
        check_taproot(&tr_address, std::slice::from_ref(&signed), None),
        1
    );
    fails(
        "beneficiary sign cli-tr --message abc",
        &a_,
        2,
        "message must be 32 bytes",
    );
    assert!(ok("fiduciary signatures", &a_).contains("cli-tr"));
    // The fiduciary B, by URL, holds a share of cli-1.
    assert!(ok("fiduciary shares", &b_).contains("cli-1"));
    assert_eq!(
        ok_json("fiduciary shares", &b_)["shares"][0]["reference"],
        "cli-1"
    );

    // Refresh the shares, then reshare to B alone: same address each time.
    let refreshed = ok("custody refresh cli-1", &a_);
    assert!(refreshed.contains(&address), "{refreshed}");
    assert_eq!(ok_json("custody show cli-1", &a_)["epoch"], 1);
    let reshared = ok_json(
        &format!("custody reshare cli-1 --fiduciary {}", b.id()),
        &a_,
    );
    assert_eq!(reshared["epoch"], 2, "{reshared}");
    assert_eq!(reshared["address"], address.as_str(), "{reshared}");
    assert_eq!(
        reshared["sharing"]["fiduciaries"],
        serde_json::json!([b.id()])
    );

    // Redeem; the beneficiary waits for the key.
    let redeemed = ok("custody redeem cli-1", &a_);
    assert!(redeemed.contains("cli-1"), "{redeemed}");
    let human = ok("beneficiary wallet cli-1 --wait 60", &a_);
    assert!(
        human.contains("complete") && human.contains("--show-secret"),
        "{human}"
    );
    let wallet = ok_json("beneficiary wallet cli-1", &a_);
    let secret = wallet["secret_key"]
        .as_str()
        .expect("the key in --json")
        .to_string();
    assert!(
        !human.contains(&secret),
        "the key only with --show-secret:\n{human}"
    );
    let shown = ok("beneficiary wallet cli-1 --show-secret", &a_);
    assert!(shown.contains(&secret), "{shown}");
    assert!(shown.contains(wallet["wif"].as_str().unwrap()), "{shown}");
    assert_eq!(check_wallets(std::slice::from_ref(&wallet)), 1);
    assert!(ok("beneficiary list", &a_).contains(&address));
    assert!(ok_json("beneficiary refusals", &a_)["refusals"].is_array());

    // The D-TA: a client secret for two users from this node's D-TA.
    let human = ok(
        "dta secret --kind client --mpin-id bob@example.org --authority self",
        &a_,
    );
    assert!(human.contains("bob@example.org"), "{human}");
    let secrets = ok_json(
        "dta secret --kind client --mpin-id alice@example.org --mpin-id carol@example.org --authority self",
        &a_,
    );
    assert_eq!(
        secrets["secrets"].as_array().map(Vec::len),
        Some(2),
        "{secrets}"
    );
    let alice = secrets["secrets"][0]["secret"].as_str().unwrap();
    assert!(ok("dta public-key", &a_).contains(&a.id()));
    assert!(ok("dta issuances", &a_).contains("alice@example.org"));
    // ... and the user logs in with it (PIN on standard input).
    let (code, token, stderr) = milagro(
        &[
            "mpin",
            "token",
            "--client-secret",
            alice,
            "--mpin-id",
            "alice@example.org",
        ],
        "4321\n",
    );
    assert_eq!(code, 0, "{stderr}");
    let token_file = a.dir().join("alice.token");
    std::fs::write(&token_file, token).unwrap();
    let login = |pin: &str| {
        let mut args = vec![
            "mpin",
            "login",
            "--mpin-id",
            "alice@example.org",
            "--device-token",
        ];
        args.push(token_file.to_str().unwrap());
        args.extend(a_);
        milagro(&args, pin)
    };
    let (code, stdout, stderr) = login("4321\n");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("logged in as alice@example.org"),
        "{stdout}"
    );
    let (code, _, stderr) = login("1111\n");
    assert_eq!(code, 6, "a wrong PIN is refused: {stderr}");
    assert!(stderr.contains("login refused"), "{stderr}");
    assert_eq!(ok_json("mpin status", &a_)["ready"], true);
    let unblocked = ok_json("mpin unblock alice@example.org", &a_);
    assert_eq!(unblocked["failures"], 1, "{unblocked}");
}

/// Accepts connections and never answers: a node that hangs.
fn tarpit() -> (TcpListener, u16) {
    let port = free_port();
    (
        TcpListener::bind(("127.0.0.1", port)).expect("bind the tarpit"),
        port,
    )
}

/// Acceptance 2: node down, wrong token, unknown reference, bad node ID,
/// timeout, and bad usage: one line each, with the exit code docs/cli.md
/// gives; completions and man pages come from the same definitions.
#[test]
fn cli_failures_are_one_line_with_documented_exit_codes() {
    let node = Node::start(
        NodeConfig::new("errors")
            .plugin(entry(Role::Principal, "{ reply_timeout_ms = 2000 }"))
            .plugin(entry(Role::Beneficiary, "{}")),
    );
    let config = node.dir.path().join("host.toml");
    let c_ = ["--config", config.to_str().unwrap()];
    let url = node.url("");
    let wrong = node.dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let down = format!("http://127.0.0.1:{}", free_port());
    let (_tarpit, tarpit_port) = tarpit();
    let hanging = format!("http://127.0.0.1:{tarpit_port}");

    let lines = [
        fails("status", &["--url", &down], 3, "(is it running?)"),
        fails(
            "custody list",
            &["--url", &url, "--token-file", wrong.to_str().unwrap()],
            4,
            &format!("the node refused the token in {}", wrong.display()),
        ),
        fails(
            "custody list",
            &["--url", &url],
            4,
            "no token was sent: --token-file FILE",
        ),
        fails(
            "custody list --token-file",
            &[wrong.to_str().unwrap(), c_[0], c_[1]],
            4,
            "the node refused the token in",
        ),
        fails("custody show no-such-order", &c_, 5, "404"),
        fails("beneficiary wallet no-such-order", &c_, 5, "404"),
        fails("identity resolve not-a-node-id", &c_, 2, "not-a-node-id"),
        fails(
            "custody order --fiduciary not-a-node-id --coin btc",
            &c_,
            2,
            "not-a-node-id",
        ),
        fails("status --timeout 1", &["--url", &hanging], 7, "within 1 s"),
        fails(
            "beneficiary wallet no-such-order --wait 1",
            &c_,
            7,
            "not complete after 1 s",
        ),
        fails(
            "fiduciary shares",
            &c_,
            5,
            "runs no custody-fiduciary plugin",
        ),
        fails("status", &[], 2, "name the node: --config FILE"),
        fails("status --url ftp://127.0.0.1:1", &[], 2, "expected http://"),
        fails(
            "status",
            &["--config", "/nonexistent/host.toml"],
            2,
            "/nonexistent/host.toml",
        ),
        fails("custody order --coin doge --fiduciary self", &c_, 2, "doge"),
        fails("api GET v1/status", &c_, 2, "absolute path"),
        fails(
            "mpin token --client-secret 00 --mpin-id a --pin 12x",
            &[],
            2,
            "the PIN must be",
        ),
    ];
    println!("milagro refusals:\n{}", lines.join("\n"));

    // A hostile node's text reaches the terminal escaped: no escape
    // sequence, no bidi override from it is printed as is.
    let (hostile, hostile_port) = tarpit();
    let answer = std::thread::spawn(move || {
        use std::io::Read as _;
        let (mut stream, _) = hostile.accept().expect("the CLI connects");
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let body = r#"{"error":{"code":"internal","message":"\u001b[2J\u202egone"}}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let line = fails(
        "status",
        &["--url", &format!("http://127.0.0.1:{hostile_port}")],
        1,
        "500",
    );
    answer.join().unwrap();
    assert!(
        !line.contains('\u{1b}') && !line.contains('\u{202e}'),
        "{line:?}"
    );
    assert!(line.contains("\\u{1b}[2J\\u{202e}gone"), "{line:?}");

    // Completions and man pages.
    assert!(ok("completions bash", &[]).contains("milagro"));
    assert!(ok("completions zsh", &[]).contains("#compdef milagro"));
    assert!(ok("completions fish", &[]).contains("complete -c milagro"));
    assert!(ok("man", &[]).contains(".TH milagro"));
    let man = node.dir.path().join("man");
    ok("man --dir", &[man.to_str().unwrap()]);
    for page in [
        "milagro.1",
        "milagro-custody.1",
        "milagro-custody-order.1",
        "milagro-dta-secret.1",
    ] {
        assert!(
            Path::new(&man.join(page)).is_file(),
            "{page} in {:?}",
            std::fs::read_dir(&man).unwrap().collect::<Vec<_>>()
        );
    }
}

/// A node stand-in on 127.0.0.1 that serves `GET /v1/plugins` (a principal
/// at `/v1/custody`) and answers the first `timeouts` refreshes of order
/// `r1` with the principal's 504, the next with the order; returns its URL
/// and the thread, which ends with the number of refreshes asked.
fn refresh_node(timeouts: usize) -> (String, std::thread::JoinHandle<usize>) {
    use std::io::{BufRead as _, BufReader, Read as _};
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the stand-in");
    let server = std::thread::spawn(move || {
        let mut refreshes = 0;
        // Bounded: a few requests, none waited for past 30 s.
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for _ in 0..8 {
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break Some(stream),
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    Err(_) => break None,
                }
            };
            let Some(stream) = stream else {
                break;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            reader.read_exact(&mut vec![0; length]).unwrap();
            let (status, body) = if line.starts_with("GET /v1/plugins ") {
                (
                    200,
                    r#"[{"plugin":"custody-principal","mount":"/v1/custody"}]"#.to_string(),
                )
            } else if line.starts_with("POST /v1/custody/orders/r1/refresh ") {
                refreshes += 1;
                if refreshes <= timeouts {
                    (
                        504,
                        format!(
                            r#"{{"error":{{"code":"timeout","message":"fiduciaries f{refreshes} did not report a new share within 20000 ms"}}}}"#
                        ),
                    )
                } else {
                    (
                        200,
                        r#"{"reference":"r1","status":"ready","epoch":1,"fiduciaries":[]}"#
                            .to_string(),
                    )
                }
            } else {
                (
                    404,
                    r#"{"error":{"code":"not_found","message":"no such route"}}"#.to_string(),
                )
            };
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            // Done: the order was answered, or the CLI's last attempt.
            if refreshes > timeouts || refreshes == 3 {
                break;
            }
        }
        refreshes
    });
    (format!("http://127.0.0.1:{port}"), server)
}

/// A refresh the principal leaves unfinished (504: a new fiduciary has not
/// reported) is asked again by the CLI, up to three times in all, each
/// retry noted on standard error; the third 504 is the command's error.
#[test]
fn custody_refresh_asks_again_while_the_principal_answers_504() {
    let (url, node) = refresh_node(2);
    let (code, stdout, stderr) =
        milagro(&["--json", "custody", "refresh", "r1", "--url", &url], "");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["epoch"], 1, "{stdout}");
    assert_eq!(node.join().unwrap(), 3);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note:")).collect();
    assert_eq!(notes.len(), 2, "{stderr}");
    assert!(
        notes[0].contains("f1 did not report") && notes[0].ends_with("asking again (2 of 3)"),
        "{stderr}"
    );
    assert!(
        notes[1].contains("f2 did not report") && notes[1].ends_with("asking again (3 of 3)"),
        "{stderr}"
    );

    let (url, node) = refresh_node(3);
    let line = fails(
        "custody refresh r1",
        &["--url", &url],
        7,
        "f3 did not report",
    );
    assert!(line.contains("504"), "{line}");
    assert_eq!(node.join().unwrap(), 3);
}
