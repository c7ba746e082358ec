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

//! Custody when a peer or the IPFS backend misbehaves (issue 9): a
//! fiduciary that answers slowly or never (frozen with SIGSTOP), and in
//! kubo mode the principal's js-ipfs daemon killed and started again. Each
//! test reports what the client saw while the fault lasted, and checks that
//! nothing was lost once it ended.

use std::{
    collections::BTreeMap,
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    Node,
    custody::{self, Role, kubo_config, message, node_config, order, order_ok, peers, redeem},
    jsipfs::JsIpfs,
    wallet::check_wallets,
};
use serde_json::{Value, json as j};

const WAIT: Duration = Duration::from_secs(60);

fn checked(o: &Value, beneficiary: &Node) -> Value {
    let reference = o["reference"].as_str().unwrap();
    let mut w = custody::wait_complete(beneficiary, reference, WAIT);
    assert_eq!(w["address"], o["address"], "{reference}");
    w["legacy_address"] = o["legacy_address"].clone();
    w
}

/// A fiduciary frozen for longer than the principal waits is named in a 504
/// and shown as `waiting` in the order's status; once it runs again the
/// same POST completes the order. A fiduciary frozen for less than that
/// only makes the order slower: its deliveries are published again until
/// it answers.
#[test]
fn a_fiduciary_that_answers_late_or_never_is_named_and_the_order_resumes() {
    const REPLY_TIMEOUT_MS: u64 = 4_000;
    let b = Node::start(node_config(
        "beneficiary",
        &[Role::Beneficiary],
        &[],
        REPLY_TIMEOUT_MS,
    ));
    let f1 = Node::start(node_config(
        "fiduciary-1",
        &[Role::Fiduciary],
        &peers(&[&b]),
        REPLY_TIMEOUT_MS,
    ));
    let f2 = Node::start(node_config(
        "fiduciary-2",
        &[Role::Fiduciary],
        &peers(&[&b, &f1]),
        REPLY_TIMEOUT_MS,
    ));
    let p = Node::start(node_config(
        "principal",
        &[Role::Principal],
        &peers(&[&b, &f1, &f2]),
        REPLY_TIMEOUT_MS,
    ));
    let (fids, bid) = (vec![f1.id(), f2.id()], b.id());
    // The principal knows every party's identity document before the
    // fault (a frozen node cannot serve its own by bitswap).
    for id in fids.iter().chain([&bid]) {
        assert_eq!(p.get(&format!("/v1/identity/{id}")).0, 200);
    }
    let mut wallets = vec![];

    // Never (for longer than the principal waits).
    let body = j!({"fiduciaries": fids, "beneficiary": bid, "coin": "btc", "reference": "frozen"});
    f2.pause();
    let started = Instant::now();
    let (status, answer) = order(&p, &body);
    let waited = started.elapsed();
    assert_eq!(status, 504, "{answer}");
    let why = message(&answer);
    assert!(
        why.contains(&fids[1]) && !why.contains(&fids[0]),
        "names only the frozen one: {why}"
    );
    let (_, view) = custody::order_view(&p, "frozen");
    assert_eq!(view["status"], "pending", "{view}");
    assert_eq!(view["fiduciaries"][0]["status"], "committed", "{view}");
    assert_eq!(view["fiduciaries"][1]["status"], "waiting", "{view}");
    f2.resume();
    let resumed = Instant::now();
    // Its deliveries were published again until it answered, so the
    // order may already be complete (200) or completes now (201).
    let (status, o) = order(&p, &body);
    assert!(matches!(status, 200 | 201), "{status} {o}");
    assert_eq!(o["status"], "ready", "{o}");
    println!(
        "frozen fiduciary: 504 naming it after {waited:?} (reply timeout {REPLY_TIMEOUT_MS} ms), status `waiting`; \
         the same POST after it resumed: {status} (ready) in {:?}",
        resumed.elapsed()
    );
    wallets.push(o);

    // Late: frozen for 2 s of the 4 s the principal waits.
    f1.pause();
    let started = Instant::now();
    let late = thread::scope(|s| {
        let placed = s.spawn(|| order_ok(&p, &fids, Some(&bid), "btc", "late"));
        thread::sleep(Duration::from_secs(2));
        f1.resume();
        placed.join().expect("order thread")
    });
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    println!("fiduciary frozen for 2 s: the order completed in {took:?}, no retry by the client");
    wallets.push(late);

    for o in &wallets {
        let (status, r) = redeem(&p, o["reference"].as_str().unwrap(), None);
        assert_eq!(status, 202, "{r}");
    }
    let wallets: Vec<Value> = wallets.iter().map(|o| checked(o, &b)).collect();
    assert_eq!(check_wallets(&wallets), 2);
}

