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

//! The `hsm-keystore` plugin end to end (issue 7): real `milagro`
//! processes whose keystore is a SoftHSM2 token the test creates in a temp
//! dir (its own `SOFTHSM2_CONF`), inspected with `pkcs11-tool` (OpenSC).
//!
//! Needs Debian's `softhsm2` and `opensc`; `scripts/test` installs them.

use std::{
    path::Path,
    process::Output,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use milagro::keystore::{KeyKind, Keystore, KeystoreConfig, file::FileKeystore};
use milagro_mpin::{client as mpin_client, g1_from_hex, g2_from_hex, server as mpin_server};
use milagro_plugin_api::KeystoreBackend;
use milagro_plugin_hsm_keystore::{Config as HsmConfig, HsmKeystore};
use milagro_proto::{LocalSigner, Signer};
use milagro_tests::{
    Node, NodeConfig, PluginEntry,
    custody::{Role, node_config, order_ok, peers, redeem, wait_complete},
    json, milagro as run_milagro, plugin_library,
    softhsm::{self, SoftHsm, files_under},
    wallet::check_wallets,
};
use serde_json::json as j;

const PIN: &str = "4321-test-pin";
const SO_PIN: &str = "8765-test-so";
const PIN_ENV: &str = "MILAGRO_HSM_PIN";

/// The `hsm-keystore` entry for `token`, labels prefixed `<prefix>/`.
fn hsm_entry(token: &str, prefix: &str, module: &Path) -> PluginEntry {
    PluginEntry::new(
        "hsm-keystore",
        &plugin_library("milagro-plugin-hsm-keystore"),
        &format!(
            "{{ module = {:?}, token_label = {token:?}, pin_env = {PIN_ENV:?}, key_prefix = \"{prefix}/\" }}",
            module.display().to_string()
        ),
    )
}

/// A node whose keystore is `token` of `hsm`, given `pin`.
fn hsm_node(name: &str, hsm: &SoftHsm, token: &str, pin: &str) -> NodeConfig {
    hsm_node_with(name, hsm, token, pin, &softhsm::module())
}

fn hsm_node_with(name: &str, hsm: &SoftHsm, token: &str, pin: &str, module: &Path) -> NodeConfig {
    let (conf_var, conf) = hsm.env();
    NodeConfig::new(name)
        .section("[keystore]\nbackend = \"hsm-keystore\"\n")
        .plugin(hsm_entry(token, name, module))
        .env(&conf_var, &conf)
        .env(PIN_ENV, pin)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `pkcs11-tool --list-objects` output, one entry per object.
fn objects(listing: &str) -> Vec<String> {
    let mut objects: Vec<String> = Vec::new();
    for line in listing.lines() {
        if !line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            objects.push(String::new());
        }
        if let Some(current) = objects.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    objects
}

/// The object of `class` (e.g. "Private Key Object") labelled `label`.
fn object<'a>(objects: &'a [String], class: &str, label: &str) -> &'a str {
    objects
        .iter()
        .find(|o| {
            o.starts_with(class)
                && o.lines().any(|l| {
                    let l = l.trim();
                    l.starts_with("label:")
                        && l.trim_start_matches("label:").trim().trim_matches('\'') == label
                })
        })
        .unwrap_or_else(|| panic!("no {class} labelled {label} in:\n{}", objects.concat()))
}

/// Whether any file under `dir` contains `needle`.
fn found_in(dir: &Path, needle: &[u8]) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            std::fs::read(f)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .map(|f| f.display().to_string())
        .collect()
}

