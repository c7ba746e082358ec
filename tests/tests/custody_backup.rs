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

//! Backup and restore of a node (issue 18, item 4): `milagro backup` of one
//! custody node (principal, fiduciary or beneficiary) while 50 orders are in
//! flight, the machine lost (process killed, data dir deleted), `milagro
//! restore` into a new data dir: the node comes back with the same ID and
//! every wallet complete before the backup is redeemed, its key rebuilt and
//! checked by an independent implementation. And every hostile archive
//! (truncated, wrong passphrase, a flipped byte, another format version, a
//! manifest that lies) is refused with one line, nothing written.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::Output,
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use milagro::backup::{self as archive, PASSPHRASE_ENV};
use milagro_tests::{
    Node, NodeConfig,
    custody::{self, Role, order, peers, redeem, restartable_node_config as node_config},
    milagro,
    wallet::check_wallets,
};
use serde_json::{Value, json as j};

/// Orders complete before the backup, and as many again in flight.
const ORDERS: usize = 50;
const CLIENTS: usize = 16;
/// How long after the second 50 orders are sent the backup starts.
const IN_FLIGHT_AFTER: Duration = Duration::from_millis(150);
const REPLY_TIMEOUT_MS: u64 = 20_000;
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const PASSPHRASE: &str = "not a real passphrase, only the test's";

