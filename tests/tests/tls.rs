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

//! Issue 17, item 1: TLS on the REST API and the HTTP transport, with real
//! node processes and a private CA made in the test (`rcgen`).
//!
//! - Four nodes (principal, two fiduciaries, beneficiary) serve only HTTPS
//!   and deliver to each other's `https://` endpoints (`[transport] mode =
//!   "http"`): a custody order and its redemption complete, a plain HTTP
//!   request gets no HTTP answer, and `milagro_tls_handshake_failed_total`
//!   counts it.
//! - A node whose certificate another CA signed is refused, with the TLS
//!   reason, by the principal's delivery and by the `milagro` CLI.
//! - A renewed certificate is served after SIGHUP by the same process; a
//!   broken one is refused and the old one kept.
//! - Plain HTTP on a non-loopback address without `insecure_plain_http`,
//!   and half or mismatched TLS settings, refuse to start with one line.
//! - With `[http] inbox_client_ca`, only nodes certified by that CA
//!   deliver: a stranger without a client certificate gets 401, a node of
//!   another CA no handshake.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    Node, NodeConfig, PluginEntry, counter,
    craft::{fetch_identity, now_ms, party, processed, publish, sealed, wait_processed},
    custody::{Role, message, node_config, order, order_ok, peers, redeem, wait_complete},
    milagro,
    pki::{Ca, served_certificate},
    plugin_library, request,
    wallet::check_wallets,
};
use serde_json::json as j;

const REPLY_TIMEOUT_MS: u64 = 20_000;
const WAIT: Duration = Duration::from_secs(60);
/// HTTP-mode transport to endpoints on this machine (allowed explicitly).
const HTTP_TRANSPORT: &str = "[transport]\nmode = \"http\"\nallowed_endpoints = [\"127.0.0.1\"]\n";

/// A custody node serving HTTPS with a certificate `ca` signs (serial
/// `serial`), trusting `trust` for outbound HTTPS.
fn https_node(
    dir: &Path,
    name: &str,
    roles: &[Role],
    bootstrap: &[&Node],
    ca: &Ca,
    serial: u64,
    trust: &Path,
) -> Node {
    let (cert, key) = ca.leaf(serial, 2030).write(dir, name);
    Node::start(
        node_config(name, roles, &peers(bootstrap), REPLY_TIMEOUT_MS)
            .section(HTTP_TRANSPORT)
            .https(&cert, &key, trust),
    )
}

/// Sends a plain HTTP request to the port; returns what came back (if
/// anything) within 5 s.
fn plain_http(port: u16) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.len() > 64 * 1024 {
            break;
        }
    }
    answer
}

