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

//! The bodies' encodings, limits and refusals.

use super::*;
use crate::reshare::Sharing;

fn node(n: u8) -> String {
    cid_of(&[n]).to_string()
}

fn order() -> Order {
    Order {
        reference: "order-1".into(),
        coin: Coin::Btc,
        principal: node(1),
        beneficiary: node(2),
        fiduciaries: vec![node(3), node(4)],
        threshold: 2,
    }
}

fn roundtrip<T: Body + PartialEq + std::fmt::Debug>(v: &T) -> Vec<u8> {
    let bytes = encode(v).unwrap();
    let back: T = decode(&bytes, &Limits::default()).unwrap();
    assert_eq!(&back, v);
    bytes
}

#[test]
fn order_roundtrip_and_cid_is_deterministic() {
    let o = order();
    let bytes = roundtrip(&o);
    assert_eq!(order_cid(&o).unwrap(), cid_of(&bytes));
    assert_eq!(o.cid().unwrap(), order().cid().unwrap());
    let mut other = order();
    other.reference = "order-2".into();
    assert_ne!(other.cid().unwrap(), o.cid().unwrap());
    assert_eq!(o.fiduciary_index(&node(4)), Some(2));
    assert!(!o.is_threshold());
}

/// The test vector written down in docs/custody.md.
#[test]
fn order_vector() {
    let o = order();
    assert_eq!(
        o.principal,
        "bafyreicl6ujc6ncfktctxxroxognfn7d2fqavvrryoc2lv6m4i6hpbkfti"
    );
    assert_eq!(
        hex::encode(encode(&o).unwrap()),
        concat!(
            "a664636f696e63627463697072696e636970616c783b62616679726569636c36",
            "756a63366e63666b7463747878726f786f676e666e3764326671617676727279",
            "6f63326c76366d3469366870626b667469697265666572656e6365676f726465",
            "722d31697468726573686f6c64026b62656e6566696369617279783b62616679",
            "72656967337967326d73616837347367766f7732357578646471626162657833",
            "66336d68366879736573733377356b6d676976367a71796b6669647563696172",
            "69657382783b6261667972656961696a377771726f6c797635677832676c6b6f",
            "72646b7132327961637067673233626477797765656e776c6b6e6b33377a6a79",
            "75783b62616679726569686666776f6662646371656e647469746d6d6136777a",
            "6473367761326670793570376d6b6a706179766174737279647365366f65",
        )
    );
    assert_eq!(
        o.cid().unwrap().to_string(),
        "bafyreidccesamif5tnx4p5mylpd6l2kiabpjdwfr66xxxa2vyxzwysp7za"
    );
}

#[test]
fn coin_names() {
    for (c, s) in [
        (Coin::Btc, "btc"),
        (Coin::BtcTestnet, "btc-testnet"),
        (Coin::Eth, "eth"),
        (Coin::BtcTaproot, "btc-taproot"),
        (Coin::BtcTestnetTaproot, "btc-testnet-taproot"),
    ] {
        assert_eq!(c.as_str(), s);
        assert_eq!(s.parse::<Coin>().unwrap(), c);
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
    }
    assert!("doge".parse::<Coin>().is_err());
}

#[test]
fn commitment_roundtrip_and_verify() {
    let o = order();
    let cid = o.cid().unwrap();
    let k = SecretScalar::random().unwrap();
    let c = Commitment::new(&cid, &o.fiduciaries[0], &k).unwrap();
    roundtrip(&c);
    assert_eq!(c.verify(&cid, &o.fiduciaries[0]).unwrap(), k.public_key());
    assert_eq!(c.verify(&cid, &o.fiduciaries[1]), Err(Error::InvalidProof));
    let other = cid_of(b"other");
    assert!(c.verify(&other, &o.fiduciaries[0]).is_err());
}

#[test]
fn release_roundtrip_hides_share() {
    let k = SecretScalar::random().unwrap();
    let r = Release {
        order_cid: order().cid().unwrap(),
        share: k.clone(),
        epoch: None,
    };
    roundtrip(&r);
    let dbg = format!("{r:?}");
    assert!(!dbg.contains(&hex::encode(*k.to_bytes())));
    assert!(dbg.contains("Release"));
}

