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

//! The `mpin` authentication plugin end to end (issue 16): three D-TA
//! processes, an enrolment node that gets a user's client secret from them,
//! and an authentication node running `mpin` (in the D-TAs' server_allow)
//! that logs the user in with 2-pass M-Pin. Real `milagro` processes with
//! embedded IPFS nodes on 127.0.0.1.
//!
//! Clients: milagro-mpin's client module (in this test), the `milagro mpin`
//! commands, and tests/mpin_client.py (py_ecc, no code shared).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use milagro_mpin::{G1Affine, Scalar, client, g1_to_hex, scalar_from_be_hex};
use milagro_tests::{Node, NodeConfig, PluginEntry, artifact, json, milagro, plugin_library};
use serde_json::{Value, json as j};

const ID: &str = "alice@example.org";
const PIN: u32 = 1234;
const WRONG: u32 = 1235;
/// The mpin plugin's wait for each D-TA (short: one test waits it out).
const MPIN_REPLY_TIMEOUT_MS: u64 = 3_000;
const SESSION_TTL_MS: u64 = 4_000;

fn ipfs_section(bootstrap: &[String]) -> String {
    format!("[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n")
}

fn peers(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().flat_map(|n| n.ipfs_addresses()).collect()
}

fn dta_node(
    name: &str,
    bootstrap: &[String],
    client_allow: &[String],
    server_allow: &[String],
) -> Node {
    Node::start(
        NodeConfig::new(name).section(&ipfs_section(bootstrap)).plugin(PluginEntry::new(
            "dta",
            &plugin_library("milagro-plugin-dta"),
            &format!(
                "{{ client_allow = {client_allow:?}, server_allow = {server_allow:?}, reply_timeout_ms = 20000 }}"
            ),
        )),
    )
}

/// POST without the operator token.
fn post_public(node: &Node, path: &str, body: &[u8]) -> (u16, String) {
    milagro_tests::request(ureq::post(&node.url(path)), Some(body))
}

/// Pass 1 with milagro-mpin's client for `ID`: `x`, `U` and the answer.
fn pass1(
    node: &Node,
) -> (
    impl std::ops::Deref<Target = Scalar>,
    G1Affine,
    (u16, String),
) {
    let (x, u) = client::pass1(ID.as_bytes()).unwrap();
    let r = post_public(
        node,
        "/v1/mpin/pass1",
        j!({"mpin_id": ID, "u": g1_to_hex(&u)})
            .to_string()
            .as_bytes(),
    );
    (x, u, r)
}

/// The `/pass2` body answering pass 1's `answer` (a 200's JSON): `V` from
/// `x`, the server's `y`, the token made with `PIN` and the PIN `entered`.
fn pass2_body(x: &Scalar, answer: &str, token: &client::Token, entered: u32) -> String {
    let answer = json(answer);
    let y = scalar_from_be_hex(answer["y"].as_str().unwrap()).unwrap();
    let v = client::pass2(x, &y, token, entered, ID.as_bytes());
    j!({"session": answer["session"], "v": g1_to_hex(&v)}).to_string()
}

/// One login with milagro-mpin's client: the token made with `PIN`, the
/// PIN typed `entered`. Returns pass 2's answer (or pass 1's if it failed).
fn login(node: &Node, token: &client::Token, entered: u32) -> (u16, String) {
    let (x, _, r) = pass1(node);
    if r.0 != 200 {
        return r;
    }
    post_public(
        node,
        "/v1/mpin/pass2",
        pass2_body(&x, &r.1, token, entered).as_bytes(),
    )
}

/// The same login with tests/mpin_client.py.
fn python_login(node: &Node, client_secret: &str, entered: u32) -> (u16, Value) {
    let python = std::env::var("MILAGRO_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = milagro_tests::workspace_root().join("tests/mpin_client.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "--url",
            &node.url(""),
            "--mpin-id",
            ID,
            "--client-secret",
            client_secret,
        ])
        .args([
            "--pin",
            &PIN.to_string(),
            "--entered-pin",
            &entered.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "mpin_client.py failed (scripts/test installs py_ecc): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(String::from_utf8_lossy(&out.stdout).trim());
    (v["status"].as_u64().unwrap() as u16, v["body"].clone())
}

/// `milagro mpin <args>`, the PIN on standard input.
fn cli(args: &[&str], pin: u32) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(artifact("milagro"))
        .arg("mpin")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run milagro mpin");
    writeln!(child.stdin.take().unwrap(), "{pin}").unwrap();
    child.wait_with_output().unwrap()
}

fn cli_login(node: &Node, token_file: &Path, entered: u32) -> std::process::Output {
    cli(
        &[
            "login",
            "--json",
            "--url",
            &node.url(""),
            "--mpin-id",
            ID,
            "--device-token",
            token_file.to_str().unwrap(),
        ],
        entered,
    )
}