/// Acceptance 1: `milagro init` on an HSM-backed node creates the identity
/// keys in the token (sensitive, never extractable, generated there), and
/// the node's data dir holds no private key material of the node.
#[test]
fn init_creates_the_identity_in_the_token_and_no_private_key_in_the_data_dir() {
    let hsm = SoftHsm::new();
    hsm.init_token("node-a", PIN, SO_PIN);
    let config = hsm_node("a", &hsm, "node-a", PIN).section("[identity]\nbeneficiary = true\n");
    let dir = config.write();
    let out = run_milagro(dir.path(), &["init"], &config.env);
    assert!(out.status.success(), "init failed:\n{}", stderr(&out));
    let node_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(stderr(&out).contains("keystore opened"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(PIN), "the PIN must never be logged");

    // The token: both identity key pairs, private halves sensitive, never
    // extractable and generated on the token ("local"); the AES key that
    // encrypts secrets likewise; secrets as private data objects.
    let listing = hsm.list_objects("node-a", PIN);
    let objects = objects(&listing);
    for label in ["a/node/1/signing", "a/node/1/ecdh"] {
        let private = object(&objects, "Private Key Object", label);
        let access = private
            .lines()
            .find(|l| l.trim().starts_with("Access:"))
            .unwrap_or_else(|| panic!("no Access line:\n{private}"));
        for flag in [
            "sensitive",
            "always sensitive",
            "never extractable",
            "local",
        ] {
            assert!(
                access.contains(flag),
                "{label}: {flag} missing from {access}"
            );
        }
        assert!(private.contains("EC"), "{private}");
        object(&objects, "Public Key Object", label);
    }
    let aes = object(&objects, "Secret Key Object", "a/keystore/aes-256-gcm");
    assert!(
        aes.contains("never extractable") && aes.contains("sensitive"),
        "{aes}"
    );
    for label in ["a/node/1/kem", "a/node/beneficiary"] {
        let data = object(&objects, "Data object", label);
        assert!(data.contains("private"), "{data}");
    }

    // The data dir: no keystore of the host's own, and neither secret the
    // node keeps (read back through the token with the PIN, as an operator
    // could) appears in any file. The EC private keys never left the token
    // at all ("never extractable", "local" above), so they cannot be there.
    let data = dir.path().join("data");
    assert!(!data.join("keystore").exists());
    // SAFETY: set before this process first loads SoftHSM; nextest runs
    // each test in its own process.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hsm.conf()) };
    unsafe { std::env::set_var(PIN_ENV, PIN) };
    let keystore = HsmKeystore::new(HsmConfig {
        module: softhsm::module(),
        token_label: "node-a".into(),
        pin_env: Some(PIN_ENV.into()),
        pin_file: None,
        key_prefix: "a/".into(),
        sessions: 2,
    })
    .unwrap();
    let kem_seed = keystore.get_secret("node/1/kem").unwrap().unwrap();
    let beneficiary = keystore.get_secret("node/beneficiary").unwrap().unwrap();
    assert!(kem_seed.len() >= 32 && beneficiary.len() == 32);
    let show = run_milagro(dir.path(), &["identity", "show"], &config.env);
    assert!(show.status.success(), "{}", stderr(&show));
    let document = json(&String::from_utf8_lossy(&show.stdout));
    assert_eq!(document["id"], node_id);
    let beneficiary_key = LocalSigner::from_bytes(&beneficiary.as_slice().try_into().unwrap())
        .unwrap()
        .public_key();
    assert_eq!(
        document["beneficiary_key"],
        hex::encode(beneficiary_key.to_bytes()),
        "the token holds the beneficiary key the document publishes"
    );
    for (what, secret) in [
        ("ML-KEM seed", &kem_seed[..32]),
        ("beneficiary key", &beneficiary[..]),
    ] {
        let found = found_in(&data, secret);
        assert!(found.is_empty(), "the {what} is in {found:?}");
        let found = found_in(hsm.dir.path(), secret);
        assert!(
            found.is_empty(),
            "the {what} is in the token files {found:?}"
        );
    }
    // What is there: database, API token, and the IPFS repo with its libp2p
    // peer key (a transport identity; it signs and decrypts nothing of
    // Milagro's, and is the Kubo daemon's business in kubo mode).
    let mut names: Vec<String> = files_under(&data)
        .iter()
        .filter(|f| !f.starts_with(data.join("ipfs")))
        .map(|f| f.strip_prefix(&data).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["milagro.redb"], "{names:?}");

    // Serving: the same identity, signed by the token's key; after a
    // restart the keys are found again by label.
    let mut node = Node::start_in(dir, &config);
    assert_eq!(node.id(), node_id);
    node.restart();
    assert_eq!(node.id(), node_id);
    assert_eq!(node.identity()["signing_key"], document["signing_key"]);
    assert!(!node.log().contains(PIN), "the PIN must never be logged");
}

/// Acceptance 4: wrong PIN, missing token, missing module, a token without
/// a needed mechanism: one clear line, and nothing written.
#[test]
fn wrong_pin_missing_token_module_or_mechanism_refuse_to_start_and_write_nothing() {
    let hsm = SoftHsm::new();
    hsm.init_token("node-r", PIN, SO_PIN);
    let cases: Vec<(&str, NodeConfig, Vec<String>)> = vec![
        (
            "wrong PIN",
            hsm_node("r", &hsm, "node-r", "0000-wrong"),
            vec![
                "node-r".into(),
                "refused the PIN".into(),
                format!("${PIN_ENV}"),
                "CKR_PIN_INCORRECT".into(),
            ],
        ),
        (
            "missing token",
            hsm_node("r", &hsm, "no-such-token", PIN),
            vec![
                "no token labelled \"no-such-token\"".into(),
                "\"node-r\"".into(),
            ],
        ),
        (
            "missing module",
            hsm_node_with(
                "r",
                &hsm,
                "node-r",
                PIN,
                Path::new("/nonexistent/libpkcs11.so"),
            ),
            vec!["PKCS#11 module /nonexistent/libpkcs11.so does not exist".into()],
        ),
        (
            "no PIN",
            hsm_node("r", &hsm, "node-r", ""),
            vec![format!("PIN variable {PIN_ENV} is not set")],
        ),
    ];
    for (what, config, expected) in cases {
        let env = config.env.clone();
        // `milagro init` refuses too, before writing anything.
        let dir = config.write();
        let out = run_milagro(dir.path(), &["init"], &env);
        assert!(!out.status.success(), "{what}: init must fail");
        assert!(
            !dir.path().join("data").exists(),
            "{what}: init wrote the data dir"
        );
        let exited = Node::start_expecting_exit(config);
        assert!(!exited.wrote_data, "{what}: nothing may be written");
        let line = exited.refusal_line();
        assert!(
            line.contains("[keystore] backend \"hsm-keystore\""),
            "{what}: {line}"
        );
        for text in &expected {
            assert!(
                line.contains(text.as_str()),
                "{what}: {text:?} not in {line}"
            );
        }
        assert!(!exited.stderr.contains(PIN), "{what}: the PIN was logged");
    }

    // A token whose module offers no ECDH (SoftHSM's slots.mechanisms
    // allowlist; its "-CKM_X" form does not remove anything in 2.6.1).
    let limited = SoftHsm::with_config(
        "slots.mechanisms = CKM_EC_KEY_PAIR_GEN,CKM_ECDSA,CKM_AES_KEY_GEN,CKM_AES_GCM",
    );
    limited.init_token("no-ecdh", PIN, SO_PIN);
    let exited = Node::start_expecting_exit(hsm_node("r", &limited, "no-ecdh", PIN));
    assert!(!exited.wrote_data);
    let line = exited.refusal_line();
    assert!(line.contains("does not support CKM_ECDH1_DERIVE"), "{line}");
}

/// Acceptance 3: the D-TA plugin on an HSM-backed node: its master share
/// is a token secret, it signs and opens envelopes with token keys, and
/// after a restart it issues the same shares.
#[test]
fn dta_plugin_works_on_an_hsm_backed_node() {
    let hsm = SoftHsm::new();
    hsm.init_token("dta", PIN, SO_PIN);
    let lib = plugin_library("milagro-plugin-dta");
    let ipfs = |bootstrap: &[String]| {
        format!("[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {bootstrap:?}\n")
    };
    let requester = Node::start(NodeConfig::new("requester").section(&ipfs(&[])).plugin(
        PluginEntry::new(
            "dta",
            &lib,
            "{ client_allow = [], server_allow = [], reply_timeout_ms = 20000 }",
        ),
    ));
    let rid = requester.id();
    let mut dta = Node::start(
        hsm_node("dta1", &hsm, "dta", PIN)
            .section(&ipfs(&requester.ipfs_addresses()))
            .plugin(PluginEntry::new(
                "dta",
                &lib,
                &format!("{{ client_allow = [{rid:?}], server_allow = [{rid:?}], reply_timeout_ms = 20000 }}"),
            )),
    );
    let authorities = vec![dta.id()];
    let id = "alice@example.org";
    let secret = |kind: &str, dta: &Node| {
        // A server secret is not per M-Pin ID.
        let body = match kind {
            "client" => j!({"kind": kind, "mpin_id": id, "authorities": authorities}),
            _ => j!({"kind": kind, "authorities": authorities}),
        };
        let r = requester.call("POST", "/v1/dta/secrets", Some(body.to_string().as_bytes()));
        assert_eq!(r.0, 200, "{kind}: {}\n{}", r.1, dta.log());
        json(&r.1)["secret"].as_str().unwrap().to_string()
    };
    let client = secret("client", &dta);
    let server = secret("server", &dta);
    // The pair works for M-Pin: a token made with PIN 1234 logs in with
    // 1234 against the server secret, and not with 1235.
    let logs_in = |pin: u32| {
        let c = g1_from_hex(&client).unwrap();
        let s = g2_from_hex(&server).unwrap();
        let token = mpin_client::Token::from_client_secret(&c, id.as_bytes(), 1234);
        let (x, u) = mpin_client::pass1(id.as_bytes()).unwrap();
        let y = milagro_mpin::random_scalar().unwrap();
        let v = mpin_client::pass2(&x, &y, &token, pin, id.as_bytes());
        mpin_server::verify_login(id.as_bytes(), &u, &y, &v, &s)
    };
    assert!(logs_in(1234), "the HSM-held share gives a working pair");
    assert!(!logs_in(1235));

    let objects = objects(&hsm.list_objects("dta", PIN));
    object(
        &objects,
        "Data object",
        "dta1/plugin/dta/dta/master-share-v2",
    );

    dta.restart();
    assert_eq!(
        secret("client", &dta),
        client,
        "the master share survives a restart"
    );
}

/// Adds an HSM keystore (`token` of `hsm`, labels prefixed `<prefix>/`).
fn on_hsm(config: NodeConfig, hsm: &SoftHsm, token: &str, prefix: &str) -> NodeConfig {
    let (conf_var, conf) = hsm.env();
    config
        .section("[keystore]\nbackend = \"hsm-keystore\"\n")
        .plugin(hsm_entry(token, prefix, &softhsm::module()))
        .env(&conf_var, &conf)
        .env(PIN_ENV, PIN)
}

/// Places `n` orders at once through `principal`; returns them and the
/// wall time.
fn concurrent_orders(
    principal: &Node,
    fiduciaries: &[String],
    beneficiary: &str,
    prefix: &str,
    n: usize,
) -> (Vec<serde_json::Value>, Duration) {
    let started = Instant::now();
    let orders = thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                scope.spawn(move || {
                    order_ok(
                        principal,
                        fiduciaries,
                        Some(beneficiary),
                        "btc",
                        &format!("{prefix}-{i}"),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("order thread"))
            .collect()
    });
    (orders, started.elapsed())
}

/// Acceptance 2 and 5: custody with both fiduciaries on HSM keystores
/// (separate SoftHSM installations and tokens) and the beneficiary on an
/// HSM too; a fiduciary restarted between order and redeem finds its keys
/// and share by label; 16 concurrent orders against the HSM fiduciaries
/// complete, timed against the same 16 on file-keystore fiduciaries.
#[test]
fn custody_with_fiduciaries_and_beneficiary_on_hsm_tokens() {
    const REPLY_TIMEOUT_MS: u64 = 30_000;
    const WAIT: Duration = Duration::from_secs(60);
    let (hb, h1, h2) = (SoftHsm::new(), SoftHsm::new(), SoftHsm::new());
    hb.init_token("beneficiary", PIN, SO_PIN);
    h1.init_token("fiduciary-1", PIN, SO_PIN);
    h2.init_token("fiduciary-2", PIN, SO_PIN);
    let role = |name: &str, role: Role, bootstrap: &[&Node]| {
        node_config(name, &[role], &peers(bootstrap), REPLY_TIMEOUT_MS)
    };
    let b = Node::start(on_hsm(
        role("beneficiary", Role::Beneficiary, &[]),
        &hb,
        "beneficiary",
        "b",
    ));
    let f2 = Node::start(on_hsm(
        role("fiduciary-2", Role::Fiduciary, &[&b]),
        &h2,
        "fiduciary-2",
        "f2",
    ));
    // File-keystore fiduciaries, for the comparison.
    let f3 = Node::start(role("fiduciary-3", Role::Fiduciary, &[&b, &f2]));
    let f4 = Node::start(role("fiduciary-4", Role::Fiduciary, &[&b, &f2, &f3]));
    let p = Node::start(role("principal", Role::Principal, &[&b, &f2, &f3, &f4]));
    // Started last, it dials everyone at every start, so it rejoins after
    // its restart.
    let mut f1 = Node::start(on_hsm(
        role("fiduciary-1", Role::Fiduciary, &[&b, &f2, &f3, &f4, &p]),
        &h1,
        "fiduciary-1",
        "f1",
    ));
    let hsm_fids = vec![f1.id(), f2.id()];
    let file_fids = vec![f3.id(), f4.id()];
    let bid = b.id();

    // One order; each HSM fiduciary's share is a secret in its token.
    let first = order_ok(&p, &hsm_fids, Some(&bid), "btc", "hsm-wallet");
    assert_eq!(first["status"], "ready", "{first}");
    let order_cid = first["order_cid"].as_str().unwrap();
    for (hsm, token, prefix) in [(&h1, "fiduciary-1", "f1"), (&h2, "fiduciary-2", "f2")] {
        let objects = objects(&hsm.list_objects(token, PIN));
        let share = format!("{prefix}/plugin/fiduciary/share/{order_cid}");
        object(&objects, "Data object", &share);
    }

    // Restart fiduciary 1 (SIGKILL): it finds its keys and share by label.
    // It resolves the beneficiary (whom it seals the release to) first, so
    // the release does not wait on IPFS fetching that document from peers
    // the restarted node is still reconnecting to.
    let f1_id = f1.id();
    assert_eq!(f1.get(&format!("/v1/identity/{bid}")).0, 200);
    f1.restart();
    assert_eq!(f1.id(), f1_id);
    let (status, r) = redeem(&p, "hsm-wallet", None);
    assert_eq!(status, 202, "{r}");
    let w = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_complete(&b, "hsm-wallet", WAIT)
    }))
    .unwrap_or_else(|panic| {
        eprintln!("fiduciary-1:\n{}\nfiduciary-2:\n{}", f1.log(), f2.log());
        std::panic::resume_unwind(panic)
    });
    assert_eq!(w["address"], first["address"]);
    let mut wallets = vec![w];

    // 16 concurrent orders: file-keystore fiduciaries, then HSM ones.
    let n = 16;
    let (file_orders, file_time) = concurrent_orders(&p, &file_fids, &bid, "file", n);
    let (hsm_orders, hsm_time) = concurrent_orders(&p, &hsm_fids, &bid, "hsm", n);
    for o in file_orders.iter().chain(&hsm_orders) {
        assert_eq!(o["status"], "ready", "{o}");
    }
    println!(
        "{n} concurrent orders (2 fiduciaries, debug build): file keystore {:.2}s = {:.1} orders/s; HSM (SoftHSM2) {:.2}s = {:.1} orders/s",
        file_time.as_secs_f64(),
        n as f64 / file_time.as_secs_f64(),
        hsm_time.as_secs_f64(),
        n as f64 / hsm_time.as_secs_f64()
    );

    // The HSM orders redeem to keys that match their addresses.
    for o in &hsm_orders {
        let reference = o["reference"].as_str().unwrap();
        let (status, r) = redeem(&p, reference, None);
        assert_eq!(status, 202, "{r}");
    }
    for o in &hsm_orders {
        let w = wait_complete(&b, o["reference"].as_str().unwrap(), WAIT);
        assert_eq!(w["address"], o["address"]);
        let mut checked = w.clone();
        checked["legacy_address"] = o["legacy_address"].clone();
        wallets.push(checked);
    }
    wallets[0]["legacy_address"] = first["legacy_address"].clone();
    assert_eq!(check_wallets(&wallets), n + 1);

    // No wallet key in the HSM nodes' files.
    for w in &wallets {
        let key = hex::decode(w["secret_key"].as_str().unwrap()).unwrap();
        for node in [&f1, &f2, &b] {
            let found = found_in(node.dir.path(), &key);
            assert!(found.is_empty(), "a wallet key is in {found:?}");
        }
    }
}