#[test]
fn dkg_messages_roundtrip_and_hide_the_share() {
    let cid = order().cid().unwrap();
    let dealing = feldman::deal(2, 3).unwrap();
    let deal = Deal::new(&cid, &dealing.commitments, &dealing.shares[1]).unwrap();
    roundtrip(&deal);
    assert_eq!(deal.commitments().unwrap(), dealing.commitments);
    assert!(!format!("{deal:?}").contains(&hex::encode(dealing.shares[1].value_bytes())));
    roundtrip(&Dealt {
        order_cid: cid,
        commitments: deal.commitments.clone(),
    });
    roundtrip(&Complaint {
        order_cid: cid,
        dealer: node(3),
    });
    let bad = Complaint {
        order_cid: cid,
        dealer: "not-a-node".into(),
    };
    assert!(encode(&bad).is_err());
    let empty = Dealt {
        order_cid: cid,
        commitments: Vec::new(),
    };
    assert!(encode(&empty).is_err());
}

#[test]
fn redeem_and_notice_roundtrip() {
    let cid = order().cid().unwrap();
    roundtrip(&Redeem {
        order_cid: cid,
        reference: "order-1".into(),
        new_beneficiary: None,
        epoch: None,
    });
    roundtrip(&Redeem {
        order_cid: cid,
        reference: "order-1".into(),
        new_beneficiary: Some(node(9)),
        epoch: None,
    });
    let k = SecretScalar::random().unwrap();
    let pk = keys::encode_public_key(&k.public_key());
    let notice = Notice {
        order: Order {
            coin: Coin::Eth,
            ..order()
        },
        order_cid: Order {
            coin: Coin::Eth,
            ..order()
        }
        .cid()
        .unwrap(),
        reference: "order-1".into(),
        coin: Coin::Eth,
        public_key: pk,
        address: Coin::Eth.address(&k.public_key()).unwrap(),
        threshold: 2,
        fiduciaries: vec![
            NoticeFiduciary {
                id: node(3),
                share_public_key: pk,
                commitment_cid: cid_of(b"c1"),
            },
            NoticeFiduciary {
                id: node(4),
                share_public_key: pk,
                commitment_cid: cid_of(b"c2"),
            },
        ],
        dealer_commitments: None,
    };
    roundtrip(&notice);
    let mut t = notice.clone();
    t.order.threshold = 1;
    t.order_cid = t.order.cid().unwrap();
    t.threshold = 1;
    assert!(encode(&t).is_err(), "t < n needs dealer commitments");
    t.dealer_commitments = Some(vec![vec![ByteArray::new(pk)], vec![ByteArray::new(pk)]]);
    roundtrip(&t);
}

#[test]
fn validation_rejections() {
    let bad = |f: &dyn Fn(&mut Order)| {
        let mut o = order();
        f(&mut o);
        encode(&o).unwrap_err()
    };
    bad(&|o| o.reference.clear());
    bad(&|o| o.reference = "x".repeat(300));
    bad(&|o| o.reference = "a\nb".into());
    bad(&|o| o.principal = "not-a-cid".into());
    bad(&|o| o.beneficiary = o.beneficiary.to_uppercase());
    bad(&|o| o.fiduciaries.clear());
    bad(&|o| o.fiduciaries.push(node(3)));
    bad(&|o| o.threshold = 0);
    bad(&|o| o.threshold = 3);
    bad(&|o| o.fiduciaries = (0..40).map(node).collect());
    // A CIDv0 (base58 "Qm…") node ID is not canonical.
    let v0 = Cid::new_v0(*cid_of(&[1]).hash()).unwrap().to_string();
    bad(&|o| o.principal = v0.clone());
}

