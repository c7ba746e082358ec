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

//! Long-lived custody (issue 18): share refresh and resharing end to end,
//! across separate `milagro` processes on 127.0.0.1. The wallet's address
//! never changes; after a refresh or a reshare the old shares are useless
//! (the fiduciaries run the plugin built with `test-faults`, which adds a
//! test-only export of their shares, so the test can hold a pre-refresh
//! share and show that it does not combine with the new ones); and a
//! fiduciary killed (SIGKILL) at any point of a refresh or reshare leaves
//! the wallet redeemable, on the old sharing or the new, never neither.
//! Every wallet released is checked by the independent Python derivation
//! (`tests/wallet_check.py`, coincurve).

use std::{
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use milagro_custody::{
    Coin, SecretScalar,
    feldman::Commitments,
    keys,
    messages::{
        Order, PublicShares, RefreshRequest, Reshare, ReshareCommitment, Reshared, ResharedNotice,
    },
    reshare::Sharing,
    shamir::{self, Polynomial, Share},
};
use milagro_tests::{
    Node, NodeConfig, XorShift,
    custody::{self, order_view, peers, probe, redeem, send_sealed, wait_complete, wait_refusal},
    json,
    network::{Network, Options},
    wallet::check_wallets,
};
use serde_json::{Value, json as j};

const REPLY_TIMEOUT_MS: u64 = 8_000;
const WAIT: Duration = Duration::from_secs(60);

/// A beneficiary, `n` fiduciaries (restartable: fixed IPFS ports; the
/// `test-faults` build, for its export of shares) and a principal, all
/// dialling each other.
fn start(n: usize) -> Network {
    Network::start(&Options {
        fiduciaries: n,
        test_builds: true,
        restartable: true,
        reply_timeout_ms: REPLY_TIMEOUT_MS,
        ..Options::default()
    })
}

/// What these tests do with a network.
trait Reshares {
    fn order(&self, positions: &[usize], threshold: usize, reference: &str) -> Value;
    fn pick(&self, positions: &[usize]) -> Vec<String>;
    fn reshare(&self, reference: &str, target: Option<(&[usize], usize)>) -> (u16, Value);
    fn exported(&self, position: usize, order_cid: &str) -> Value;
    fn share(&self, position: usize, order_cid: &str, epoch: u32) -> SecretScalar;
    fn redeem_and_check(&self, reference: &str, address: &Value) -> Value;
}

impl Reshares for Network {
    fn order(&self, positions: &[usize], threshold: usize, reference: &str) -> Value {
        let (status, v) = custody::order(
            &self.principal,
            &j!({"fiduciaries": self.pick(positions), "threshold": threshold,
                 "beneficiary": self.beneficiary.id(), "coin": "btc", "reference": reference}),
        );
        assert_eq!(
            status,
            201,
            "order {reference}: {v}\n{}",
            self.principal.log()
        );
        v
    }

    fn pick(&self, positions: &[usize]) -> Vec<String> {
        positions.iter().map(|&p| self.ids[p].clone()).collect()
    }

    /// `POST .../refresh` or, with a target, `.../reshare`.
    fn reshare(&self, reference: &str, target: Option<(&[usize], usize)>) -> (u16, Value) {
        let (path, body) = match target {
            None => (format!("/v1/custody/orders/{reference}/refresh"), None),
            Some((positions, t)) => (
                format!("/v1/custody/orders/{reference}/reshare"),
                Some(j!({"fiduciaries": self.pick(positions), "threshold": t}).to_string()),
            ),
        };
        let (status, text) = self
            .principal
            .call("POST", &path, body.as_deref().map(str::as_bytes));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The shares fiduciary `position` holds of `order_cid`, by epoch.
    fn exported(&self, position: usize, order_cid: &str) -> Value {
        let (status, text) =
            self.fiduciaries[position].get_auth(&format!("/v1/fiduciary/test/shares/{order_cid}"));
        assert_eq!(status, 200, "{text}");
        json(&text)
    }

    fn share(&self, position: usize, order_cid: &str, epoch: u32) -> SecretScalar {
        let shares = self.exported(position, order_cid);
        let hex_share = shares[epoch.to_string()].as_str().unwrap_or_else(|| {
            panic!("fiduciary {position} has no share of epoch {epoch}: {shares}")
        });
        SecretScalar::from_bytes(&hex::decode(hex_share).unwrap().try_into().unwrap()).unwrap()
    }

    /// Redeems through the principal and checks the released wallet with
    /// the independent derivation; returns it.
    fn redeem_and_check(&self, reference: &str, address: &Value) -> Value {
        let (status, v) = redeem(&self.principal, reference, None);
        assert_eq!(status, 202, "redeem {reference}: {v}");
        let mut wallet = wait_complete(&self.beneficiary, reference, WAIT);
        assert_eq!(&wallet["address"], address, "{wallet}");
        let (_, o) = order_view(&self.principal, reference);
        wallet["legacy_address"] = o["legacy_address"].clone();
        check_wallets(std::slice::from_ref(&wallet));
        wallet
    }
}

/// Whether Shamir shares `(index, share)` interpolate to the fiduciaries'
/// key K = P - B of the order `o` (B from the beneficiary's document).
fn rebuilds_key(shares: &[(u32, &SecretScalar)], o: &Value, beneficiary: &Node) -> bool {
    let shares: Vec<Share> = shares
        .iter()
        .map(|(i, s)| Share::new(*i, *s.as_scalar()).unwrap())
        .collect();
    let k = shamir::interpolate_at_zero(&shares).unwrap();
    let b = keys::decode_public_key(
        &hex::decode(beneficiary.identity()["beneficiary_key"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let p =
        keys::decode_public_key(&hex::decode(o["public_key"].as_str().unwrap()).unwrap()).unwrap();
    let x = milagro_custody::ProjectivePoint::mul_by_generator(&k) + b.to_projective();
    keys::point_to_public_key(&x).ok() == Some(p)
}

#[test]
fn a_refreshed_wallet_keeps_its_address_and_old_shares_are_useless() {
    let mut net = start(3);
    let o = net.order(&[0, 1, 2], 2, "refreshed");
    let order_cid = o["order_cid"].as_str().unwrap().to_string();
    let old_first = net.share(0, &order_cid, 0);
    let old_second = net.share(1, &order_cid, 0);
    assert!(rebuilds_key(
        &[(1, &old_first), (2, &old_second)],
        &o,
        &net.beneficiary
    ));

    for epoch in 1..=2 {
        let (status, v) = net.reshare("refreshed", None);
        assert_eq!(status, 200, "refresh {epoch}: {v}\n{}", net.principal.log());
        assert_eq!(v["epoch"], epoch, "{v}");
        assert_eq!(v["address"], o["address"], "{v}");
        assert_eq!(v["public_key"], o["public_key"], "{v}");
    }
    // Every fiduciary takes epoch 2 and erases what it held before.
    let deadline = Instant::now() + WAIT;
    for position in 0..3 {
        loop {
            let shares = net.exported(position, &order_cid);
            if shares.as_object().unwrap().keys().eq(["2"]) {
                break;
            }
            assert!(Instant::now() < deadline, "fiduciary {position}: {shares}");
            thread::sleep(Duration::from_millis(100));
        }
    }
    let new: Vec<SecretScalar> = (0..3).map(|p| net.share(p, &order_cid, 2)).collect();
    assert!(rebuilds_key(
        &[(2, &new[1]), (3, &new[2])],
        &o,
        &net.beneficiary
    ));
    // A share from before the refreshes does not combine with new ones.
    for (other, new_share) in [(2, &new[1]), (3, &new[2])] {
        assert!(!rebuilds_key(
            &[(1, &old_first), (other, new_share)],
            &o,
            &net.beneficiary
        ));
    }
    assert!(!rebuilds_key(
        &[(1, &old_first), (2, &old_second), (3, &new[2])],
        &o,
        &net.beneficiary
    ));

    // Any 2 of the 3 release it: the first is down.
    net.fiduciaries[0].kill();
    let wallet = net.redeem_and_check("refreshed", &o["address"]);
    assert_eq!(wallet["epoch"], 2, "{wallet}");
}

#[test]
fn a_2_of_3_wallet_reshared_to_3_of_4_with_one_fiduciary_replaced() {
    let net = start(5);
    let o = net.order(&[0, 1, 2], 2, "reshared");
    let order_cid = o["order_cid"].as_str().unwrap().to_string();
    let departing = net.share(2, &order_cid, 0);

    // Fiduciary 3 leaves; 4 and 5 join; t from 2 to 3.
    let (status, v) = net.reshare("reshared", Some((&[0, 1, 3, 4], 3)));
    assert_eq!(status, 200, "reshare: {v}\n{}", net.principal.log());
    assert_eq!(v["epoch"], 1);
    assert_eq!(v["address"], o["address"]);
    assert_eq!(v["sharing"]["threshold"], 3);
    assert_eq!(v["sharing"]["fiduciaries"], j!(net.pick(&[0, 1, 3, 4])));

    // The departing fiduciary erases its share and says it left.
    let deadline = Instant::now() + WAIT;
    loop {
        let shares = net.exported(2, &order_cid);
        let (_, held) = net.fiduciaries[2].get_auth("/v1/fiduciary/shares");
        let held = json(&held)["shares"][0].clone();
        if shares.as_object().unwrap().is_empty() && held["retired"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "{shares} {held}");
        thread::sleep(Duration::from_millis(100));
    }
    let new: Vec<SecretScalar> = (0..4)
        .map(|i| net.share([0, 1, 3, 4][i], &order_cid, 1))
        .collect();
    let indexed: Vec<(u32, &SecretScalar)> = (1..=4).zip(&new).collect();
    assert!(rebuilds_key(&indexed[..3], &o, &net.beneficiary));
    assert!(rebuilds_key(&indexed[1..], &o, &net.beneficiary));
    // The departing share, under its old index or any new one, with any two
    // new shares, is not the key; nor are two new shares alone.
    for pair in [[0, 1], [0, 2], [1, 3], [2, 3]] {
        let two = [indexed[pair[0]], indexed[pair[1]]];
        assert!(!rebuilds_key(&two, &o, &net.beneficiary));
        for index in 1..=4u32 {
            if two.iter().any(|(i, _)| *i == index) {
                continue;
            }
            let mut three = two.to_vec();
            three.push((index, &departing));
            assert!(
                !rebuilds_key(&three, &o, &net.beneficiary),
                "{pair:?} + {index}"
            );
        }
    }
    let wallet = net.redeem_and_check("reshared", &o["address"]);
    assert_eq!(wallet["epoch"], 1, "{wallet}");
    assert_eq!(wallet["shares_needed"], 3, "{wallet}");
}

#[test]
fn a_fiduciary_killed_during_a_refresh_or_reshare_leaves_the_wallet_redeemable() {
    const WALLETS: usize = 6;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = XorShift(seed);
    let mut net = start(4);
    let mut orders = Vec::new();
    for w in 0..WALLETS {
        orders.push(net.order(&[0, 1, 2], 2, &format!("crash-{w}")));
    }
    let (mut on_old, mut on_new) = (0, 0);
    for (w, o) in orders.iter().enumerate() {
        let reference = format!("crash-{w}");
        // Even wallets are refreshed; odd ones move to fiduciaries 1, 2, 4
        // (2 of 3): the killed one may be a dealer, a new member or both.
        let target: Option<(&[usize], usize)> = (w % 2 == 1).then_some((&[0, 1, 3][..], 2));
        let involved: Vec<usize> = match target {
            None => vec![0, 1, 2],
            Some(_) => vec![0, 1, 2, 3],
        };
        let victim = involved[rng.next(involved.len() as u64) as usize];
        let delay = Duration::from_millis(rng.next(1_500));
        let (status, answer) = thread::scope(|s| {
            let call = s.spawn(|| net.reshare(&reference, target));
            thread::sleep(delay);
            net.fiduciaries[victim].crash();
            call.join().unwrap()
        });
        net.fiduciaries[victim].restart();
        // Redeemed at once, whatever the reshare got to: the sharing the
        // principal holds now must release the key.
        let (_, view) = order_view(&net.principal, &reference);
        let epoch = view["epoch"].as_u64().unwrap();
        eprintln!(
            "wallet {w}: fiduciary {} killed after {delay:?}: reshare answered {status}, epoch {epoch}",
            victim + 1
        );
        assert!(
            matches!(status, 200 | 504),
            "{status} {answer}\n{}",
            net.principal.log()
        );
        let wallet = net.redeem_and_check(&reference, &o["address"]);
        assert_eq!(wallet["epoch"], epoch, "{wallet}");
        if epoch == 0 {
            on_old += 1;
        } else {
            on_new += 1;
        }
    }
    eprintln!(
        "{WALLETS} wallets, one fiduciary killed in each refresh or reshare: {on_old} redeemed on the old sharing, {on_new} on the new"
    );
}

#[test]
fn strangers_cannot_start_finish_or_feed_a_reshare() {
    let net = start(3);
    let o = net.order(&[0, 1, 2], 2, "guarded");
    let outsider = Node::start(
        NodeConfig::new("outsider")
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {:?}\n",
                peers(&[&net.fiduciaries[0], &net.principal, &net.beneficiary])
            ))
            .plugin(probe(&[])),
    );
    // The real order and sharing, as anyone who saw the order could know them.
    let order = Order {
        reference: "guarded".into(),
        coin: Coin::Btc,
        principal: net.principal.id(),
        beneficiary: net.beneficiary.id(),
        fiduciaries: net.pick(&[0, 1, 2]),
        threshold: 2,
    };
    let previous = Sharing {
        fiduciaries: order.fiduciaries.clone(),
        threshold: 2,
        share_public_keys: o["fiduciaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                keys::decode_public_key(
                    &hex::decode(f["share_public_key"].as_str().unwrap()).unwrap(),
                )
                .unwrap()
            })
            .collect(),
        commitments: None,
    };
    // A reshare moving the wallet to the outsider alone, 1 of 1.
    let reshare = Reshare {
        order,
        epoch: 1,
        previous: PublicShares::of(&previous),
        dealers: vec![1, 2, 3],
        fiduciaries: vec![outsider.id()],
        threshold: 1,
    };
    let cid = send_sealed(&outsider, &reshare, &net.ids[0], &[]);
    let refusal = wait_refusal(&net.fiduciaries[0], "/v1/fiduciary/refusals", &cid, WAIT);
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("not signed by the order's principal"),
        "{refusal}"
    );
    // Its "completion", with a share the outsider knows, told to a
    // fiduciary (to make it erase its share) and to the beneficiary.
    let mine = SecretScalar::random().unwrap();
    let dealt = Commitments::of(&Polynomial::random(1).unwrap());
    let report = ReshareCommitment::new(
        &reshare.cid().unwrap(),
        &outsider.id(),
        &mine,
        &[dealt.clone(), dealt.clone(), dealt],
    )
    .unwrap();
    let forged = Reshared::assemble(reshare, std::slice::from_ref(&report)).unwrap();
    for (node, path, beneficiary) in [
        (&net.fiduciaries[0], "/v1/fiduciary/refusals", false),
        (&net.beneficiary, "/v1/beneficiary/refusals", true),
    ] {
        let cid = match beneficiary {
            false => send_sealed(&outsider, &forged, &node.id(), &[]),
            true => send_sealed(&outsider, &ResharedNotice(forged.clone()), &node.id(), &[]),
        };
        let refusal = wait_refusal(node, path, &cid, WAIT);
        assert!(
            refusal["reason"]
                .as_str()
                .unwrap()
                .contains("not signed by the order's principal"),
            "{refusal}"
        );
    }
    // A report for a reshare the principal never made.
    let cid = send_sealed(&outsider, &report, &net.principal.id(), &[]);
    let refusal = wait_refusal(&net.principal, "/v1/custody/refusals", &cid, WAIT);
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("no such reshare"),
        "{refusal}"
    );
    // Nothing moved: every fiduciary still holds the order's own share,
    // and the wallet is released from it.
    let order_cid = o["order_cid"].as_str().unwrap();
    for position in 0..3 {
        let shares = net.exported(position, order_cid);
        assert!(shares.as_object().unwrap().keys().eq(["0"]), "{shares}");
    }
    let wallet = net.redeem_and_check("guarded", &o["address"]);
    assert_eq!(wallet["epoch"], 0, "{wallet}");
}