fn env() -> Vec<(String, String)> {
    vec![(PASSPHRASE_ENV.into(), PASSPHRASE.into())]
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `milagro backup --out FILE` of the node in `dir`.
fn backup(dir: &Path, out: &Path) -> Output {
    milagro(dir, &["backup", "--out", out.to_str().unwrap()], &env())
}

/// `milagro restore --in FILE` into the data dir of the config in `dir`.
fn restore(dir: &Path, archive: &Path) -> Output {
    milagro(dir, &["restore", "--in", archive.to_str().unwrap()], &env())
}

/// The four nodes, the victim started last (so that it dials every other
/// node when it comes back) and its config kept to restore it with.
struct Network {
    principal: Node,
    fiduciaries: Vec<Node>,
    beneficiary: Node,
}

impl Network {
    fn node_mut(&mut self, role: Role) -> &mut Node {
        match role {
            Role::Principal => &mut self.principal,
            Role::Fiduciary => &mut self.fiduciaries[0],
            Role::Beneficiary => &mut self.beneficiary,
        }
    }
}

fn start(victim: Role) -> (Network, NodeConfig) {
    let mut plan = vec![
        ("beneficiary", Role::Beneficiary),
        ("fiduciary-2", Role::Fiduciary),
        ("fiduciary-1", Role::Fiduciary),
        ("principal", Role::Principal),
    ];
    let victim_name = match victim {
        Role::Principal => "principal",
        Role::Fiduciary => "fiduciary-1",
        Role::Beneficiary => "beneficiary",
    };
    let at = plan.iter().position(|&(n, _)| n == victim_name).unwrap();
    let last = plan.remove(at);
    plan.push(last);
    let mut nodes: Vec<(&str, Node)> = Vec::new();
    let mut victim_config = None;
    for (name, role) in plan {
        let others: Vec<&Node> = nodes.iter().map(|(_, n)| n).collect();
        let config = node_config(name, &[role], &peers(&others), REPLY_TIMEOUT_MS);
        let node = Node::start_in(config.write(), &config);
        if name == victim_name {
            victim_config = Some(config);
        }
        nodes.push((name, node));
    }
    let mut take = |name| {
        let at = nodes.iter().position(|(n, _)| *n == name).unwrap();
        nodes.remove(at).1
    };
    let net = Network {
        principal: take("principal"),
        fiduciaries: vec![take("fiduciary-1"), take("fiduciary-2")],
        beneficiary: take("beneficiary"),
    };
    (net, victim_config.unwrap())
}

/// Redeems `reference` and waits for its key at the beneficiary, redeeming
/// again if it stays pending (a delivery to a node that just came back may
/// be lost by pubsub and is retried); bounded by [`STEP_TIMEOUT`].
fn redeem_until_complete(net: &Network, reference: &str) -> Value {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let (status, r) = redeem(&net.principal, reference, None);
        assert!(
            matches!(status, 202 | 503),
            "redeem {reference}: {status} {r}\n{}",
            net.principal.log()
        );
        let polled = Instant::now() + Duration::from_secs(10);
        while Instant::now() < polled {
            let (_, w) = custody::wallet(&net.beneficiary, reference);
            if w["status"] == "complete" {
                return w;
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert!(
            Instant::now() < deadline,
            "wallet {reference} not complete within {STEP_TIMEOUT:?}: {}",
            custody::wallet(&net.beneficiary, reference).1
        );
    }
}

fn backup_restore_run(victim: Role) {
    let (mut net, victim_config) = start(victim);
    let fids: Vec<String> = net.fiduciaries.iter().map(Node::id).collect();
    let bid = net.beneficiary.id();
    let victim_id = net.node_mut(victim).id();
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join("node.age");

    // 50 orders complete, then 50 more at once with the backup taken
    // while they are in flight.
    let done: Mutex<Vec<(Instant, Value)>> = Mutex::new(Vec::new());
    let place = |i: usize| {
        let reference = format!("backup-{i:03}");
        let body =
            j!({"fiduciaries": fids, "beneficiary": bid, "coin": "btc", "reference": reference});
        let (status, v) = order(&net.principal, &body);
        assert_eq!(status, 201, "order {reference}: {v}");
        done.lock().unwrap().push((Instant::now(), v));
    };
    let started = Instant::now();
    thread::scope(|s| {
        for client in 0..CLIENTS {
            let place = &place;
            s.spawn(move || (client..ORDERS).step_by(CLIENTS).for_each(place));
        }
    });
    let first_batch = started.elapsed();
    let mut backup_at = None;
    let mut backup_out = None;
    thread::scope(|s| {
        for i in ORDERS..2 * ORDERS {
            let place = &place;
            s.spawn(move || place(i));
        }
        // Let every order reach the principal and its fiduciaries.
        thread::sleep(IN_FLIGHT_AFTER);
        let victim_dir = match victim {
            Role::Principal => net.principal.dir.path(),
            Role::Fiduciary => net.fiduciaries[0].dir.path(),
            Role::Beneficiary => net.beneficiary.dir.path(),
        };
        let at = Instant::now();
        backup_out = Some(backup(victim_dir, &archive));
        backup_at = Some((at, at.elapsed()));
    });
    let ((backup_at, backup_took), backup_out) = (backup_at.unwrap(), backup_out.unwrap());
    assert!(backup_out.status.success(), "backup: {}", text(&backup_out));
    let stdout = String::from_utf8_lossy(&backup_out.stdout);
    assert!(stdout.contains(&victim_id), "{stdout}");
    let done = done.into_inner().unwrap();
    assert_eq!(done.len(), 2 * ORDERS, "every order completed");
    let before: Vec<Value> = done
        .iter()
        .filter(|(at, _)| *at < backup_at)
        .map(|(_, v)| v.clone())
        .collect();
    let in_flight = 2 * ORDERS - before.len();
    assert!(
        in_flight >= ORDERS / 2,
        "the backup must be taken with orders in flight ({in_flight})"
    );
    let archive_bytes = std::fs::metadata(&archive).unwrap().len();
    let plaintext_free =
        !String::from_utf8_lossy(&std::fs::read(&archive).unwrap()).contains(&victim_id);
    assert!(plaintext_free, "the archive shows the node ID in clear");

    // The machine is lost: process and data dir.
    let victim_node = net.node_mut(victim);
    victim_node.kill();
    std::fs::remove_dir_all(victim_node.dir.path().join("data")).unwrap();

    // A new machine: the same config, an empty data dir.
    let fresh = victim_config.write();
    let restored_out = restore(fresh.path(), &archive);
    assert!(
        restored_out.status.success(),
        "restore: {}",
        text(&restored_out)
    );
    let restored = Node::start_in(fresh, &victim_config);
    assert_eq!(restored.id(), victim_id, "the node ID is the same");
    *net.node_mut(victim) = restored;

    // Every wallet complete before the backup is redeemed and its key checks.
    let redeem_started = Instant::now();
    let wallets: Vec<Value> = before
        .iter()
        .map(|o| {
            let reference = o["reference"].as_str().unwrap();
            let mut w = redeem_until_complete(&net, reference);
            assert_eq!(w["address"], o["address"], "{reference}");
            w["legacy_address"] = o["legacy_address"].clone();
            w
        })
        .collect();
    let mut wallets = wallets;
    // Wallet operations go on: a new order, redeemed.
    let (status, o) = order(
        &net.principal,
        &j!({"fiduciaries": fids, "beneficiary": bid, "coin": "btc", "reference": "after-restore"}),
    );
    assert_eq!(status, 201, "an order after the restore: {o}");
    let mut w = redeem_until_complete(&net, "after-restore");
    assert_eq!(w["address"], o["address"]);
    w["legacy_address"] = o["legacy_address"].clone();
    wallets.push(w);
    let checked = check_wallets(&wallets);
    assert_eq!(checked, before.len() + 1);
    eprintln!(
        "backup/restore ({victim:?}): {ORDERS} orders complete in {first_batch:?}; backup taken with {} complete and \
         {in_flight} in flight ({archive_bytes} bytes, {:?}); node ID kept; {} wallets complete before the backup and 1 \
         ordered after the restore redeemed in {:?}, every key checked",
        before.len(),
        backup_took,
        checked - 1,
        redeem_started.elapsed(),
    );
}

#[test]
fn a_fiduciary_restored_from_a_backup_releases_every_wallet_complete_before_it() {
    backup_restore_run(Role::Fiduciary);
}

#[test]
fn a_beneficiary_restored_from_a_backup_rebuilds_every_wallet_complete_before_it() {
    backup_restore_run(Role::Beneficiary);
}

#[test]
fn a_principal_restored_from_a_backup_redeems_every_wallet_complete_before_it() {
    backup_restore_run(Role::Principal);
}

/// The archive's plaintext as (manifest JSON, the members after it, raw).
fn open_plaintext(archive: &Path) -> (Value, Vec<u8>) {
    let passphrase = archive::SecretString::from(PASSPHRASE.to_string());
    let file = std::fs::File::open(archive).unwrap();
    let mut plain = Vec::new();
    archive::decrypt(&passphrase, file)
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let name_len = u16::from_be_bytes([plain[0], plain[1]]) as usize;
    let at = 2 + name_len;
    let len = u64::from_be_bytes(plain[at..at + 8].try_into().unwrap()) as usize;
    let manifest = serde_json::from_slice(&plain[at + 8..at + 8 + len]).unwrap();
    (manifest, plain[at + 8 + len..].to_vec())
}

/// An archive encrypted with the test's passphrase, holding `manifest`
/// and then `rest` as they are.
fn seal(path: &Path, manifest: &Value, rest: &[u8]) -> PathBuf {
    use std::io::Write as _;
    let manifest = serde_json::to_vec(manifest).unwrap();
    let mut plain = Vec::new();
    plain.extend_from_slice(&(archive::MANIFEST.len() as u16).to_be_bytes());
    plain.extend_from_slice(archive::MANIFEST.as_bytes());
    plain.extend_from_slice(&(manifest.len() as u64).to_be_bytes());
    plain.extend_from_slice(&manifest);
    plain.extend_from_slice(rest);
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        archive::encrypt(archive::SecretString::from(PASSPHRASE.to_string()), file).unwrap();
    writer.write_all(&plain).unwrap();
    writer.finish().unwrap();
    path.to_owned()
}

/// Asserts a refused restore: non-zero exit `code`, one error line
/// containing `expect`, and nothing written in the config's dir.
fn assert_refused(out: &Output, code: i32, expect: &str, dir: &Path, what: &str) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line: {all}");
    assert!(
        errors[0].contains(expect),
        "{what}: {expect:?} not in {all}"
    );
    assert!(
        !errors[0].contains(PASSPHRASE),
        "{what}: the passphrase shown"
    );
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "host.toml")
        .collect();
    assert!(left.is_empty(), "{what}: left behind: {left:?}");
}