#[test]
fn https_nodes_refuse_plain_http_and_run_custody_over_the_https_transport() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new("milagro test CA");
    let trust = ca.write(&pki.path().join("ca.pem"));
    let dir = pki.path();
    let b = https_node(
        dir,
        "beneficiary",
        &[Role::Beneficiary],
        &[],
        &ca,
        11,
        &trust,
    );
    let f1 = https_node(
        dir,
        "fiduciary-1",
        &[Role::Fiduciary],
        &[&b],
        &ca,
        12,
        &trust,
    );
    let f2 = https_node(
        dir,
        "fiduciary-2",
        &[Role::Fiduciary],
        &[&b, &f1],
        &ca,
        13,
        &trust,
    );
    let p = https_node(
        dir,
        "principal",
        &[Role::Principal],
        &[&b, &f1, &f2],
        &ca,
        14,
        &trust,
    );
    for node in [&b, &f1, &f2, &p] {
        let http = node.identity()["endpoints"]["http"].clone();
        assert_eq!(
            http,
            j!([format!("https://127.0.0.1:{}", node.port)]),
            "the advertised endpoint is https"
        );
    }

    // Plain HTTP gets no HTTP answer (at most a TLS alert), and is counted.
    for node in [&b, &p] {
        let answer = plain_http(node.port);
        assert!(
            !answer.starts_with(b"HTTP/"),
            "plain HTTP was answered: {:?}",
            String::from_utf8_lossy(&answer)
        );
        let (status, error) = milagro_tests::request(
            ureq::get(&format!("http://127.0.0.1:{}/v1/status", node.port)),
            None,
        );
        assert_eq!(status, 0, "a plain client gets no status: {error}");
        eprintln!(
            "plain HTTP to {}: {} byte(s) back, not HTTP; ureq: {error}",
            node.port,
            answer.len()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while counter(node, "milagro_tls_handshake_failed_total", "") < 2 {
            assert!(
                Instant::now() < deadline,
                "handshake failures not counted: {}",
                node.get("/metrics").1
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    // An order and its redemption, every envelope over HTTPS.
    let fids = vec![f1.id(), f2.id()];
    let bid = b.id();
    let started = Instant::now();
    let o = order_ok(&p, &fids, Some(&bid), "btc", "tls-wallet");
    eprintln!("order over HTTPS: {:?}", started.elapsed());
    assert_eq!(o["status"], "ready", "{o}");
    let (status, r) = redeem(&p, "tls-wallet", None);
    assert_eq!(status, 202, "{r}");
    let w = wait_complete(&b, "tls-wallet", WAIT);
    eprintln!("order + redemption over HTTPS: {:?}", started.elapsed());
    assert_eq!(w["address"], o["address"]);
    let mut checked = w.clone();
    checked["legacy_address"] = o["legacy_address"].clone();
    assert_eq!(check_wallets(&[checked]), 1);
    // The envelopes came in through each node's TLS listener.
    for (who, node) in [("f1", &f1), ("f2", &f2), ("b", &b), ("p", &p)] {
        let inbox = counter(
            node,
            "milagro_http_requests_total",
            "route=\"/v1/inbox\",method=\"POST\",status=\"20",
        );
        eprintln!("{who}: {inbox} envelope(s) received over HTTPS");
        assert!(inbox >= 1, "{who} received no envelope over HTTPS");
    }
}

#[test]
fn a_node_whose_certificate_the_ca_did_not_sign_is_refused_with_the_reason() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let ca = Ca::new("milagro test CA");
    let rogue_ca = Ca::new("somebody else's CA");
    let trust = ca.write(&dir.join("ca.pem"));
    let b = https_node(
        dir,
        "beneficiary",
        &[Role::Beneficiary],
        &[],
        &ca,
        21,
        &trust,
    );
    // Its certificate is the rogue CA's; it trusts the real CA.
    let (cert, key) = rogue_ca.leaf(22, 2030).write(dir, "rogue");
    let mut rogue = node_config("rogue", &[Role::Fiduciary], &peers(&[&b]), REPLY_TIMEOUT_MS)
        .section(HTTP_TRANSPORT)
        .https(&cert, &key, &trust);
    // The test's own client trusts both CAs, to reach it at all.
    rogue.client_ca = Some(format!("{}{}", ca.pem(), rogue_ca.pem()).into_bytes());
    let rogue = Node::start(rogue);
    let f = https_node(dir, "fiduciary", &[Role::Fiduciary], &[&b], &ca, 23, &trust);
    let p = https_node(
        dir,
        "principal",
        &[Role::Principal],
        &[&b, &rogue, &f],
        &ca,
        24,
        &trust,
    );
    // The harness reached the rogue node only because it trusts that CA.
    assert!(served_certificate(rogue.port, rogue_ca.pem().as_bytes()).is_ok());
    let e = served_certificate(rogue.port, ca.pem().as_bytes()).unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");

    // The principal's delivery to it fails, naming the certificate.
    let started = Instant::now();
    let (status, v) = order(
        &p,
        &j!({"fiduciaries": [rogue.id()], "beneficiary": b.id(), "coin": "btc", "reference": "to-rogue"}),
    );
    let why = message(&v);
    eprintln!(
        "order to the rogue node: {status} after {:?}: {why}",
        started.elapsed()
    );
    assert!((400..600).contains(&status) && status != 201, "{v}");
    assert!(
        why.contains("invalid peer certificate") && why.contains("UnknownIssuer"),
        "the refusal names the TLS reason: {v}\n{}",
        p.log()
    );
    // The same principal still orders from the fiduciary the CA signed.
    let o = order_ok(&p, &[f.id()], Some(&b.id()), "btc", "to-good");
    assert_eq!(o["status"], "ready", "{o}");

    // The CLI with the rogue node's config trusts the real CA: its own
    // node's certificate is refused with the reason, on one line.
    let out = milagro(rogue.dir.path(), &["identity", "resolve", &b.id()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("UnknownIssuer"), "{stderr}");
    eprintln!("CLI against the rogue certificate: {}", errors[0]);
    // And with the principal's config (its certificate signed by the CA)
    // the CLI reaches its node over HTTPS.
    let out = milagro(p.dir.path(), &["identity", "resolve", &b.id()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&b.id()));
}

/// Polls (bounded) until the node presents the certificate `der`.
fn wait_served(node: &Node, ca: &Ca, der: &[u8]) -> Duration {
    let started = Instant::now();
    loop {
        if served_certificate(node.port, ca.pem().as_bytes()).as_deref() == Ok(der) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was not served within 10 s:\n{}",
            node.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_renewed_certificate_is_served_after_sighup_without_a_restart() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let ca = Ca::new("milagro test CA");
    let trust = ca.write(&dir.join("ca.pem"));
    let old = ca.leaf(31, 2030);
    let (cert, key) = old.write(dir, "node");
    let node = Node::start(NodeConfig::new("renewing").https(&cert, &key, &trust));
    let pid = node.pid();
    assert_eq!(
        served_certificate(node.port, ca.pem().as_bytes()).unwrap(),
        old.der
    );
    // A connection opened before the renewal.
    let before = node.get("/v1/status");
    assert_eq!(before.0, 200, "{}", before.1);

    let new = ca.leaf(32, 2031);
    new.write(dir, "node");
    node.hangup();
    let took = wait_served(&node, &ca, &new.der);
    eprintln!(
        "certificate serial {} (not after 2030-01-01) -> serial {} (not after 2031-01-01) served {took:?} after SIGHUP",
        old.serial, new.serial
    );
    assert_eq!(node.pid(), pid);
    assert_eq!(node.get("/v1/status").0, 200, "the same process answers");
    assert!(node.log().contains("TLS certificate reloaded"));

    // A broken renewal (a key that is not the certificate's) is refused and
    // the last good pair kept.
    let other = ca.leaf(33, 2032);
    std::fs::write(&cert, &other.cert_pem).unwrap();
    std::fs::write(&key, &old.key_pem).unwrap();
    node.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.log().contains("TLS certificate not reloaded") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            node.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        served_certificate(node.port, ca.pem().as_bytes()).unwrap(),
        new.der
    );
    assert_eq!(node.get("/v1/status").0, 200);
}

#[test]
fn plain_http_off_loopback_and_half_tls_settings_refuse_to_start() {
    // 0.0.0.0 without TLS and without the opt-in: one line, nothing written.
    let exited = Node::start_expecting_exit(NodeConfig::new("exposed").listen_on("0.0.0.0"));
    let line = exited.refusal_line();
    eprintln!("plain 0.0.0.0: {line}");
    assert!(
        line.contains("0.0.0.0") && line.contains("insecure_plain_http"),
        "{line}"
    );
    assert!(!exited.wrote_data);

    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new("milagro test CA");
    let (cert, key) = ca.leaf(41, 2030).write(pki.path(), "node");
    let (other_cert, _) = ca.leaf(42, 2030).write(pki.path(), "other");
    // A certificate without its key.
    let exited = Node::start_expecting_exit(
        NodeConfig::new("half").http(&format!("tls_cert = \"{}\"", cert.display())),
    );
    let line = exited.refusal_line();
    assert!(line.contains("tls_cert and tls_key"), "{line}");
    // A key that is not the certificate's.
    let exited = Node::start_expecting_exit(NodeConfig::new("mismatch").http(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        other_cert.display(),
        key.display()
    )));
    let line = exited.refusal_line();
    eprintln!("mismatched pair: {line}");
    assert!(line.contains("do not form a usable pair"), "{line}");
    assert!(!exited.wrote_data);
    // Not a certificate at all.
    std::fs::write(pki.path().join("junk.crt"), b"not a certificate").unwrap();
    let exited = Node::start_expecting_exit(NodeConfig::new("junk").http(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        pki.path().join("junk.crt").display(),
        key.display()
    )));
    let line = exited.refusal_line();
    assert!(line.contains("CERTIFICATE"), "{line}");
}

#[test]
fn the_mpin_client_speaks_https_with_the_given_ca() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let ca = Ca::new("milagro test CA");
    let trust = ca.write(&dir.join("ca.pem"));
    let (cert, key) = ca.leaf(51, 2030).write(dir, "node");
    let node = Node::start(NodeConfig::new("mpin-target").https(&cert, &key, &trust));
    // A device token from a client secret (here the G1 generator).
    let g1 = "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb";
    let out = std::process::Command::new(milagro_tests::artifact("milagro"))
        .args([
            "mpin",
            "token",
            "--client-secret",
            g1,
            "--mpin-id",
            "alice",
            "--pin",
            "1234",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = dir.join("token");
    std::fs::write(&token, &out.stdout).unwrap();
    let login = |ca: Option<&Path>| {
        let mut command = std::process::Command::new(milagro_tests::artifact("milagro"));
        command
            .args([
                "mpin",
                "login",
                "--url",
                &node.url(""),
                "--mpin-id",
                "alice",
                "--pin",
                "1234",
            ])
            .arg("--device-token")
            .arg(&token);
        if let Some(ca) = ca {
            command.arg("--tls-ca").arg(ca);
        }
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Trusting the CA: the TLS handshake succeeds and the node answers (no
    // mpin plugin here: 404 for pass 1).
    let trusted = login(Some(&trust));
    assert!(trusted.contains("pass1: 404"), "{trusted}");
    // Without it (system roots): refused, naming the certificate.
    let untrusted = login(None);
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    eprintln!("mpin login over HTTPS with --tls-ca: {trusted}");
}

/// A probe node serving HTTPS (certificate from `ca`, serial `serial`) on
/// the HTTP transport, trusting `trust`, with extra `[http]` lines.
fn probe_node(
    dir: &Path,
    name: &str,
    bootstrap: &[&Node],
    ca: &Ca,
    serial: u64,
    trust: &Path,
    http: &str,
) -> Node {
    let (cert, key) = ca.leaf(serial, 2030).write(dir, name);
    Node::start(
        NodeConfig::new(name)
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {:?}\n",
                peers(bootstrap)
            ))
            .section(HTTP_TRANSPORT)
            .plugin(PluginEntry::new(
                "probe",
                &plugin_library("milagro-test-probe"),
                "{ label = \"p\", consumes = [\"test/note\"] }",
            ))
            .https(&cert, &key, trust)
            .http(http),
    )
}

/// Item 1, client certificates: with `[http] inbox_client_ca`, only a
/// client whose certificate chains to that CA may POST to the inbox. A
/// node the CA certified delivers (its own certificate presented as the
/// client's); a stranger without a certificate gets 401 and nothing is
/// stored; a node certified by another CA fails the handshake.
#[test]
fn an_inbox_with_client_ca_takes_deliveries_only_from_certified_nodes() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let ca = Ca::new("milagro consortium CA");
    let trust = ca.write(&dir.join("ca.pem"));
    let client_ca = format!("inbox_client_ca = \"{}\"", trust.display());
    let victim = probe_node(dir, "victim", &[], &ca, 41, &trust, &client_ca);
    let member = probe_node(dir, "member", &[&victim], &ca, 42, &trust, "");
    let other_ca = Ca::new("another CA");
    // The rogue trusts both CAs (it reaches the victim; the test reaches it).
    let both = dir.join("both.pem");
    std::fs::write(&both, format!("{}{}", ca.pem(), other_ca.pem())).unwrap();
    let rogue = probe_node(dir, "rogue", &[&victim], &other_ca, 43, &both, "");

    let send = |from: &Node, body: &str| {
        let request = j!({"kind": "test/note", "recipients": [victim.id()], "body": body});
        from.call(
            "POST",
            "/v1/probe/send",
            Some(request.to_string().as_bytes()),
        )
    };
    let r = send(&member, "from a certified node");
    assert_eq!(r.0, 200, "{}\n{}", r.1, member.log());
    wait_processed(&victim, 1);

    // A stranger with a genuine envelope but no client certificate.
    let stranger = party("stranger");
    let victim_doc = fetch_identity(&victim, &victim.id());
    publish(&victim, stranger.doc.block().bytes());
    let bytes = sealed(&stranger, &[&victim_doc], "from a stranger", now_ms());
    let r = request(victim.agent().post(&victim.url("/v1/inbox")), Some(&bytes));
    assert_eq!(r.0, 401, "{}", r.1);
    assert!(r.1.contains("inbox_client_ca"), "{}", r.1);
    let refused = counter(
        &victim,
        "milagro_inbox_refused_total",
        "reason=\"client_certificate\"",
    );

    // A node whose certificate another CA signed: no handshake.
    let handshakes = counter(&victim, "milagro_tls_handshake_failed_total", "");
    let r = send(&rogue, "from another CA");
    assert_ne!(r.0, 200, "{}", r.1);
    let failed = counter(&victim, "milagro_tls_handshake_failed_total", "") - handshakes;

    // Other routes do not need a certificate.
    assert_eq!(victim.get("/v1/status").0, 200);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(processed(&victim), 1, "only the certified node's envelope");
    println!(
        "inbox with a client CA: certified node delivered; stranger refused 401 \
         (milagro_inbox_refused_total{{reason=\"client_certificate\"}} {refused}); \
         another CA's node: {failed} failed handshakes, send answered {}",
        r.0
    );
    assert_eq!(refused, 1);
    assert!(failed >= 1);
}