/// Signatures per second through the host's keystore trait, 16 threads:
/// the file keystore against the HSM keystore loaded as a plugin library
/// (ABI, session pool, SoftHSM2). Prints the figures (docs/hsm.md).
#[test]
fn signatures_per_second_hsm_vs_file_keystore() {
    let hsm = SoftHsm::new();
    hsm.init_token("bench", PIN, SO_PIN);
    let config = hsm_node("bench", &hsm, "bench", PIN);
    let dir = config.write();
    // SAFETY: set before this process first loads SoftHSM; nextest runs
    // each test in its own process.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hsm.conf()) };
    unsafe { std::env::set_var(PIN_ENV, PIN) };
    let host = milagro::config::Config::load(&dir.path().join("host.toml")).unwrap();
    let from_plugin = milagro::plugins::open_keystore(&host.plugins, &host.keystore.backend)
        .unwrap()
        .expect("the hsm-keystore plugin's keystore");
    let hsm_keystore: Arc<dyn Keystore> = Arc::new(from_plugin);
    let file_keystore: Arc<dyn Keystore> = Arc::new(
        FileKeystore::open(
            &dir.path().join("file-keystore"),
            &KeystoreConfig::default(),
        )
        .unwrap(),
    );
    let (threads, per_thread) = (16, 50);
    for (name, keystore) in [("file", file_keystore), ("HSM (SoftHSM2)", hsm_keystore)] {
        let public = keystore
            .generate("bench/signing", KeyKind::Secp256k1Signing)
            .unwrap();
        let started = Instant::now();
        thread::scope(|scope| {
            for t in 0..threads {
                let keystore = Arc::clone(&keystore);
                scope.spawn(move || {
                    for i in 0..per_thread {
                        let digest = [(t * per_thread + i) as u8; 32];
                        let signature = keystore.sign_prehash("bench/signing", &digest).unwrap();
                        public.verify_prehash(&digest, &signature, "bench").unwrap();
                    }
                });
            }
        });
        let elapsed = started.elapsed().as_secs_f64();
        let n = threads * per_thread;
        println!(
            "{name} keystore: {n} signatures on {threads} threads in {elapsed:.2}s = {:.0} signatures/s (debug build, verified)",
            n as f64 / elapsed
        );
    }
}