#[test]
fn strict_decoding() {
    let limits = Limits::default();
    let bytes = encode(&order()).unwrap();
    // Size limit first.
    let small = Limits {
        max_message_bytes: bytes.len() - 1,
        ..limits
    };
    assert!(matches!(
        decode::<Order>(&bytes, &small),
        Err(Error::Oversize { .. })
    ));
    // Truncation and trailing data.
    assert!(decode::<Order>(&bytes[..bytes.len() - 1], &limits).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode::<Order>(&trailing, &limits).is_err());
    // Unknown field.
    #[derive(Serialize)]
    struct Extra<'a> {
        #[serde(flatten)]
        o: &'a Order,
        extra: u8,
    }
    let o = order();
    let extra = serde_ipld_dagcbor::to_vec(&Extra { o: &o, extra: 1 }).unwrap();
    assert!(matches!(
        decode::<Order>(&extra, &limits),
        Err(Error::Malformed(_) | Error::NonCanonical)
    ));
    // Unknown coin.
    let json = serde_json::to_value(&o).unwrap();
    let mut v = json.clone();
    v["coin"] = "doge".into();
    let cbor = serde_ipld_dagcbor::to_vec(&v).unwrap();
    assert!(matches!(
        decode::<Order>(&cbor, &limits),
        Err(Error::Malformed(_))
    ));
    // Missing field.
    let mut v = json.clone();
    v.as_object_mut().unwrap().remove("threshold");
    let cbor = serde_ipld_dagcbor::to_vec(&v).unwrap();
    assert!(matches!(
        decode::<Order>(&cbor, &limits),
        Err(Error::Malformed(_))
    ));
    // Non-minimal integer (threshold 2 as a 1-byte-argument uint 0x18 0x02).
    let pos = bytes
        .windows(10)
        .position(|w| w == b"\x69threshold")
        .unwrap()
        + 10;
    assert_eq!(bytes[pos], 0x02);
    let mut nonmin = bytes[..pos].to_vec();
    nonmin.extend_from_slice(&[0x18, 0x02]);
    nonmin.extend_from_slice(&bytes[pos + 1..]);
    assert_eq!(decode::<Order>(&nonmin, &limits), Err(Error::NonCanonical));
    // Garbage.
    assert!(decode::<Order>(&[0xff, 0x00, 0x13], &limits).is_err());
}

#[test]
fn wrong_length_keys_and_bad_shares_rejected() {
    let cid = order().cid().unwrap();
    let k = SecretScalar::random().unwrap();
    let c = Commitment::new(&cid, &node(3), &k).unwrap();
    #[derive(Serialize)]
    struct Loose<'a> {
        order_cid: Cid,
        #[serde(with = "serde_bytes")]
        share_public_key: &'a [u8],
        #[serde(with = "serde_bytes")]
        proof: &'a [u8],
    }
    let limits = Limits::default();
    let enc = |pk: &[u8], proof: &[u8]| {
        serde_ipld_dagcbor::to_vec(&Loose {
            order_cid: cid,
            share_public_key: pk,
            proof,
        })
        .unwrap()
    };
    decode::<Commitment>(&enc(&c.share_public_key, &c.proof), &limits).unwrap();
    assert!(decode::<Commitment>(&enc(&c.share_public_key[..32], &c.proof), &limits).is_err());
    assert!(decode::<Commitment>(&enc(&c.share_public_key, &c.proof[..64]), &limits).is_err());
    assert!(decode::<Commitment>(&enc(&[0u8; 33], &c.proof), &limits).is_err());

    #[derive(Serialize)]
    struct RawRelease<'a> {
        order_cid: Cid,
        #[serde(with = "serde_bytes")]
        share: &'a [u8],
    }
    for share in [&[0u8; 32][..], &[0xff; 32][..], &[1u8; 31][..]] {
        let b = serde_ipld_dagcbor::to_vec(&RawRelease {
            order_cid: cid,
            share,
        })
        .unwrap();
        let err = decode::<Release>(&b, &limits).unwrap_err();
        assert!(!format!("{err}").contains("ffff"), "{err}");
    }
}

/// A whole reshare of a 2-of-2 additive sharing to 2 of 3, run in memory:
/// the reshare, its announcement, and the new fiduciaries' secrets.
fn reshared() -> (Reshared, Vec<SecretScalar>) {
    let ks: Vec<SecretScalar> = (0..2).map(|_| SecretScalar::random().unwrap()).collect();
    let previous = Sharing {
        fiduciaries: order().fiduciaries,
        threshold: 2,
        share_public_keys: ks.iter().map(SecretScalar::public_key).collect(),
        commitments: None,
    };
    let reshare = Reshare {
        order: order(),
        epoch: 1,
        previous: PublicShares::of(&previous),
        dealers: vec![1, 2],
        fiduciaries: vec![node(4), node(5), node(6)],
        threshold: 2,
    };
    let cid = reshare.cid().unwrap();
    let expected = reshare.expected_constants().unwrap();
    let polys: Vec<_> = ks
        .iter()
        .map(|k| crate::reshare::dealer_polynomial(k, &k256::Scalar::ONE, 2).unwrap())
        .collect();
    let commitments: Vec<Commitments> = polys.iter().map(Commitments::of).collect();
    let mut reports = Vec::new();
    let mut secrets = Vec::new();
    for (j, id) in reshare.fiduciaries.iter().enumerate() {
        let deals: Vec<Share> = polys
            .iter()
            .map(|p| p.share(j as u32 + 1).unwrap())
            .collect();
        let pairs: Vec<(&Commitments, &Share)> = commitments.iter().zip(&deals).collect();
        let share = crate::reshare::combine_deals(j as u32 + 1, 2, 3, &pairs, &expected).unwrap();
        let report = ReshareCommitment::new(&cid, id, &share, &commitments).unwrap();
        assert_eq!(report.verify(&reshare, id).unwrap(), j as u32 + 1);
        reports.push(roundtrip(&report));
        secrets.push(share);
    }
    let reports: Vec<ReshareCommitment> = reports
        .iter()
        .map(|b| decode(b, &Limits::default()).unwrap())
        .collect();
    (Reshared::assemble(reshare, &reports).unwrap(), secrets)
}

