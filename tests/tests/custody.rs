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

//! The custody plugins end to end (issue 4): real `milagro` processes with
//! embedded IPFS nodes (or js-ipfs daemons in kubo mode) on 127.0.0.1,
//! exchanging custody envelopes. Each rebuilt wallet key is checked against
//! its address by an independent implementation (`tests/wallet_check.py`).

use std::{
    path::Path,
    thread,
    time::{Duration, Instant},
};

use milagro_custody::SecretScalar;
use milagro_custody::messages::{self, Commitment, Limits, Order, Redeem};
use milagro_tests::{
    Node, NodeConfig,
    custody::{
        self, ALL_ROLES, Role, message, node_config, order, order_ok, peers, probe, redeem,
        send_sealed, wait_complete, wait_refusal, wait_wallet,
    },
    json,
    wallet::check_wallets,
};
use serde_json::{Value, json as j};

const REPLY_TIMEOUT_MS: u64 = 20_000;
const WAIT: Duration = Duration::from_secs(40);

fn start(name: &str, roles: &[Role], bootstrap: &[&Node]) -> Node {
    Node::start(node_config(
        name,
        roles,
        &peers(bootstrap),
        REPLY_TIMEOUT_MS,
    ))
}

/// Whether any file under `dir` contains `needle`.
fn found_in_files(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(found_in_files(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// Asserts that neither `node`'s files nor its log hold the secret `hex_key`.
fn assert_never_holds(node: &Node, who: &str, hex_key: &str) {
    let raw = hex::decode(hex_key).unwrap();
    let upper = hex_key.to_uppercase();
    for needle in [raw.as_slice(), hex_key.as_bytes(), upper.as_bytes()] {
        let hits = found_in_files(node.dir.path(), needle);
        assert!(hits.is_empty(), "{who} holds a wallet key in {hits:?}");
    }
    assert!(
        !node.log().contains(hex_key),
        "{who}'s log holds a wallet key"
    );
}

#[test]
fn four_processes_order_and_redeem_and_the_key_maps_to_the_address() {
    let b = start("beneficiary", &[Role::Beneficiary], &[]);
    let f1 = start("fiduciary-1", &[Role::Fiduciary], &[&b]);
    let f2 = start("fiduciary-2", &[Role::Fiduciary], &[&b, &f1]);
    let p = start("principal", &[Role::Principal], &[&b, &f1, &f2]);
    let fids = vec![f1.id(), f2.id()];
    let bid = b.id();

    let mut wallets = Vec::new();
    for (coin, prefix) in [("btc", "bc1q"), ("btc-testnet", "tb1q"), ("eth", "0x")] {
        let reference = format!("wallet-{coin}");
        let started = Instant::now();
        let o = order_ok(&p, &fids, Some(&bid), coin, &reference);
        eprintln!("order {reference}: {:?}", started.elapsed());
        assert_eq!(o["reference"], reference.as_str());
        assert_eq!(o["coin"], coin);
        assert_eq!(o["status"], "ready");
        assert!(o["address"].as_str().unwrap().starts_with(prefix), "{o}");
        assert_eq!(o["public_key"].as_str().unwrap().len(), 66);
        assert_eq!(o["fiduciaries"].as_array().unwrap().len(), 2);
        for f in o["fiduciaries"].as_array().unwrap() {
            assert_eq!(f["status"], "committed", "{o}");
            assert!(f["commitment_cid"].as_str().unwrap().starts_with("bafy"));
            assert_eq!(f["share_public_key"].as_str().unwrap().len(), 66);
        }
        assert!(o["order_cid"].as_str().unwrap().starts_with("bafy"));
        assert!(o["created_at"].as_u64().unwrap() > 0);
        if coin == "eth" {
            assert!(o["legacy_address"].is_null());
        } else {
            assert!(o["legacy_address"].as_str().is_some());
        }

        // The same order again: the same wallet, never a second one.
        let (status, again) = order(
            &p,
            &j!({"fiduciaries": fids, "beneficiary": bid, "coin": coin, "reference": reference}),
        );
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["address"], o["address"]);
        assert_eq!(again["order_cid"], o["order_cid"]);
        // The same reference for another order: refused.
        let (status, other) = order(
            &p,
            &j!({"fiduciaries": [fids[0].clone()], "beneficiary": bid, "coin": coin, "reference": reference}),
        );
        assert_eq!(status, 409, "{other}");

        // The beneficiary knows the wallet before any release.
        let w = wait_wallet(&b, &reference, WAIT, |w| w["status"] == "pending");
        assert_eq!(w["address"], o["address"]);
        assert_eq!(w["shares_received"], 0);
        assert_eq!(w["shares_needed"], 2);
        assert!(w.get("secret_key").is_none());

        let (status, r) = redeem(&p, &reference, None);
        assert_eq!(status, 202, "{r}");
        assert_eq!(r["status"], "redeeming");
        assert_eq!(r["envelopes"]["redeems"].as_array().unwrap().len(), 2);
        let w = wait_complete(&b, &reference, WAIT);
        assert_eq!(w["address"], o["address"]);
        assert_eq!(w["public_key"], o["public_key"]);
        assert_eq!(w["shares_received"], 2);
        if coin != "eth" {
            assert!(w["wif"].as_str().is_some());
        }
        let mut checked = w.clone();
        checked["legacy_address"] = o["legacy_address"].clone();
        wallets.push(checked);
    }
    assert_eq!(check_wallets(&wallets), 3);

    // Orders and wallets are listed; the fiduciaries hold each order once,
    // released to the beneficiary, and show no secret.
    assert_eq!(
        custody::all_pages(&p, "/v1/custody/orders", "orders").len(),
        3
    );
    assert_eq!(
        custody::all_pages(&b, "/v1/beneficiary/wallets", "wallets").len(),
        3
    );
    for f in [&f1, &f2] {
        let shares = custody::all_pages(f, "/v1/fiduciary/shares", "shares");
        assert_eq!(shares.len(), 3);
        for s in &shares {
            assert_eq!(s["released_to"], bid.as_str(), "{s}");
            assert!(s.get("share").is_none());
        }
    }

    // Releases are sealed to the beneficiary only (the audit shows the
    // recipients), and the audit walks from a release back to the order.
    let release = wallets[0]["envelopes"]["releases"][0]
        .as_str()
        .unwrap()
        .to_string();
    let report = json(&b.get_auth(&format!("/v1/audit/{release}")).1);
    assert_eq!(report["ok"], true, "{report}");
    let entries = report["envelopes"].as_array().unwrap();
    assert_eq!(entries[0]["kind"], "custody/release");
    assert_eq!(entries[0]["recipients"], j!([bid]));
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "custody/redeem",
        "custody/notice",
        "custody/commitment",
        "custody/order",
    ] {
        assert!(kinds.contains(&kind), "audit reaches {kind}: {kinds:?}");
    }

    // Nobody but the beneficiary ever holds a wallet key.
    for w in &wallets {
        let key = w["secret_key"].as_str().unwrap();
        assert_never_holds(&p, "the principal", key);
        assert_never_holds(&f1, "fiduciary 1", key);
        assert_never_holds(&f2, "fiduciary 2", key);
        assert!(
            !b.log().contains(key),
            "the beneficiary's log holds a wallet key"
        );
    }

    // A redeem signed by anyone else releases nothing; the fiduciary
    // records the refusal.
    let outsider = Node::start(
        NodeConfig::new("outsider")
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {:?}\n",
                peers(&[&f1])
            ))
            .plugin(probe(&[])),
    );
    let order_cid: messages::Cid = wallets[0]["order_cid"]
        .as_str()
        .unwrap()
        .try_into()
        .unwrap();
    for new_beneficiary in [None, Some(outsider.id())] {
        let forged = Redeem {
            order_cid,
            reference: "wallet-btc".into(),
            new_beneficiary,
            epoch: None,
        };
        let cid = send_sealed(&outsider, &forged, &f1.id(), &[]);
        let refusal = wait_refusal(&f1, "/v1/fiduciary/refusals", &cid, WAIT);
        assert!(
            message_of(&refusal).contains("neither the order's principal nor its beneficiary"),
            "{refusal}"
        );
    }
    let shares = custody::all_pages(&f1, "/v1/fiduciary/shares", "shares");
    let held = shares
        .iter()
        .find(|s| s["reference"] == "wallet-btc")
        .unwrap();
    assert_eq!(held["release_cids"].as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held["released_to"], bid.as_str());
}