/// Issue 18, backup and restore: a backup of an HSM node holds no key
/// material (no keystore member, neither secret in its plaintext) and lists
/// what the token must hold; a restore against a token without those keys
/// is refused with one line and writes nothing; against its own token it
/// brings the node back with the same ID and keys.
#[test]
fn a_backup_of_an_hsm_node_holds_no_key_and_restores_only_onto_its_token() {
    use std::io::Read as _;

    use milagro::backup;

    const PASSPHRASE: &str = "the test's backup passphrase";
    let hsm = SoftHsm::new();
    hsm.init_token("node-b", PIN, SO_PIN);
    hsm.init_token("blank", PIN, SO_PIN);
    let config = hsm_node("b", &hsm, "node-b", PIN).section("[identity]\nbeneficiary = true\n");
    let node = Node::start_in(config.write(), &config);
    let (id, signing_key) = (node.id(), node.identity()["signing_key"].clone());
    let with_passphrase = |env: &[(String, String)]| {
        let mut env = env.to_vec();
        env.push((backup::PASSPHRASE_ENV.into(), PASSPHRASE.into()));
        env
    };
    let archives = tempfile::tempdir().unwrap();
    let archive = archives.path().join("b.age");
    let out = run_milagro(
        node.dir.path(),
        &["backup", "--out", archive.to_str().unwrap()],
        &with_passphrase(&config.env),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let mut plain = Vec::new();
    backup::decrypt(
        &backup::SecretString::from(PASSPHRASE.to_string()),
        std::fs::File::open(&archive).unwrap(),
    )
    .unwrap()
    .read_to_end(&mut plain)
    .unwrap();
    let manifest = backup::read_archive(plain.as_slice(), |_, data| {
        std::io::copy(data, &mut std::io::sink()).unwrap();
        Ok(())
    })
    .unwrap();
    let members: Vec<&str> = manifest.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        members,
        ["db.kv", "ipfs/identity.key"],
        "no keystore member"
    );
    assert_eq!(manifest.keystore.backend, "hsm-keystore");
    let must_hold: Vec<&str> = manifest
        .keystore
        .token_must_hold
        .iter()
        .map(|o| o.label.as_str())
        .collect();
    assert_eq!(
        must_hold,
        [
            "node/1/signing",
            "node/1/ecdh",
            "node/1/kem",
            "node/beneficiary"
        ]
    );
    assert_eq!(
        manifest.keystore.token_must_hold[0].public_key.as_deref(),
        signing_key.as_str()
    );
    // SAFETY: set before this process first loads SoftHSM; nextest runs
    // each test in its own process.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hsm.conf()) };
    unsafe { std::env::set_var(PIN_ENV, PIN) };
    let keystore = HsmKeystore::new(HsmConfig {
        module: softhsm::module(),
        token_label: "node-b".into(),
        pin_env: Some(PIN_ENV.into()),
        pin_file: None,
        key_prefix: "b/".into(),
        sessions: 2,
    })
    .unwrap();
    for label in ["node/1/kem", "node/beneficiary"] {
        let secret = keystore.get_secret(label).unwrap().unwrap();
        let secret = &secret[..32];
        assert!(
            !plain.windows(secret.len()).any(|w| w == secret),
            "{label} is in the archive"
        );
    }
    drop(keystore);
    drop(node);

    // A token without the node's keys: refused, nothing written.
    let blank = hsm_node("b", &hsm, "blank", PIN);
    let target = blank.write();
    let out = run_milagro(
        target.path(),
        &["restore", "--in", archive.to_str().unwrap()],
        &with_passphrase(&blank.env),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(String::from)
        .collect();
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    assert!(
        errors[0].contains("does not hold signing key \"node/1/signing\""),
        "{}",
        errors[0]
    );
    let left: Vec<_> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["host.toml"], "nothing written");

    // Its own token: the same node.
    let target = config.write();
    let out = run_milagro(
        target.path(),
        &["restore", "--in", archive.to_str().unwrap()],
        &with_passphrase(&config.env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("its token must hold"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let restored = Node::start_in(target, &config);
    assert_eq!(restored.id(), id);
    assert_eq!(restored.identity()["signing_key"], signing_key);
}