#[test]
fn a_reshare_announcement_verifies_and_every_forgery_is_refused() {
    let (good, secrets) = reshared();
    roundtrip(&good.reshare);
    roundtrip(&good);
    let sharing = good.verify().unwrap();
    assert_eq!(
        sharing.group_key().unwrap(),
        good.reshare
            .previous
            .sharing()
            .unwrap()
            .group_key()
            .unwrap()
    );
    assert_eq!(sharing.check_release(&node(5), &secrets[1]).unwrap(), 2);

    // A proof moved to another fiduciary, a public share replaced by one
    // whose secret the forger knows, a dealer's constant moved: refused.
    let mut swapped = good.clone();
    swapped.proofs.swap(0, 1);
    assert_eq!(swapped.verify().unwrap_err(), Error::InvalidProof);
    let mut rogue = good.clone();
    let forged = SecretScalar::random().unwrap();
    let context = PokContext {
        order_cid: &good.reshare.cid().unwrap().to_bytes(),
        fiduciary: &node(6),
    };
    rogue.share_public_keys[2] = ByteArray::new(keys::encode_public_key(&forged.public_key()));
    rogue.proofs[2] = ByteArray::new(pok::prove(&forged, &context).unwrap().to_bytes());
    assert_eq!(
        rogue.verify().unwrap_err(),
        Error::ShareMismatch { index: 3 }
    );
    let mut moved = good.clone();
    moved.dealer_commitments[0][0] = ByteArray::new(keys::encode_public_key(
        &SecretScalar::random().unwrap().public_key(),
    ));
    assert_eq!(moved.verify().unwrap_err(), Error::InconsistentDealings);
    // A report checked against another reshare, or from someone not in it.
    let mut other = good.reshare.clone();
    other.threshold = 3;
    let cid = good.reshare.cid().unwrap();
    let commitments = decode_dealers(&Some(good.dealer_commitments.clone()))
        .unwrap()
        .unwrap();
    let report = ReshareCommitment::new(&cid, &node(4), &secrets[0], &commitments).unwrap();
    report.verify(&good.reshare, &node(4)).unwrap();
    assert!(report.verify(&other, &node(4)).is_err());
    assert!(report.verify(&good.reshare, &node(3)).is_err());
    assert!(report.verify(&good.reshare, &node(5)).is_err());
}

#[test]
fn malformed_reshares_are_refused() {
    let (good, _) = reshared();
    let refused = |f: &dyn Fn(&mut Reshare)| {
        let mut r = good.reshare.clone();
        f(&mut r);
        let bytes = serde_ipld_dagcbor::to_vec(&r).unwrap();
        assert!(
            decode::<Reshare>(&bytes, &Limits::default()).is_err(),
            "{r:?}"
        );
    };
    refused(&|r| r.epoch = 0);
    refused(&|r| r.dealers = vec![2, 1]);
    refused(&|r| r.dealers = vec![1]);
    refused(&|r| r.dealers = vec![1, 3]);
    refused(&|r| r.fiduciaries = vec![node(4), node(4)]);
    refused(&|r| r.threshold = 4);
    refused(&|r| r.threshold = 0);
    refused(&|r| r.fiduciaries = Vec::new());
    refused(&|r| r.previous.share_public_keys.pop().map(|_| ()).unwrap_or(()));
    refused(&|r| r.previous.threshold = 3);
    refused(&|r| r.fiduciaries = (0..40).map(|i| node(i as u8)).collect());
}

/// Commitments of a fresh signer, on the wire.
fn nonce_commitments() -> NonceCommitments {
    let (_, c) = crate::signing::commit(&SecretScalar::random().unwrap()).unwrap();
    NonceCommitments::from_signing(&c).unwrap()
}