fn message_of(refusal: &Value) -> String {
    refusal["reason"].as_str().unwrap_or_default().to_string()
}

#[test]
fn one_node_plays_every_role_and_can_hand_the_wallet_to_a_new_beneficiary() {
    let n = start("all-roles", &ALL_ROLES, &[]);
    let me = n.id();

    // The quick start: the node is fiduciary and (by omission) beneficiary.
    let o = order_ok(&n, std::slice::from_ref(&me), None, "btc", "mine");
    assert_eq!(o["beneficiary"], me.as_str());
    let (status, r) = redeem(&n, "mine", None);
    assert_eq!(status, 202, "{r}");
    let w = wait_complete(&n, "mine", WAIT);
    assert_eq!(w["address"], o["address"]);
    assert_eq!(w["beneficiary_key"], "received");
    let mut checked = vec![w];

    // A second wallet goes to a new beneficiary named at redemption.
    let newcomer = start("newcomer", &[Role::Beneficiary], &[&n]);
    let nid = newcomer.id();
    let o = order_ok(&n, std::slice::from_ref(&me), None, "eth", "gift");
    let (status, r) = redeem(&n, "gift", Some(&nid));
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["redeemed_to"], nid.as_str());
    let w = wait_complete(&newcomer, "gift", WAIT);
    assert_eq!(w["address"], o["address"]);
    checked.push(w);
    // Once redeemed to someone, nobody can redirect it.
    let (status, r) = redeem(&n, "gift", Some(&me));
    assert_eq!(status, 409, "{r}");
    assert!(message(&r).contains("already redeemed"), "{r}");
    // The node itself never got the gift's key.
    let (status, mine) = custody::wallet(&n, "gift");
    assert!(status == 404 || mine["status"] == "pending", "{mine}");

    // An order naming a beneficiary cannot be redirected at all.
    let o = order_ok(
        &n,
        std::slice::from_ref(&me),
        Some(&nid),
        "btc-testnet",
        "fixed",
    );
    let (status, r) = redeem(&n, "fixed", Some(&me));
    assert_eq!(status, 409, "{r}");
    assert!(message(&r).contains("cannot be changed"), "{r}");
    let (status, r) = redeem(&n, "fixed", None);
    assert_eq!(status, 202, "{r}");
    let w = wait_complete(&newcomer, "fixed", WAIT);
    assert_eq!(w["address"], o["address"]);
    assert_eq!(w["beneficiary_key"], "node");
    checked.push(w);
    assert_eq!(check_wallets(&checked), 3);
}