#[test]
fn the_beneficiary_asks_for_a_refresh_and_a_stranger_cannot() {
    let net = start(2);
    let o = net.order(&[0, 1], 2, "asked");
    // The order is ready at the principal before its notice reaches the
    // beneficiary, which knows no wallet until then.
    custody::wait_wallet(&net.beneficiary, "asked", WAIT, |_| true);
    let (status, body) =
        net.beneficiary
            .call("POST", "/v1/beneficiary/wallets/asked/refresh", None);
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, view) = order_view(&net.principal, "asked");
        let (_, w) = custody::wallet(&net.beneficiary, "asked");
        if view["epoch"] == 1 && w["epoch"] == 1 {
            assert_eq!(view["address"], o["address"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{view}\n{w}\n{}",
            net.principal.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
    // A fiduciary of the wallet is not its beneficiary: refused.
    let outsider = Node::start(
        NodeConfig::new("outsider")
            .section(&format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = {:?}\n",
                peers(&[&net.principal])
            ))
            .plugin(probe(&[])),
    );
    let request = RefreshRequest {
        order_cid: o["order_cid"].as_str().unwrap().try_into().unwrap(),
    };
    let cid = send_sealed(&outsider, &request, &net.principal.id(), &[]);
    let refusal = wait_refusal(&net.principal, "/v1/custody/refusals", &cid, WAIT);
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("only the order's beneficiary"),
        "{refusal}"
    );
    let (_, view) = order_view(&net.principal, "asked");
    assert_eq!(view["epoch"], 1, "{view}");
    let wallet = net.redeem_and_check("asked", &o["address"]);
    assert_eq!(wallet["epoch"], 1, "{wallet}");
}