#[test]
fn hostile_archives_are_refused_with_one_line_and_nothing_written() {
    let config = NodeConfig::new("solo");
    let node = Node::start_in(config.write(), &config);
    let id = node.id();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.age");

    // The backup command's own refusals: no passphrase, a weak one, a file
    // that exists, a wrong token.
    let out = milagro(
        node.dir.path(),
        &["backup", "--out", good.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(PASSPHRASE_ENV));
    let out = milagro(
        node.dir.path(),
        &["backup", "--out", good.to_str().unwrap()],
        &[(PASSPHRASE_ENV.into(), "short".into())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let wrong_token = dir.path().join("wrong-token");
    std::fs::write(&wrong_token, "x".repeat(64)).unwrap();
    let out = milagro(
        node.dir.path(),
        &[
            "backup",
            "--out",
            good.to_str().unwrap(),
            "--token-file",
            wrong_token.to_str().unwrap(),
        ],
        &env(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(!good.exists() && !dir.path().join("good.age.partial").exists());

    let out = backup(node.dir.path(), &good);
    assert!(out.status.success(), "{}", text(&out));
    let out = backup(node.dir.path(), &good);
    assert_eq!(
        out.status.code(),
        Some(2),
        "never overwritten: {}",
        text(&out)
    );

    let fresh = || config.write();
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        path
    };
    let (manifest, rest) = open_plaintext(&good);
    assert_eq!(manifest["node_id"], id.as_str());
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "truncated",
            write("cut.age", &bytes[..bytes.len() / 2]),
            // Cut inside an age chunk: that chunk does not authenticate.
            "cut short",
        ),
        (
            "a flipped byte",
            write("flipped.age", &{
                let mut b = bytes.clone();
                let at = b.len() - 40;
                b[at] ^= 0x20;
                b
            }),
            "damaged, cut short or altered",
        ),
        (
            "not an archive",
            write("other.age", &[b'x'; 4096]),
            "not a milagro backup",
        ),
        (
            "another format version",
            seal(
                &dir.path().join("v2.age"),
                &{
                    let mut m = manifest.clone();
                    m["version"] = j!(2);
                    m
                },
                &rest,
            ),
            "format version 2 is not supported",
        ),
        (
            "a manifest whose digest lies",
            seal(
                &dir.path().join("digest.age"),
                &{
                    let mut m = manifest.clone();
                    m["members"][0]["sha256"] = j!("00".repeat(32));
                    m
                },
                &rest,
            ),
            "does not match the manifest (sha256)",
        ),
        (
            "a manifest whose size lies",
            seal(
                &dir.path().join("size.age"),
                &{
                    let mut m = manifest.clone();
                    let n = m["members"][0]["bytes"].as_u64().unwrap();
                    m["members"][0]["bytes"] = j!(n + 1);
                    m
                },
                &rest,
            ),
            "does not match the manifest (size)",
        ),
        (
            "a manifest that names another node",
            seal(
                &dir.path().join("other-id.age"),
                &{
                    let mut m = manifest.clone();
                    let other = "bafyreicl6ujc6ncfktctxxroxognfn7d2fqavvrryoc2lv6m4i6hpbkfti";
                    m["node_id"] = j!(other);
                    m["identity_chain"] = j!([other]);
                    m
                },
                &rest,
            ),
            "is not the manifest's",
        ),
        (
            "a manifest that hides a member",
            seal(
                &dir.path().join("hidden.age"),
                &{
                    let mut m = manifest.clone();
                    m["members"].as_array_mut().unwrap().pop();
                    m
                },
                &rest,
            ),
            "data follows the last member",
        ),
    ];
    for (what, path, expect) in &cases {
        let target = fresh();
        let out = restore(target.path(), path);
        assert_refused(&out, 1, expect, target.path(), what);
    }
    // The wrong passphrase.
    let target = fresh();
    let out = milagro(
        target.path(),
        &["restore", "--in", good.to_str().unwrap()],
        &[(
            PASSPHRASE_ENV.into(),
            "another passphrase, also long".into(),
        )],
    );
    assert_refused(
        &out,
        1,
        "the passphrase does not open",
        target.path(),
        "wrong passphrase",
    );
    // A data dir that is not empty is never written to.
    let target = fresh();
    std::fs::create_dir(target.path().join("data")).unwrap();
    std::fs::write(target.path().join("data/keep"), b"mine").unwrap();
    let out = restore(target.path(), &good);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    assert_eq!(
        std::fs::read(target.path().join("data/keep")).unwrap(),
        b"mine"
    );
    assert_eq!(
        std::fs::read_dir(target.path().join("data"))
            .unwrap()
            .count(),
        1
    );

    // The good archive restores, into a fresh dir, the same node.
    drop(node);
    let target = fresh();
    let out = restore(target.path(), &good);
    assert!(out.status.success(), "{}", text(&out));
    let restored = Node::start_in(target, &config);
    assert_eq!(restored.id(), id);
    eprintln!(
        "hostile archives: {} refused with one line and nothing written, plus a wrong passphrase and a non-empty data dir",
        cases.len()
    );
}