#[test]
fn a_forged_commitment_fails_the_order_and_names_the_fiduciary() {
    let f = start("fiduciary", &[Role::Fiduciary], &[]);
    let p = start("principal", &[Role::Principal, Role::Beneficiary], &[&f]);
    let forger = Node::start(
        NodeConfig::new("forger")
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {:?}\n",
                peers(&[&f, &p])
            ))
            .plugin(probe(&["custody/order"])),
    );
    let (fid, xid) = (f.id(), forger.id());
    let fiduciaries = vec![fid.clone(), xid.clone()];
    let answer = thread::scope(|s| {
        let placed = s.spawn(|| {
            order(
                &p,
                &j!({"fiduciaries": fiduciaries, "coin": "btc", "reference": "forged"}),
            )
        });
        // The forger answers with a proof made for another fiduciary.
        let deadline = Instant::now() + WAIT;
        let received = loop {
            let list = json(&forger.get_auth("/v1/probe/received").1);
            if let Some(r) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["kind"] == "custody/order")
            {
                break r.clone();
            }
            assert!(Instant::now() < deadline, "no order reached the forger");
            thread::sleep(Duration::from_millis(100));
        };
        let sealed = hex::decode(received["secret_hex"].as_str().unwrap()).unwrap();
        let o: Order = messages::decode(&sealed, &Limits::default()).unwrap();
        let k = SecretScalar::random().unwrap();
        let forged = Commitment::new(&o.cid().unwrap(), &fid, &k).unwrap();
        send_sealed(
            &forger,
            &forged,
            &o.principal,
            &[received["cid"].as_str().unwrap().to_string()],
        );
        placed.join().unwrap()
    });
    let (status, body) = answer;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains(&xid), "names the forger: {body}");
    let (_, o) = p.get_auth("/v1/custody/orders/forged");
    let o = json(&o);
    assert_eq!(o["status"], "failed", "{o}");
    assert_eq!(o["fiduciaries"][1]["status"], "invalid", "{o}");
    assert!(o["address"].is_null());
    // Retrying does not resurrect it.
    let (status, _) = order(
        &p,
        &j!({"fiduciaries": [fid, xid], "coin": "btc", "reference": "forged"}),
    );
    assert_eq!(status, 422);
}

