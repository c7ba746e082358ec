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

//! Threshold custody end to end (issue 5): t-of-n orders whose fiduciaries
//! run a joint-Feldman DKG among themselves over envelopes, across separate
//! `milagro` processes on 127.0.0.1. Fiduciaries are killed (SIGKILL) to
//! show that any t of them release the wallet; faulty fiduciaries run a copy
//! of the plugin built with the `test-faults` feature (into
//! `<target>/test-faults`), which the workspace build never has.

use std::{
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{
    custody::{self, message, order, redeem, wait_complete, wallet},
    network::{Network, Options},
    wallet::check_wallets,
};
use serde_json::{Value, json as j};

const REPLY_TIMEOUT_MS: u64 = 20_000;
const WAIT: Duration = Duration::from_secs(40);

/// A beneficiary, `n` fiduciaries (those named in `faults` with that test
/// fault) and a principal, all dialling each other.
fn start(n: usize, faults: &[(usize, &str)]) -> Network {
    Network::start(&Options {
        fiduciaries: n,
        faults,
        reply_timeout_ms: REPLY_TIMEOUT_MS,
        ..Options::default()
    })
}

/// Orders from the network's first fiduciaries.
trait Orders {
    fn ids(&self, count: usize) -> Vec<String>;
    fn order(&self, n: usize, t: Option<usize>, coin: &str, reference: &str) -> (u16, Value);
}

impl Orders for Network {
    fn ids(&self, count: usize) -> Vec<String> {
        self.ids[..count].to_vec()
    }

    /// A t-of-n order from the first `n` fiduciaries (threshold omitted when `t` is None).
    fn order(&self, n: usize, t: Option<usize>, coin: &str, reference: &str) -> (u16, Value) {
        let mut body = j!({"fiduciaries": self.ids(n), "beneficiary": self.beneficiary.id(),
                           "coin": coin, "reference": reference});
        if let Some(t) = t {
            body["threshold"] = j!(t);
        }
        order(&self.principal, &body)
    }
}

fn checked(w: Value, o: &Value) -> Value {
    let mut w = w;
    assert_eq!(w["address"], o["address"], "{w} vs {o}");
    w["legacy_address"] = o["legacy_address"].clone();
    w
}

/// n processes, threshold t: all up, n - t killed, fewer than t up.
fn any_t_of_n_release_the_wallet(n: usize, t: usize) {
    let mut net = start(n, &[]);
    let mut wallets = Vec::new();
    let mut orders = Vec::new();
    for (k, coin) in ["btc", "eth", "btc-testnet"].iter().enumerate() {
        let reference = format!("t{t}-of-{n}-{k}");
        let started = Instant::now();
        let (status, o) = net.order(n, Some(t), coin, &reference);
        if status != 201 {
            for f in &net.fiduciaries {
                let log = f.log();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .collect();
                eprintln!("fiduciary warnings:\n{}", lines.join("\n"));
            }
        }
        assert_eq!(status, 201, "{o}\n{}", net.principal.log());
        eprintln!("{t}-of-{n} order {reference}: {:?}", started.elapsed());
        assert_eq!(o["threshold"], t);
        assert!(
            o["fiduciaries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["status"] == "committed"),
            "{o}"
        );
        let w = custody::wait_wallet(&net.beneficiary, &reference, WAIT, |w| {
            w["status"] == "pending"
        });
        assert_eq!(w["shares_needed"], t);
        orders.push((reference, o));
    }

    // Every fiduciary up.
    let (reference, o) = &orders[0];
    assert_eq!(redeem(&net.principal, reference, None).0, 202);
    wallets.push(checked(wait_complete(&net.beneficiary, reference, WAIT), o));

    // n - t fiduciaries killed: the others still release it.
    for f in net.fiduciaries.iter_mut().take(n - t) {
        f.kill();
    }
    let (reference, o) = &orders[1];
    let (status, r) = redeem(&net.principal, reference, None);
    assert_eq!(status, 202, "{r}");
    let w = wait_complete(&net.beneficiary, reference, WAIT);
    assert_eq!(w["shares_received"], t, "{w}");
    wallets.push(checked(w, o));

    // Fewer than t up: pending, saying how many shares are missing.
    net.fiduciaries[n - t].kill();
    let (reference, _) = &orders[2];
    let (status, r) = redeem(&net.principal, reference, None);
    assert_eq!(status, 202, "{r}");
    let w = custody::wait_wallet(&net.beneficiary, reference, WAIT, |w| {
        w["shares_received"] == t - 1
    });
    thread::sleep(Duration::from_secs(2));
    let (_, w2) = wallet(&net.beneficiary, reference);
    assert_eq!(w2["status"], "pending", "{w2}");
    assert_eq!(w2["shares_missing"], 1, "{w2}");
    assert!(w2.get("secret_key").is_none());
    assert_eq!(w["shares_needed"], t);
    assert_eq!(check_wallets(&wallets), 2);

    // A new order while fiduciaries are down: the DKG cannot finish; the
    // 504 and the order's status tell the dead from those that dealt.
    let (status, body) = net.order(n, Some(t), "btc", "while-down");
    assert_eq!(status, 504, "{body}");
    let dead = net.ids[0].clone();
    let alive = net.ids[n - 1].clone();
    let text = message(&body);
    assert!(
        text.contains(&dead) && text.contains("did not answer"),
        "{body}"
    );
    assert!(
        text.contains(&alive) && text.contains("dealt but are still waiting"),
        "{body}"
    );
    let (_, o) = net.principal.get_auth("/v1/custody/orders/while-down");
    let o = milagro_tests::json(&o);
    assert_eq!(o["status"], "pending", "{o}");
    assert_eq!(o["fiduciaries"][0]["status"], "waiting", "{o}");
    assert_eq!(o["fiduciaries"][n - 1]["status"], "dealt", "{o}");
}

#[test]
fn two_of_three_any_two_release_the_wallet() {
    any_t_of_n_release_the_wallet(3, 2);
}

#[test]
fn three_of_five_any_three_release_the_wallet() {
    any_t_of_n_release_the_wallet(5, 3);
}

#[test]
fn a_fiduciary_dealing_a_wrong_share_is_named_and_the_order_fails() {
    let net = start(3, &[(2, "wrong-deal")]);
    let bad = net.fiduciaries[2].id();
    let started = Instant::now();
    let (status, body) = net.order(3, Some(2), "btc", "bad-deal");
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains(&bad), "names the dealer: {body}");
    assert!(
        message(&body).contains("does not match its commitments"),
        "{body}"
    );
    eprintln!("wrong deal detected in {:?}", started.elapsed());
    let (_, o) = net.principal.get_auth("/v1/custody/orders/bad-deal");
    let o = milagro_tests::json(&o);
    assert_eq!(o["status"], "failed");
    assert!(o["address"].is_null());
    // No honest fiduciary committed to (or holds) a share of it.
    for f in &net.fiduciaries[..2] {
        assert!(custody::all_pages(f, "/v1/fiduciary/shares", "shares").is_empty());
    }
}

#[test]
fn a_wrong_released_share_is_reported_ignored_and_the_key_still_rebuilt() {
    let net = start(3, &[(0, "wrong-release")]);
    let liar = net.fiduciaries[0].id();
    let (status, o) = net.order(3, Some(2), "btc", "bad-release");
    assert_eq!(status, 201, "{o}");
    assert_eq!(redeem(&net.principal, "bad-release", None).0, 202);
    let w = custody::wait_wallet(&net.beneficiary, "bad-release", WAIT, |w| {
        w["status"] == "complete" && !w["invalid_shares"].as_array().unwrap().is_empty()
    });
    let invalid = &w["invalid_shares"][0];
    assert_eq!(invalid["from"], liar.as_str(), "{w}");
    assert!(
        invalid["reason"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{w}"
    );
    assert_eq!(check_wallets(&[checked(w, &o)]), 1);
}

#[test]
fn order_latency_and_messages_for_3_5_and_10_fiduciaries() {
    let net = start(10, &[]);
    let mut report = Vec::new();
    for n in [3usize, 5, 10] {
        for (mode, t) in [("n-of-n", None), ("t-of-n", Some(n / 2 + 1))] {
            let mut times = Vec::new();
            for k in 0..3 {
                let reference = format!("latency-{n}-{mode}-{k}");
                let started = Instant::now();
                let (status, o) = net.order(n, t, "btc", &reference);
                assert_eq!(status, 201, "{o}");
                times.push(started.elapsed());
            }
            times.sort();
            // Messages each fiduciary sends per order: its commitment; in
            // the DKG also n - 1 deals and one dealt announcement.
            let per_fiduciary = if t.is_some() { n + 1 } else { 1 };
            report.push(format!(
                "n={n:>2} {mode} (t={}): median order latency {:?}, {per_fiduciary} message(s) per fiduciary",
                t.unwrap_or(n),
                times[1]
            ));
        }
    }
    eprintln!("threshold custody latency:\n{}", report.join("\n"));
}