/// Kubo mode: while the principal's js-ipfs daemon is down every order
/// answers 503 saying the IPFS node is unavailable (never 201, never
/// another 5xx); once the daemon is back (same repo and ports) the node
/// reconnects by itself, the same orders complete, and every wallet,
/// including one ordered before the fault, is redeemed to its key.
#[test]
fn the_ipfs_daemon_down_gives_503s_then_everything_completes() {
    const REPLY_TIMEOUT_MS: u64 = 10_000;
    let mut daemons = JsIpfs::start_many(3);
    let kubo_node = |name, role, daemon, others: &[_]| {
        Node::start(kubo_config(name, &[role], daemon, others, REPLY_TIMEOUT_MS))
    };
    let (db, df) = (&daemons[0], &daemons[1]);
    let b = kubo_node("beneficiary", Role::Beneficiary, db, &[]);
    let f = kubo_node("fiduciary", Role::Fiduciary, df, &[db]);
    let p = kubo_node("principal", Role::Principal, &daemons[2], &[db, df]);
    let (fids, bid) = (vec![f.id()], b.id());
    let before = order_ok(&p, &fids, Some(&bid), "btc", "before-the-fault");

    daemons[2].kill();
    let mut statuses = BTreeMap::new();
    let mut reasons = Vec::new();
    for i in 0..5 {
        let body = j!({"fiduciaries": fids, "beneficiary": bid, "coin": "btc", "reference": format!("during-{i}")});
        let (status, answer) = order(&p, &body);
        *statuses.entry(status).or_insert(0) += 1;
        reasons.push(message(&answer));
    }
    let (status, answer) = redeem(&p, "before-the-fault", None);
    *statuses.entry(status).or_insert(0) += 1;
    reasons.push(message(&answer));
    println!(
        "principal's IPFS daemon down: statuses {statuses:?}; e.g. {:?}",
        reasons[0]
    );
    assert_eq!(
        statuses.keys().collect::<Vec<_>>(),
        vec![&503],
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("IPFS") || r.contains("ipfs")),
        "{reasons:?}"
    );

    daemons[2].restart();
    let back = Instant::now();
    let deadline = back + WAIT;
    let mut placed = vec![before];
    for i in 0..5 {
        let body = j!({"fiduciaries": fids, "beneficiary": bid, "coin": "btc", "reference": format!("during-{i}")});
        let o = loop {
            let (status, o) = order(&p, &body);
            if status == 201 || status == 200 {
                break o;
            }
            assert!(matches!(status, 503 | 504), "{status} {o}");
            assert!(
                Instant::now() < deadline,
                "no recovery within {WAIT:?}: {o}"
            );
            thread::sleep(Duration::from_millis(250));
        };
        placed.push(o);
    }
    println!(
        "daemon back: the 5 refused orders completed within {:?}",
        back.elapsed()
    );
    for o in &placed {
        let (status, r) = redeem(&p, o["reference"].as_str().unwrap(), None);
        assert_eq!(status, 202, "{r}");
    }
    let wallets: Vec<Value> = placed.iter().map(|o| checked(o, &b)).collect();
    assert_eq!(check_wallets(&wallets), 6, "nothing lost");
}