#[test]
fn bad_input_is_refused_with_a_clear_message_and_nothing_is_written() {
    let plain = start("no-beneficiary-key", &[Role::Fiduciary], &[]);
    let p = Node::start(node_config(
        "principal",
        &[Role::Principal],
        &peers(&[&plain]),
        5_000,
    ));
    let f = plain.id();
    let unknown = messages::cid_of(b"nobody").to_string();
    let cases: Vec<(Value, u16, &str)> = vec![
        (j!({"coin": "btc"}), 422, "fiduciaries"),
        (
            j!({"fiduciaries": [f], "coin": "btc", "colour": "red"}),
            422,
            "colour",
        ),
        (
            j!({"fiduciaries": [f], "coin": "doge"}),
            400,
            "unknown coin",
        ),
        (j!({"fiduciaries": [], "coin": "btc"}), 400, "fiduciaries"),
        (j!({"fiduciaries": [f, f], "coin": "btc"}), 400, "twice"),
        (
            j!({"fiduciaries": ["not-a-node"], "coin": "btc"}),
            400,
            "not a node ID",
        ),
        (
            j!({"fiduciaries": [f], "beneficiary": "Qm123", "coin": "btc"}),
            400,
            "not a node ID",
        ),
        (
            j!({"fiduciaries": [f], "coin": "btc", "reference": "../etc"}),
            400,
            "reference",
        ),
        (
            j!({"fiduciaries": [f], "coin": "btc", "threshold": 0}),
            400,
            "threshold",
        ),
        (
            j!({"fiduciaries": [f], "coin": "btc", "threshold": 2}),
            400,
            "threshold",
        ),
        (
            j!({"fiduciaries": [unknown], "coin": "btc"}),
            404,
            "does not resolve",
        ),
        (
            j!({"fiduciaries": [f], "beneficiary": f, "coin": "btc"}),
            422,
            "no beneficiary key",
        ),
    ];
    for (body, status, needle) in &cases {
        let (got, answer) = order(&p, body);
        assert_eq!(got, *status, "{body} -> {answer}");
        assert!(
            message(&answer).contains(needle),
            "{body}: expected {needle:?} in {answer}"
        );
    }
    let (got, _) = p.call("POST", "/v1/custody/orders", Some(b"{not json"));
    assert_eq!(got, 400);
    let (got, answer) = redeem(&p, "no-such-order", None);
    assert_eq!(got, 404, "{answer}");
    // Nothing was recorded and no fiduciary was asked.
    assert!(custody::all_pages(&p, "/v1/custody/orders", "orders").is_empty());
    assert!(custody::all_pages(&plain, "/v1/fiduciary/shares", "shares").is_empty());
}

#[test]
fn the_same_flow_in_kubo_mode_against_js_ipfs_daemons() {
    let daemons = milagro_tests::jsipfs::JsIpfs::start_many(4);
    let [db, d1, d2, dp] = [&daemons[0], &daemons[1], &daemons[2], &daemons[3]];
    let kubo_node = |name, role, daemon, others: &[_]| {
        Node::start(custody::kubo_config(
            name,
            &[role],
            daemon,
            others,
            REPLY_TIMEOUT_MS,
        ))
    };
    let b = kubo_node("beneficiary", Role::Beneficiary, db, &[]);
    let f1 = kubo_node("fiduciary-1", Role::Fiduciary, d1, &[db]);
    let f2 = kubo_node("fiduciary-2", Role::Fiduciary, d2, &[db, d1]);
    let p = kubo_node("principal", Role::Principal, dp, &[db, d1, d2]);
    let bid = b.id();
    let started = Instant::now();
    let o = order_ok(&p, &[f1.id(), f2.id()], Some(&bid), "btc", "kubo-wallet");
    eprintln!("kubo mode: order in {:?}", started.elapsed());
    wait_wallet(&b, "kubo-wallet", WAIT, |w| w["status"] == "pending");
    let (status, r) = redeem(&p, "kubo-wallet", None);
    assert_eq!(status, 202, "{r}");
    let mut w = wait_complete(&b, "kubo-wallet", WAIT);
    eprintln!("kubo mode: order to key in {:?}", started.elapsed());
    assert_eq!(w["address"], o["address"]);
    w["legacy_address"] = o["legacy_address"].clone();
    assert_eq!(check_wallets(&[w]), 1);
}
