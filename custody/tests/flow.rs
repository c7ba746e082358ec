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

//! The custody flows through the message layer, without transport: every
//! body is encoded to bytes and strictly decoded by its receiver, as the
//! plugins will do. n-of-n and t-of-n (joint-Feldman DKG), with forged
//! commitments, wrong releases and missing fiduciaries.

use milagro_custody::feldman::{self, Commitments, Dealing};
use milagro_custody::keys::{self, SecretScalar};
use milagro_custody::messages::{
    self, Body, Commitment, Limits, Notice, NoticeFiduciary, Order, Release, cid_of,
};
use milagro_custody::shamir::Share;
use milagro_custody::verify::{verify_commitment, wallet_key};
use milagro_custody::{Coin, Error};

fn node(n: u8) -> String {
    cid_of(&[n]).to_string()
}

fn wire<T: Body>(body: &T) -> T {
    let bytes = messages::encode(body).unwrap();
    messages::decode(&bytes, &Limits::default()).unwrap()
}

fn order(n: u8, t: u32, coin: Coin) -> Order {
    Order {
        reference: format!("ref-{n}-{t}"),
        coin,
        principal: node(1),
        beneficiary: node(2),
        fiduciaries: (10..10 + n).map(node).collect(),
        threshold: t,
    }
}

fn notice(order: &Order, p: &k256::PublicKey, commitments: &[Commitment]) -> Notice {
    wire(&Notice {
        order: order.clone(),
        order_cid: order.cid().unwrap(),
        reference: order.reference.clone(),
        coin: order.coin,
        public_key: keys::encode_public_key(p),
        address: order.coin.address(p).unwrap(),
        threshold: order.threshold,
        fiduciaries: order
            .fiduciaries
            .iter()
            .zip(commitments)
            .map(|(id, c)| NoticeFiduciary {
                id: id.clone(),
                share_public_key: c.share_public_key,
                commitment_cid: cid_of(&messages::encode(c).unwrap()),
            })
            .collect(),
        dealer_commitments: commitments[0].dealer_commitments.clone(),
    })
}

#[test]
fn n_of_n_flow() {
    for coin in [Coin::Btc, Coin::BtcTestnet, Coin::Eth] {
        let b = SecretScalar::random().unwrap();
        let o = wire(&order(3, 3, coin));
        let cid = o.cid().unwrap();
        // Each fiduciary draws k_i and commits.
        let ks: Vec<SecretScalar> = (0..3).map(|_| SecretScalar::random().unwrap()).collect();
        let commitments: Vec<Commitment> = o
            .fiduciaries
            .iter()
            .zip(&ks)
            .map(|(id, k)| wire(&Commitment::new(&cid, id, k).unwrap()))
            .collect();
        // The principal verifies and aggregates.
        let verified: Vec<_> = o
            .fiduciaries
            .iter()
            .zip(&commitments)
            .map(|(id, c)| verify_commitment(&o, id, c).unwrap())
            .collect();
        let p = wallet_key(&o, &b.public_key(), &verified).unwrap();
        let n = notice(&o, &p, &commitments);
        assert_eq!(n.beneficiary_public_key().unwrap(), b.public_key());
        // Releases reach the beneficiary.
        let mut releases = Vec::new();
        for (id, k) in o.fiduciaries.iter().zip(&ks) {
            let r = wire(&Release {
                order_cid: cid,
                share: k.clone(),
                epoch: None,
            });
            let idx = n.check_release(id, &r.share).unwrap();
            releases.push((idx, r.share));
        }
        // Missing one: not enough.
        assert!(matches!(
            n.rebuild_secret(&b, &releases[..2]),
            Err(Error::NotEnoughShares { have: 2, need: 3 })
        ));
        let x = n.rebuild_secret(&b, &releases).unwrap();
        assert_eq!(coin.address(&x.public_key()).unwrap(), n.address);
        // A share released by the wrong fiduciary does not pass.
        assert_eq!(
            n.check_release(&o.fiduciaries[0], &ks[1]),
            Err(Error::ShareMismatch { index: 1 })
        );
    }
}

#[test]
fn forged_commitments_are_refused() {
    let o = order(2, 2, Coin::Btc);
    let cid = o.cid().unwrap();
    let k = SecretScalar::random().unwrap();
    let honest = Commitment::new(&cid, &o.fiduciaries[0], &k).unwrap();
    // Replayed by the other fiduciary.
    assert_eq!(
        verify_commitment(&o, &o.fiduciaries[1], &honest).unwrap_err(),
        Error::InvalidProof
    );
    // Replayed for another order.
    let other = order(2, 1, Coin::Btc);
    assert!(verify_commitment(&other, &o.fiduciaries[0], &honest).is_err());
    // A rogue key with a proof for a different key.
    let mut rogue = honest.clone();
    rogue.share_public_key = keys::encode_public_key(&SecretScalar::random().unwrap().public_key());
    assert_eq!(
        verify_commitment(&o, &o.fiduciaries[0], &rogue).unwrap_err(),
        Error::InvalidProof
    );
    // Not a fiduciary of the order.
    assert!(verify_commitment(&o, &node(99), &honest).is_err());
    // n-of-n with dealer commitments attached: refused.
    let mut extra = honest.clone();
    extra.dealer_commitments = Some(vec![]);
    assert!(verify_commitment(&o, &o.fiduciaries[0], &extra).is_err());
}

