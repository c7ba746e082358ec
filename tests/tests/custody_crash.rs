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

//! Crash safety of custody (issues 4 and 9): one role at a time (principal,
//! fiduciary or beneficiary) is killed with SIGKILL at random moments while
//! 16 clients place 200 orders and redeem them, then restarted; clients
//! retry what failed, as a real client would. Afterwards every returned
//! address has had its key rebuilt and checked, no order is stuck, and each
//! fiduciary holds exactly one share per order, the one it committed to.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use milagro_tests::{
    Node, XorShift,
    custody::{self, Role, order, peers, redeem, restartable_node_config as node_config},
    wallet::check_wallets,
};
use serde_json::{Value, json as j};

const ORDERS: usize = 200;
const CLIENTS: usize = 16;
const KILLS: usize = 4;
/// Per-order commitment wait of the principal: short, so that orders that
/// hit a dead fiduciary come back (504) and are retried quickly.
const REPLY_TIMEOUT_MS: u64 = 3_000;
/// Bound on each client step (order, redeem, wallet) across crashes.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// A wallet still pending this long after its redeem is redeemed again.
const REDEEM_AGAIN_AFTER: Duration = Duration::from_secs(10);

/// A small deterministic generator (the seed is printed to replay a run).
/// The four processes; each behind a lock so the killer can restart one
/// while clients hold the others (a crash itself needs only a read lock, so
/// it lands in the middle of requests).
struct Network {
    principal: RwLock<Node>,
    fiduciaries: [RwLock<Node>; 2],
    beneficiary: RwLock<Node>,
}

impl Network {
    /// Starts the four nodes, `victim` last: each node dials those started
    /// before it, so the victim dials every other node at each restart, as
    /// a node with its peers in `bootstrap` does.
    fn start(victim: Role) -> Network {
        let mut plan = vec![
            ("beneficiary", Role::Beneficiary),
            ("fiduciary-2", Role::Fiduciary),
            ("fiduciary-1", Role::Fiduciary),
            ("principal", Role::Principal),
        ];
        let at = plan
            .iter()
            .position(|&(name, _)| name == victim_name(victim))
            .unwrap();
        let last = plan.remove(at);
        plan.push(last);
        let mut nodes: HashMap<&str, Node> = HashMap::new();
        for (name, role) in plan {
            let others: Vec<&Node> = nodes.values().collect();
            let node = Node::start(node_config(
                name,
                &[role],
                &peers(&others),
                REPLY_TIMEOUT_MS,
            ));
            nodes.insert(name, node);
        }
        let mut take = |name| RwLock::new(nodes.remove(name).unwrap());
        Network {
            principal: take("principal"),
            fiduciaries: [take("fiduciary-1"), take("fiduciary-2")],
            beneficiary: take("beneficiary"),
        }
    }

    fn victim(&self, role: Role) -> &RwLock<Node> {
        match role {
            Role::Principal => &self.principal,
            Role::Fiduciary => &self.fiduciaries[0],
            Role::Beneficiary => &self.beneficiary,
        }
    }
}

/// The node killed when `role` is the victim.
fn victim_name(role: Role) -> &'static str {
    match role {
        Role::Principal => "principal",
        Role::Fiduciary => "fiduciary-1",
        Role::Beneficiary => "beneficiary",
    }
}