fn code(r: &(u16, String)) -> String {
    json(&r.1)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_user_enrolled_through_three_dtas_logs_in_with_a_pin() {
    // The enrolment node: a D-TA requester (its own D-TA role unused).
    let enrol = dta_node("enrol", &[], &[], &[]);
    // The authentication node's identity first: the D-TAs' server_allow names it.
    let auth_config = |bootstrap: &[String], authorities: &[String], port: Option<u16>| {
        let mut c = NodeConfig::new("auth").section(&ipfs_section(bootstrap));
        if let Some(port) = port {
            c.port = port;
        }
        if !authorities.is_empty() {
            c = c.plugin(PluginEntry::new(
                "mpin",
                &plugin_library("milagro-plugin-mpin"),
                &format!(
                    "{{ authorities = {authorities:?}, session_ttl_ms = {SESSION_TTL_MS}, reply_timeout_ms = {MPIN_REPLY_TIMEOUT_MS} }}"
                ),
            ));
        }
        c
    };
    let first = auth_config(&[], &[], None);
    let dir = first.write();
    let init = milagro(dir.path(), &["init"], &[]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let auth_id = String::from_utf8_lossy(&init.stdout).trim().to_string();

    let (eid, aid) = (vec![enrol.id()], vec![auth_id.clone()]);
    let d1 = dta_node("d1", &peers(&[&enrol]), &eid, &aid);
    let d2 = dta_node("d2", &peers(&[&enrol, &d1]), &eid, &aid);
    let d3 = dta_node("d3", &peers(&[&enrol, &d1, &d2]), &eid, &aid);
    let dtas = vec![d1.id(), d2.id(), d3.id()];

    // Enrolment: the user's client secret from the three D-TAs.
    let r = enrol.call(
        "POST",
        "/v1/dta/secrets",
        Some(
            j!({"kind": "client", "mpin_id": ID, "authorities": dtas})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.0, 200, "{}\n{}", r.1, enrol.log());
    let client_secret = json(&r.1)["secret"].as_str().unwrap().to_string();

    // The device token, made by `milagro mpin token` (PIN on stdin).
    let out = cli(
        &["token", "--client-secret", &client_secret, "--mpin-id", ID],
        PIN,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_hex = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let token = client::Token::from_hex(&token_hex).unwrap();
    assert_eq!(
        token,
        client::Token::from_client_secret(
            &milagro_mpin::g1_from_hex(&client_secret).unwrap(),
            ID.as_bytes(),
            PIN
        )
    );
    let token_file = dir.path().join("alice.token");
    std::fs::write(&token_file, &token_hex).unwrap();

    // The authentication node, now with mpin naming the D-TAs.
    let final_config = auth_config(&peers(&[&enrol, &d1, &d2, &d3]), &dtas, Some(first.port));
    std::fs::copy(
        final_config.write().path().join("host.toml"),
        dir.path().join("host.toml"),
    )
    .unwrap();
    let mut auth = Node::start_in(dir, &final_config);
    assert_eq!(auth.id(), auth_id);

    // 0. Without S (one D-TA does not answer), logins answer 503 and count nothing.
    d3.pause();
    let started = Instant::now();
    let r = login(&auth, &token, PIN);
    assert_eq!(r.0, 503, "{}", r.1);
    println!("pass1 without S: 503 after {:?}", started.elapsed());
    let r = post_public(
        &auth,
        "/v1/mpin/pass2",
        j!({"session": "00".repeat(16), "v": g1_to_hex(&client::pass1(b"x").unwrap().1)})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.0, 503, "{}", r.1);
    let status = json(&auth.get_auth("/v1/mpin/status").1);
    assert_eq!(status["ready"], false, "{status}");
    assert!(
        status["last_error"].as_str().unwrap().contains(&dtas[2]),
        "{status}"
    );
    d3.resume();
    std::thread::sleep(Duration::from_millis(2_100)); // the plugin's retry pause
    let started = Instant::now();
    let r = auth.call("POST", "/v1/mpin/server-secret", None);
    assert_eq!(r.0, 200, "{}\n{}", r.1, auth.log());
    println!("server secret from 3 D-TAs in {:?}", started.elapsed());
    assert_eq!(json(&r.1)["envelope_cids"].as_array().unwrap().len(), 6);
    // The replies are taken by the plugin's wait: the plugin declares the
    // kind it awaits, so no reply is recorded as unprocessed.
    assert!(
        !auth.log().contains("no plugin consumes kind dta/share"),
        "{}",
        auth.log()
    );

    // 1. The right PIN logs in; a wrong one is refused.
    let started = Instant::now();
    let r = login(&auth, &token, PIN);
    assert_eq!(r.0, 200, "{}\n{}", r.1, auth.log());
    println!("login (pass1 + pass2) in {:?}", started.elapsed());
    assert_eq!(json(&r.1), j!({"authenticated": true, "mpin_id": ID}));
    let refused = cli_login(&auth, &token_file, WRONG);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    // A success clears the count.
    let ok = cli_login(&auth, &token_file, PIN);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        json(String::from_utf8_lossy(&ok.stdout).trim())["authenticated"],
        true
    );

    // 2. Three wrong PINs block the ID: 423 even with the right PIN, also
    //    for the independent client, also after a crash.
    for n in 1..=3 {
        let r = login(&auth, &token, WRONG);
        assert_eq!(r.0, 401, "wrong PIN #{n}: {}", r.1);
    }
    let r = login(&auth, &token, PIN);
    assert_eq!(r.0, 423, "{}", r.1);
    assert_eq!(code(&r), "locked");
    assert_eq!(python_login(&auth, &client_secret, PIN).0, 423);
    auth.crash();
    auth.restart();
    // S comes back from the keystore: no D-TA is asked.
    d1.pause();
    let r = login(&auth, &token, PIN);
    assert_eq!(r.0, 423, "the count survives a crash: {}", r.1);

    // 3. The operator unblocks it (the route needs the token).
    let unblock = j!({"mpin_id": ID}).to_string();
    assert_eq!(
        post_public(&auth, "/v1/mpin/unblock", unblock.as_bytes()).0,
        401
    );
    let r = auth.call("POST", "/v1/mpin/unblock", Some(unblock.as_bytes()));
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(json(&r.1)["was_blocked"], true);
    assert_eq!(json(&r.1)["failures"], 3);
    let r = login(&auth, &token, PIN);
    assert_eq!(r.0, 200, "{}", r.1);
    d1.resume();

    // 4. The independent Python client logs in the same way.
    let (status, body) = python_login(&auth, &client_secret, PIN);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, j!({"authenticated": true, "mpin_id": ID}));
    let (status, body) = python_login(&auth, &client_secret, WRONG);
    assert_eq!(status, 401, "{body}");
    assert_eq!(login(&auth, &token, PIN).0, 200);

    // 5. Sessions: single use, expiring, unknown ones refused.
    let (x, _, p1) = pass1(&auth);
    let pass2 = pass2_body(&x, &p1.1, &token, PIN);
    assert_eq!(
        post_public(&auth, "/v1/mpin/pass2", pass2.as_bytes()).0,
        200
    );
    let replay = post_public(&auth, "/v1/mpin/pass2", pass2.as_bytes());
    assert_eq!(replay.0, 401, "a replayed session: {}", replay.1);
    let (x, u, p1) = pass1(&auth);
    assert_eq!(p1.0, 200, "{}", p1.1);
    std::thread::sleep(Duration::from_millis(SESSION_TTL_MS + 200));
    let expired = post_public(
        &auth,
        "/v1/mpin/pass2",
        pass2_body(&x, &p1.1, &token, PIN).as_bytes(),
    );
    assert_eq!(expired.0, 401, "an expired session: {}", expired.1);

    // 6. Hostile inputs: 400 for every bad encoding, nothing counted.
    let g1 = g1_to_hex(&u);
    let identity = format!("c0{}", "00".repeat(47));
    let not_on_curve = format!("8{}", "1".repeat(95));
    let huge = "a".repeat(5_000);
    let pass1_cases = [
        j!({"mpin_id": ID, "u": "zz"}).to_string(),
        j!({"mpin_id": ID, "u": &g1[..94]}).to_string(),
        j!({"mpin_id": ID, "u": format!("{g1}00")}).to_string(),
        j!({"mpin_id": ID, "u": identity}).to_string(),
        j!({"mpin_id": ID, "u": not_on_curve}).to_string(),
        j!({"mpin_id": huge, "u": g1}).to_string(),
        j!({"mpin_id": "", "u": g1}).to_string(),
        j!({"mpin_id": ID}).to_string(),
        j!({"mpin_id": ID, "u": g1, "extra": 1}).to_string(),
        j!({"mpin_id": 7, "u": g1}).to_string(),
        "{not json".to_string(),
        String::new(),
    ];
    for body in &pass1_cases {
        let r = post_public(&auth, "/v1/mpin/pass1", body.as_bytes());
        assert_eq!(r.0, 400, "pass1 {body:.200}: {}", r.1);
        assert_eq!(code(&r), "bad_request", "{}", r.1);
    }
    let pass2_cases = [
        j!({"session": "zz", "v": g1}).to_string(),
        j!({"session": "00".repeat(15), "v": g1}).to_string(),
        j!({"session": "00".repeat(16), "v": identity}).to_string(),
        j!({"session": "00".repeat(16), "v": "0".repeat(96)}).to_string(),
        j!({"session": "00".repeat(16)}).to_string(),
        "[]".to_string(),
    ];
    for body in &pass2_cases {
        let r = post_public(&auth, "/v1/mpin/pass2", body.as_bytes());
        assert_eq!(r.0, 400, "pass2 {body}: {}", r.1);
    }
    let unknown = post_public(
        &auth,
        "/v1/mpin/pass2",
        j!({"session": "ab".repeat(16), "v": g1})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(unknown.0, 401, "an unknown session: {}", unknown.1);
    // The host's body limit applies to public routes: refused from the
    // declared length, before the body is sent.
    let too_big = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", auth.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "POST /v1/mpin/pass1 HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            2 * 1024 * 1024
        )
        .unwrap();
        let mut answer = [0u8; 64];
        let n = stream.read(&mut answer).unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    assert!(too_big.starts_with("HTTP/1.1 413"), "{too_big}");
    // None of that counted against the ID.
    assert_eq!(login(&auth, &token, PIN).0, 200);
    let r = auth.call("POST", "/v1/mpin/unblock", Some(unblock.as_bytes()));
    assert_eq!(json(&r.1)["failures"], 0, "{}", r.1);

    // 7. Access modes: pass1 and pass2 are the only plugin routes open to
    //    anyone; every route marked operator refuses a request without the
    //    token, every route marked public takes one.
    check_access_modes(&auth);

    // 8. A flood of pass1 from one address is rate-limited (the defaults:
    //    30 at once, 10 per second).
    let body = j!({"mpin_id": "flood", "u": g1}).to_string();
    let started = Instant::now();
    let mut limited = 0;
    let mut retry_after = None;
    for _ in 0..200 {
        match ureq::post(&auth.url("/v1/mpin/pass1")).send_bytes(body.as_bytes()) {
            Ok(_) => {}
            Err(ureq::Error::Status(429, resp)) => {
                limited += 1;
                retry_after = resp.header("retry-after").map(str::to_string);
            }
            Err(ureq::Error::Status(code, resp)) => {
                panic!("{code}: {}", resp.into_string().unwrap_or_default())
            }
            Err(e) => panic!("{e}"),
        }
    }
    let elapsed = started.elapsed();
    println!("pass1 flood: 200 requests in {elapsed:?}, {limited} answered 429");
    let allowed = 200 - limited;
    assert!(
        (allowed as f64) <= 30.0 + 10.0 * elapsed.as_secs_f64() + 1.0,
        "{allowed} passed in {elapsed:?}"
    );
    assert!(limited >= 100, "{limited}");
    let wait: u64 = retry_after.expect("Retry-After on a 429").parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // The operator's routes are not limited, and the counter shows the refusals.
    assert_eq!(auth.get_auth("/v1/mpin/status").0, 200);
    let metrics = auth.get("/metrics").1;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("milagro_rate_limited_total{") && l.contains("/v1/mpin/pass1"))
        .unwrap_or_else(|| panic!("no rate-limit counter:\n{metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(counted as usize, limited, "{line}");
    // After Retry-After, the address gets through again.
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(login(&auth, &token, PIN).0, 200);
}

/// Walks /openapi.json and checks each operation's access mode against a
/// request without the token.
fn check_access_modes(node: &Node) {
    let text = node.get_auth("/openapi.json").1;
    milagro_tests::assert_valid_openapi(tempfile::tempdir().unwrap().path(), &text);
    let doc = json(&text);
    let mut public_plugin_ops = Vec::new();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            walked += 1;
            let access = op["x-milagro-access"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no x-milagro-access"));
            let url_path = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
                    } else {
                        seg
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let req = ureq::request(&method.to_uppercase(), &node.url(&url_path));
            let (status, body) = if method == "get" {
                milagro_tests::request(req, None)
            } else {
                milagro_tests::request(req, Some(b"{}"))
            };
            match access {
                "operator" => {
                    assert_eq!(status, 401, "{method} {path} without a token: {body}");
                    assert_eq!(op["security"], j!([{"bearer": []}]), "{method} {path}");
                }
                "public" => {
                    assert_ne!(status, 401, "{method} {path} is public: {body}");
                    assert_eq!(op["security"], j!([]), "{method} {path}");
                    if path.starts_with("/v1/mpin") {
                        public_plugin_ops.push(format!("{method} {path}"));
                    }
                }
                other => panic!("{method} {path}: access {other:?}"),
            }
        }
    }
    public_plugin_ops.sort();
    assert_eq!(
        public_plugin_ops,
        ["post /v1/mpin/pass1", "post /v1/mpin/pass2"]
    );
    assert!(walked >= 13, "{walked} operations");
    println!("access modes: {walked} operations checked without a token");
}