/// Run the joint-Feldman DKG among the order's fiduciaries; returns each
/// fiduciary's final share and its commitment message.
fn dkg(o: &Order, corrupt_dealer: Option<usize>) -> Result<Vec<(Share, Commitment)>, usize> {
    let n = o.fiduciaries.len();
    let t = o.threshold as usize;
    let cid = o.cid().unwrap();
    let dealings: Vec<Dealing> = (0..n).map(|_| feldman::deal(t, n).unwrap()).collect();
    let all: Vec<Commitments> = dealings.iter().map(|d| d.commitments.clone()).collect();
    let wrong = corrupt_dealer
        .map(|i| Share::new(1, *dealings[i].shares[0].value() + k256::Scalar::ONE).unwrap());
    let mut out = Vec::new();
    for j in 1..=n as u32 {
        let received: Vec<(&Commitments, &Share)> = dealings
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let s = &d.shares[j as usize - 1];
                if corrupt_dealer == Some(i) && j == 1 {
                    (&d.commitments, wrong.as_ref().unwrap())
                } else {
                    (&d.commitments, s)
                }
            })
            .collect();
        let complaints = feldman::verify_dealings(j, &received);
        if let Some(&bad) = complaints.first() {
            return Err(bad);
        }
        let s = feldman::combine_shares(j, &received).unwrap();
        let c = Commitment::new_threshold(&cid, &o.fiduciaries[j as usize - 1], &s, &all).unwrap();
        out.push((s, wire(&c)));
    }
    Ok(out)
}

#[test]
fn t_of_n_flow() {
    for (n, t) in [(3u8, 2u32), (5, 3), (10, 4)] {
        let o = wire(&order(n, t, Coin::Btc));
        let cid = o.cid().unwrap();
        let b = SecretScalar::random().unwrap();
        let results = dkg(&o, None).unwrap();
        let commitments: Vec<Commitment> = results.iter().map(|(_, c)| c.clone()).collect();
        let verified: Vec<_> = o
            .fiduciaries
            .iter()
            .zip(&commitments)
            .map(|(id, c)| verify_commitment(&o, id, c).unwrap())
            .collect();
        let p = wallet_key(&o, &b.public_key(), &verified).unwrap();
        let nt = notice(&o, &p, &commitments);
        assert_eq!(nt.beneficiary_public_key().unwrap(), b.public_key());

        // n - t fiduciaries are gone; one of the remaining releases a wrong share.
        let up: Vec<usize> = (n as usize - t as usize..n as usize).collect();
        let mut releases = Vec::new();
        let liar = SecretScalar::random().unwrap();
        assert!(nt.check_release(&o.fiduciaries[0], &liar).is_err());
        for &pos in &up {
            let r = wire(&Release {
                order_cid: cid,
                share: SecretScalar::from_scalar(*results[pos].0.value()).unwrap(),
                epoch: None,
            });
            let idx = nt.check_release(&o.fiduciaries[pos], &r.share).unwrap();
            assert_eq!(idx as usize, pos + 1);
            releases.push((idx, r.share));
        }
        // t - 1 shares: pending.
        assert!(matches!(
            nt.rebuild_secret(&b, &releases[1..]),
            Err(Error::NotEnoughShares { .. })
        ));
        let x = nt.rebuild_secret(&b, &releases).unwrap();
        assert_eq!(Coin::Btc.address(&x.public_key()).unwrap(), nt.address);
        assert_eq!(x.public_key(), p);
    }
}

#[test]
fn t_of_n_faults_are_named() {
    let o = order(3, 2, Coin::Eth);
    // A dealer that deals a wrong share is named by the receiver's check.
    assert_eq!(dkg(&o, Some(2)).unwrap_err(), 2);

    let results = dkg(&o, None).unwrap();
    let mut commitments: Vec<Commitment> = results.iter().map(|(_, c)| c.clone()).collect();
    // A fiduciary that reports different dealer commitments: inconsistent.
    let other = dkg(&o, None).unwrap();
    let cid = o.cid().unwrap();
    commitments[1] = Commitment::new_threshold(
        &cid,
        &o.fiduciaries[1],
        &other[1].0,
        &other[1].1.dealers().unwrap().unwrap(),
    )
    .unwrap();
    let verified: Vec<_> = o
        .fiduciaries
        .iter()
        .zip(&commitments)
        .map(|(id, c)| verify_commitment(&o, id, c).unwrap())
        .collect();
    let b = SecretScalar::random().unwrap();
    assert_eq!(
        wallet_key(&o, &b.public_key(), &verified).unwrap_err(),
        Error::InconsistentDealings
    );
    // A fiduciary whose S_j does not match the commitments it reports.
    let mut bad = results[0].1.clone();
    let forged = Share::new(1, *results[1].0.value()).unwrap();
    let c = Commitment::new_threshold(
        &cid,
        &o.fiduciaries[0],
        &forged,
        &bad.dealers().unwrap().unwrap(),
    )
    .unwrap();
    bad.share_public_key = c.share_public_key;
    bad.proof = c.proof;
    assert_eq!(
        verify_commitment(&o, &o.fiduciaries[0], &bad).unwrap_err(),
        Error::ShareMismatch { index: 1 }
    );
    // Missing commitments in the t-of-n mode.
    let mut none = results[0].1.clone();
    none.dealer_commitments = None;
    assert!(verify_commitment(&o, &o.fiduciaries[0], &none).is_err());
}