fn sign_package() -> SignPackage {
    SignPackage {
        order_cid: order().cid().unwrap(),
        epoch: None,
        session: ByteArray::new([1; SESSION_LEN]),
        message: ByteArray::new([2; MESSAGE_LEN]),
        wallet_key: ByteArray::new(keys::encode_public_key(
            &SecretScalar::random().unwrap().public_key(),
        )),
        signers: vec![
            PackageSigner {
                index: 0,
                commitments: nonce_commitments(),
            },
            PackageSigner {
                index: 2,
                commitments: nonce_commitments(),
            },
        ],
    }
}

#[test]
fn signing_bodies_roundtrip() {
    let cid = order().cid().unwrap();
    roundtrip(&SignRequest {
        order_cid: cid,
        epoch: Some(3),
        session: ByteArray::new([9; SESSION_LEN]),
        message: ByteArray::new([8; MESSAGE_LEN]),
    });
    roundtrip(&SignCommitment {
        order_cid: cid,
        session: ByteArray::new([9; SESSION_LEN]),
        commitments: nonce_commitments(),
    });
    let package = sign_package();
    roundtrip(&package);
    assert_eq!(package.to_signing().unwrap().signing_commitments().len(), 2);
    roundtrip(&SignShare {
        order_cid: cid,
        session: ByteArray::new([9; SESSION_LEN]),
        share: ByteArray::new([7; 32]),
    });
}

/// Hostile signing bodies: each is refused when decoded, before any
/// plugin sees it.
#[test]
fn malformed_signing_bodies_are_refused() {
    let limits = Limits::default();
    let refused = |p: &SignPackage| {
        decode::<SignPackage>(&serde_ipld_dagcbor::to_vec(p).unwrap(), &limits).is_err()
    };
    // No fiduciary; the beneficiary missing or not first; repeated or
    // unordered indices; too many signers.
    let mut p = sign_package();
    p.signers.truncate(1);
    assert!(refused(&p));
    let mut p = sign_package();
    p.signers[0].index = 1;
    assert!(refused(&p));
    let mut p = sign_package();
    p.signers[1].index = 0;
    assert!(refused(&p));
    let mut p = sign_package();
    p.signers.push(p.signers[1].clone());
    assert!(refused(&p));
    let mut p = sign_package();
    let extra = p.signers[1].clone();
    p.signers = std::iter::once(p.signers[0].clone())
        .chain((1..=256).map(|i| PackageSigner {
            index: i,
            ..extra.clone()
        }))
        .collect();
    assert!(refused(&p));
    // Commitments that are not points, or the identity-like zero bytes.
    let mut p = sign_package();
    p.signers[1].commitments.hiding = ByteArray::new([0; PUBLIC_KEY_LEN]);
    assert!(refused(&p));
    let mut p = sign_package();
    let mut bad = [0xff; PUBLIC_KEY_LEN];
    bad[0] = 0x02;
    p.signers[1].commitments.binding = ByteArray::new(bad);
    assert!(refused(&p));
    // A wallet key that is not a point.
    let mut p = sign_package();
    p.wallet_key = ByteArray::new([0x04; PUBLIC_KEY_LEN]);
    assert!(refused(&p));
    // A share at or above the group order.
    let share = SignShare {
        order_cid: order().cid().unwrap(),
        session: ByteArray::new([1; SESSION_LEN]),
        share: ByteArray::new([0xff; 32]),
    };
    assert!(decode::<SignShare>(&serde_ipld_dagcbor::to_vec(&share).unwrap(), &limits).is_err());
    // Wrong lengths: a 31-byte message, a 15-byte session.
    let request = SignRequest {
        order_cid: order().cid().unwrap(),
        epoch: None,
        session: ByteArray::new([1; SESSION_LEN]),
        message: ByteArray::new([2; MESSAGE_LEN]),
    };
    let mut v = serde_json::to_value(&request).unwrap();
    v["message"] = serde_json::Value::Array(vec![1.into(); 31]);
    let bytes = serde_ipld_dagcbor::to_vec(&v).unwrap();
    assert!(decode::<SignRequest>(&bytes, &limits).is_err());
    let mut short = encode(&request).unwrap();
    let pos = short.windows(8).position(|w| w == b"\x67session").unwrap() + 8;
    short[pos] = 0x4f; // bytes(15) header
    short.remove(pos + 1);
    assert!(decode::<SignRequest>(&short, &limits).is_err());
}