/// Runs `step` until it returns `Ok`, within [`STEP_TIMEOUT`]; the panic
/// names the last answer.
fn retry<T>(what: &str, attempts: &AtomicUsize, mut step: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        attempts.fetch_add(1, Ordering::SeqCst);
        let last = match step() {
            Ok(done) => return done,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not done within {STEP_TIMEOUT:?}; last answer: {last}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn crash_run(victim: Role) {
    let net = Network::start(victim);
    let ids = |n: &RwLock<Node>| n.read().unwrap().id();
    let fids = vec![ids(&net.fiduciaries[0]), ids(&net.fiduciaries[1])];
    let bid = ids(&net.beneficiary);

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test ({victim:?}) seed {seed}");
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let (order_attempts, redeem_attempts) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let redeemed_again = AtomicUsize::new(0);
    let statuses: Mutex<HashMap<u16, usize>> = Mutex::new(HashMap::new());
    let results: Mutex<Vec<(Value, Value)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let mut kills = 0;
    thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= ORDERS {
                        return;
                    }
                    let reference = format!("crash-{i:03}");
                    let body = j!({"fiduciaries": fids, "beneficiary": bid, "coin": "btc", "reference": reference});
                    let placed = retry(&format!("order {reference}"), &order_attempts, || {
                        let (status, v) = order(&net.principal.read().unwrap(), &body);
                        *statuses.lock().unwrap().entry(status).or_default() += 1;
                        // 0: connection refused or cut (the principal died);
                        // 503: an envelope could not be delivered (its
                        // recipient is down); 504: a fiduciary did not
                        // answer in time.
                        assert!(
                            matches!(status, 0 | 200 | 201 | 503 | 504),
                            "order {reference}: unexpected {status} {v}"
                        );
                        if status == 200 || status == 201 {
                            Ok(v)
                        } else {
                            Err(format!("{status} {v}"))
                        }
                    });
                    let wallet = retry(&format!("wallet {reference}"), &redeem_attempts, || {
                        let (status, r) = redeem(&net.principal.read().unwrap(), &reference, None);
                        if status != 202 {
                            assert!(matches!(status, 0 | 503), "redeem {reference}: {status} {r}");
                            return Err(format!("redeem: {status} {r}"));
                        }
                        let polled = Instant::now() + REDEEM_AGAIN_AFTER;
                        while Instant::now() < polled {
                            let (_, w) = custody::wallet(&net.beneficiary.read().unwrap(), &reference);
                            if w["status"] == "complete" {
                                return Ok(w);
                            }
                            thread::sleep(Duration::from_millis(100));
                        }
                        redeemed_again.fetch_add(1, Ordering::SeqCst);
                        let (_, w) = custody::wallet(&net.beneficiary.read().unwrap(), &reference);
                        Err(format!("wallet: {w}"))
                    });
                    results.lock().unwrap().push((placed, wallet));
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // The killer: SIGKILL the victim at random moments while clients run.
        let mut rng = XorShift(seed);
        let victim = net.victim(victim);
        for _ in 0..KILLS {
            thread::sleep(Duration::from_millis(500 + rng.next(2500)));
            if finished.load(Ordering::SeqCst) >= ORDERS {
                break;
            }
            victim.read().unwrap().crash();
            kills += 1;
            thread::sleep(Duration::from_millis(rng.next(1000)));
            victim.write().unwrap().restart();
        }
    });
    let elapsed = started.elapsed();
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), ORDERS, "every order was placed and redeemed");

    // Every rebuilt key maps to the address the order returned.
    let wallets: Vec<Value> = results
        .iter()
        .map(|(o, w)| {
            assert_eq!(w["address"], o["address"], "{o}");
            let mut w = w.clone();
            w["legacy_address"] = o["legacy_address"].clone();
            w
        })
        .collect();
    let checked = check_wallets(&wallets);

    // No order is stuck: the principal lists each once, all redeemed.
    let listed = custody::all_pages(
        &net.principal.read().unwrap(),
        "/v1/custody/orders",
        "orders",
    );
    let stuck: Vec<&Value> = listed
        .iter()
        .filter(|o| o["status"] != "redeeming")
        .collect();
    assert_eq!(listed.len(), ORDERS, "one order per reference");
    assert!(stuck.is_empty(), "stuck orders: {stuck:?}");

    // Each fiduciary holds one share per order: the one it committed to.
    let committed: HashMap<&str, &Value> = results
        .iter()
        .map(|(o, _)| (o["reference"].as_str().unwrap(), o))
        .collect();
    let mut mismatched = 0;
    for (index, f) in net.fiduciaries.iter().enumerate() {
        let shares = custody::all_pages(&f.read().unwrap(), "/v1/fiduciary/shares", "shares");
        let mut seen = HashSet::new();
        for share in &shares {
            assert!(
                seen.insert(share["order_cid"].as_str().unwrap().to_string()),
                "order held twice: {share}"
            );
            let o = committed[share["reference"].as_str().unwrap()];
            if o["fiduciaries"][index]["share_public_key"] != share["share_public_key"] {
                mismatched += 1;
            }
        }
        assert_eq!(
            shares.len(),
            ORDERS,
            "fiduciary {} holds one share per order",
            index + 1
        );
    }
    assert_eq!(mismatched, 0, "shares that are not the committed one");
    assert!(kills > 0, "the {victim:?} was killed at least once");
    // Idle again, no node still holds a wait for a reply (each order used
    // to leave one behind in the principal).
    for node in [&net.principal, &net.beneficiary]
        .into_iter()
        .chain(&net.fiduciaries)
    {
        let node = node.read().unwrap();
        assert_eq!(custody::reply_waiters(&node), 0.0, "{}", node.id());
    }
    eprintln!(
        "crash test ({victim:?} killed {kills} times): {ORDERS} orders by {CLIENTS} clients placed and redeemed in {elapsed:?}; \
         {} order attempts (statuses {:?}), {} redeem attempts ({} redeemed again after {REDEEM_AGAIN_AFTER:?}); \
         {checked} keys rebuilt and checked, 0 unrebuildable; 0 stuck orders; 0 shares held twice; {mismatched} not the committed one",
        order_attempts.load(Ordering::SeqCst),
        statuses.into_inner().unwrap(),
        redeem_attempts.load(Ordering::SeqCst),
        redeemed_again.load(Ordering::SeqCst),
    );
}

#[test]
fn killing_the_principal_mid_orders_and_redemptions_loses_nothing() {
    crash_run(Role::Principal);
}

/// Failed about one run in three until restarted peers had their
/// overlapping connections reset (docs/architecture.md, "IPFS").
#[test]
fn killing_a_fiduciary_mid_orders_and_redemptions_loses_nothing() {
    crash_run(Role::Fiduciary);
}

#[test]
fn killing_the_beneficiary_mid_orders_and_redemptions_loses_nothing() {
    crash_run(Role::Beneficiary);
}
