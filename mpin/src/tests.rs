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

//! Unit tests of the arithmetic, the proof, the encodings and the wire bodies.

use super::*;
use crate::wire::{
    ClientShare, SealedShares, SecretKind, ShareReply, ShareRequest, WireError, proof_context,
};

/// The RFC 9380 suite's own tag for its test vectors.
const RFC_DST: &[u8] = b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// RFC 9380 Appendix J.9.1 (`BLS12381G1_XMD:SHA-256_SSWU_RO_`): msg, P.x, P.y.
fn rfc_vectors() -> Vec<(Vec<u8>, &'static str, &'static str)> {
    let q128 = [b"q128_".as_slice(), &[b'q'; 128]].concat();
    let a512 = [b"a512_".as_slice(), &[b'a'; 512]].concat();
    vec![
        (
            b"".to_vec(),
            "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1",
            "08ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265",
        ),
        (
            b"abc".to_vec(),
            "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903",
            "0b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d",
        ),
        (
            b"abcdef0123456789".to_vec(),
            "11e0b079dea29a68f0383ee94fed1b940995272407e3bb916bbf268c263ddd57a6a27200a784cbc248e84f357ce82d98",
            "03a87ae2caf14e8ee52e51fa2ed8eefe80f02457004ba4d486d6aa1f517c0889501dc7413753f9599b099ebcbbd2d709",
        ),
        (
            q128,
            "15f68eaa693b95ccb85215dc65fa81038d69629f70aeee0d0f677cf22285e7bf58d7cb86eefe8f2e9bc3f8cb84fac488",
            "1807a1d50c29f430b8cafc4f8638dfeeadf51211e1602a5f184443076715f91bb90a48ba1e370edce6ae1062f5e6dd38",
        ),
        (
            a512,
            "082aabae8b7dedb0e78aeb619ad3bfd9277a2f77ba7fad20ef6aabdc6c31d19ba5a6d12283553294c1825c4b3ca2dcfe",
            "05b84ae5a942248eea39e1d91030458c40153f3b654ab7872d779ad1e942856a20c438e8d99bc8abfbf74729ce1f7ac8",
        ),
    ]
}

#[test]
fn hash_to_g1_matches_the_rfc_9380_vectors() {
    for (msg, x, y) in rfc_vectors() {
        let p = hash_to_g1(&msg, RFC_DST).to_uncompressed();
        assert_eq!(
            hex::encode(&p[..48]),
            x,
            "P.x for msg of {} bytes",
            msg.len()
        );
        assert_eq!(
            hex::encode(&p[48..]),
            y,
            "P.y for msg of {} bytes",
            msg.len()
        );
    }
}

#[test]
fn the_mpin_tag_gives_a_different_point() {
    assert_ne!(hash_id(b"abc"), hash_to_g1(b"abc", RFC_DST));
    assert_eq!(hash_id(b"abc"), hash_to_g1(b"abc", MPIN_DST));
}

fn be(hex: &str) -> Scalar {
    scalar_from_be_hex(hex).unwrap()
}

/// The fixed inputs of the DLEQ test vector in docs/dta.md.
pub(crate) const VECTOR_S: &str =
    "1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f";
pub(crate) const VECTOR_K: &str =
    "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e";
pub(crate) const VECTOR_ID: &str = "alice@example.org";
pub(crate) const VECTOR_REQUEST_CID: &str = "bafyreitestvectorrequest";

#[test]
fn the_dleq_test_vector_of_docs_dta_md() {
    let s = MasterShare::from_bytes(&be(VECTOR_S).to_bytes_le()).unwrap();
    let p = s.public_key();
    let h = hash_id(VECTOR_ID.as_bytes());
    let share = s.client_share(VECTOR_ID.as_bytes());
    let context = proof_context(VECTOR_REQUEST_CID);
    let proof = DleqProof::prove_with_nonce(&be(VECTOR_S), &be(VECTOR_K), &p, &h, &share, &context);
    assert_eq!(g1_to_hex(&p), VECTOR_P);
    assert_eq!(g1_to_hex(&h), VECTOR_H);
    assert_eq!(g1_to_hex(&share), VECTOR_C);
    assert_eq!(proof.to_hex(), VECTOR_PROOF);
    assert!(proof.verify(&p, VECTOR_ID.as_bytes(), &share, &context));
    assert_eq!(DleqProof::from_hex(VECTOR_PROOF).unwrap(), proof);
}

pub(crate) const VECTOR_P: &str = "aac58e6b61b84e4daece1cb3396e5d25e09f1011eec066b1a173de725f59053bb31f46d4e4c0da4f5b90ff529eb5fba1";
pub(crate) const VECTOR_H: &str = "ab1c28c108f6650dc35e1e03bfe133e906f08e08c7ea7209824c87b7cabe604e979565dc9862e305860fe2efe387ea7f";
pub(crate) const VECTOR_C: &str = "983dc52a3c91743a70fce0270ce45127f977cc9c3ac880e1de32f7543ff4f91bdd82a9bd28bebb9ad80139e57c47f426";
pub(crate) const VECTOR_PROOF: &str = "1f6538b4ed3fe0135273d7e6a3d77b3edd8f62c3b90de7ce1581cdb2be914f0d44341cba8509dbc99853915bca5855c54434afb1e4c36e7514100de7b4e1cee9";

#[test]
fn a_proof_verifies_only_for_its_key_id_share_and_context() {
    let s = MasterShare::generate().unwrap();
    let other = MasterShare::generate().unwrap();
    let ctx = proof_context("bafy-request-1");
    let (share, proof) = s.prove_client_share(b"alice", &ctx).unwrap();
    assert_eq!(share, s.client_share(b"alice"));
    assert!(proof.verify(&s.public_key(), b"alice", &share, &ctx));
    // Another request, ID, key or share.
    assert!(!proof.verify(
        &s.public_key(),
        b"alice",
        &share,
        &proof_context("bafy-request-2")
    ));
    assert!(!proof.verify(&s.public_key(), b"bob", &share, &ctx));
    assert!(!proof.verify(&other.public_key(), b"alice", &share, &ctx));
    // The test-faults share (s+1)*H(id), with the right proof or its own.
    let wrong = G1Affine::from(G1Projective::from(share) + hash_id(b"alice"));
    assert!(!proof.verify(&s.public_key(), b"alice", &wrong, &ctx));
    let wrong_secret = s.scalar_plus_one_for_tests();
    let wrong_proof = DleqProof::prove(
        &wrong_secret,
        &s.public_key(),
        &hash_id(b"alice"),
        &wrong,
        &ctx,
    )
    .unwrap();
    assert!(!wrong_proof.verify(&s.public_key(), b"alice", &wrong, &ctx));
    // Every single-bit change of the proof's bytes.
    let bytes = proof.to_bytes();
    for i in 0..bytes.len() * 8 {
        let mut b = bytes;
        b[i / 8] ^= 1 << (i % 8);
        if let Ok(p) = DleqProof::from_bytes(&b) {
            assert!(
                !p.verify(&s.public_key(), b"alice", &share, &ctx),
                "bit {i}"
            );
        }
    }
    // Two proofs of the same statement use different nonces.
    let (_, again) = s.prove_client_share(b"alice", &ctx).unwrap();
    assert_ne!(again, proof);
    assert!(again.verify(&s.public_key(), b"alice", &share, &ctx));
}

#[test]
fn the_verifiers_multiplication_agrees_with_the_constant_time_one() {
    for _ in 0..8 {
        let (a, b) = (random_scalar().unwrap(), random_scalar().unwrap());
        let p = G1Projective::from(hash_id(b"p"));
        let q = G1Projective::generator() * random_scalar().unwrap();
        assert_eq!(
            G1Affine::from(crate::dleq::straus_for_tests(&p, &a, &q, &b)),
            G1Affine::from(p * a + q * b)
        );
    }
    let z = Scalar::ZERO;
    let g = G1Projective::generator();
    assert_eq!(
        G1Affine::from(crate::dleq::straus_for_tests(&g, &z, &g, &z)),
        G1Affine::identity()
    );
    assert_eq!(
        G1Affine::from(crate::dleq::straus_for_tests(
            &g,
            &-Scalar::ONE,
            &g,
            &Scalar::ONE
        )),
        G1Affine::identity()
    );
}

#[test]
fn the_comb_agrees_with_the_constant_time_multiplication() {
    let base = G1Projective::from(hash_id(b"base"));
    for a in [
        Scalar::ZERO,
        Scalar::ONE,
        -Scalar::ONE,
        random_scalar().unwrap(),
        random_scalar().unwrap(),
    ] {
        assert_eq!(
            G1Affine::from(crate::dleq::comb_for_tests(&base, &a)),
            G1Affine::from(base * a)
        );
    }
}

#[test]
fn the_512_bit_reduction_matches_the_integer() {
    // 2^512 - 1 mod r, and a value with one bit in each 128-bit limb.
    let all = scalar_from_le_wide(&[0xff; 64]);
    let two_256 = Scalar::from(2u64).pow_vartime([256]);
    let expect = two_256 * two_256 - Scalar::ONE;
    assert_eq!(all, expect);
    let mut bits = [0u8; 64];
    for limb in 0..4 {
        bits[16 * limb] = (limb + 1) as u8;
    }
    let two_128 = Scalar::from(2u64).pow_vartime([128]);
    let mut expect = Scalar::ZERO;
    for limb in (0..4).rev() {
        expect = expect * two_128 + Scalar::from(limb as u64 + 1);
    }
    assert_eq!(scalar_from_le_wide(&bits), expect);
    assert_eq!(scalar_from_le_wide(&[0; 64]), Scalar::ZERO);
}

/// `n` good proofs of one D-TA, with their hashes and shares.
fn good_batch(s: &MasterShare, n: usize, ctx: &[u8]) -> Vec<(DleqProof, G1Affine, G1Affine)> {
    (0..n)
        .map(|i| {
            let id = format!("user{i}");
            let (share, proof) = s.prove_client_share(id.as_bytes(), ctx).unwrap();
            (proof, hash_id(id.as_bytes()), share)
        })
        .collect()
}

fn items<'a>(
    key: &G1Affine,
    proofs: &[(DleqProof, G1Affine, G1Affine)],
    ctx: &'a [u8],
) -> Vec<BatchItem<'a>> {
    proofs
        .iter()
        .map(|(proof, h, share)| BatchItem {
            proof: *proof,
            public_key: *key,
            h: *h,
            share: *share,
            context: ctx,
        })
        .collect()
}

#[test]
fn a_batch_of_good_proofs_passes_and_an_empty_one_too() {
    assert_eq!(DleqProof::verify_batch(&[]), Ok(()));
    let s = MasterShare::generate().unwrap();
    let other = MasterShare::generate().unwrap();
    let ctx = proof_context("bafy-batch");
    let proofs = good_batch(&s, 20, &ctx);
    let key = s.public_key();
    // Short runs (Straus) and long ones (the key's comb).
    for n in [1, 7, 8, 20] {
        assert_eq!(
            DleqProof::verify_batch(&items(&key, &proofs[..n], &ctx)),
            Ok(())
        );
    }
    // Two keys in one batch.
    let mut mixed = items(&key, &proofs, &ctx);
    let others = good_batch(&other, 3, &ctx);
    mixed.extend(items(&other.public_key(), &others, &ctx));
    assert_eq!(DleqProof::verify_batch(&mixed), Ok(()));
    // Under the other key or context, the first item fails.
    assert_eq!(
        DleqProof::verify_batch(&items(&other.public_key(), &proofs, &ctx)),
        Err(0)
    );
    assert_eq!(
        DleqProof::verify_batch(&items(&key, &proofs, b"other")),
        Err(0)
    );
}

#[test]
fn one_bad_proof_in_a_batch_of_256_is_named() {
    let s = MasterShare::generate().unwrap();
    let ctx = proof_context("bafy-batch-256");
    let proofs = good_batch(&s, wire::MAX_MPIN_IDS, &ctx);
    let key = s.public_key();
    let good = items(&key, &proofs, &ctx);
    assert_eq!(DleqProof::verify_batch(&good), Ok(()));
    let wrong_share = G1Affine::from(G1Projective::from(proofs[0].2) + hash_id(b"x"));
    for bad in [0, 1, 100, 254, 255] {
        // A share that is not s*H(id), a proof of another item, an identity.
        let mut batch = good.clone();
        batch[bad].share = wrong_share;
        assert_eq!(DleqProof::verify_batch(&batch), Err(bad), "share {bad}");
        let mut batch = good.clone();
        batch[bad].proof = good[(bad + 1) % good.len()].proof;
        assert_eq!(DleqProof::verify_batch(&batch), Err(bad), "proof {bad}");
        let mut batch = good.clone();
        batch[bad].h = G1Affine::identity();
        assert_eq!(DleqProof::verify_batch(&batch), Err(bad), "identity {bad}");
    }
    // Two bad ones: the first is named.
    let mut batch = good.clone();
    batch[200].share = wrong_share;
    batch[30].share = wrong_share;
    assert_eq!(DleqProof::verify_batch(&batch), Err(30));
}

#[test]
fn proofs_refuse_bad_encodings() {
    assert!(matches!(
        DleqProof::from_bytes(&[0u8; 63]),
        Err(DecodeError::Length { .. })
    ));
    assert_eq!(
        DleqProof::from_bytes(&[0xffu8; 64]).unwrap_err(),
        DecodeError::Scalar
    );
    assert_eq!(DleqProof::from_hex("zz").unwrap_err(), DecodeError::Hex);
    // The zero proof decodes (canonical) but does not verify.
    let zero = DleqProof::from_bytes(&[0u8; 64]).unwrap();
    let s = MasterShare::generate().unwrap();
    assert!(!zero.verify(&s.public_key(), b"a", &s.client_share(b"a"), b""));
    // Identity inputs never verify.
    let (share, proof) = s.prove_client_share(b"a", b"ctx").unwrap();
    assert!(!proof.verify(&G1Affine::identity(), b"a", &share, b"ctx"));
    assert!(!proof.verify(&s.public_key(), b"a", &G1Affine::identity(), b"ctx"));
}

#[test]
fn server_shares_are_checked_by_pairing_against_the_public_key() {
    let s = MasterShare::generate().unwrap();
    let other = MasterShare::generate().unwrap();
    assert!(verify_server_share(&s.server_share(), &s.public_key()));
    assert!(!verify_server_share(&other.server_share(), &s.public_key()));
    let forged = G2Affine::from(G2Projective::from(s.server_share()) + G2Affine::generator());
    assert!(!verify_server_share(&forged, &s.public_key()));
    assert!(!verify_server_share(&G2Affine::identity(), &s.public_key()));
}

fn three() -> Vec<MasterShare> {
    (0..3).map(|_| MasterShare::generate().unwrap()).collect()
}

#[test]
fn login_succeeds_with_the_right_pin_only() {
    let id = b"alice@example.org";
    let dtas = three();
    let c = combine_g1(&dtas.iter().map(|d| d.client_share(id)).collect::<Vec<_>>());
    let s = combine_g2(&dtas.iter().map(|d| d.server_share()).collect::<Vec<_>>());
    let token = client::Token::from_client_secret(&c, id, 1234);
    let round = |pin: u32, id2: &[u8], server: &G2Affine| {
        let (x, u) = client::pass1(id2).unwrap();
        let y = random_scalar().unwrap();
        let v = client::pass2(&x, &y, &token, pin, id2);
        server::verify_login(id2, &u, &y, &v, server)
    };
    assert!(round(1234, id, &s));
    assert!(!round(1235, id, &s));
    assert!(!round(0, id, &s));
    assert!(!round(1234, b"bob", &s));
    // A server secret short of one D-TA's share.
    let partial = combine_g2(
        &dtas[..2]
            .iter()
            .map(|d| d.server_share())
            .collect::<Vec<_>>(),
    );
    assert!(!round(1234, id, &partial));
    // The token round-trips; a replayed V for another y fails.
    let back = client::Token::from_hex(&token.to_hex()).unwrap();
    assert_eq!(back, token);
    let (x, u) = client::pass1(id).unwrap();
    let y1 = random_scalar().unwrap();
    let v = client::pass2(&x, &y1, &token, 1234, id);
    assert!(server::verify_login(id, &u, &y1, &v, &s));
    let y2 = random_scalar().unwrap();
    assert!(!server::verify_login(id, &u, &y2, &v, &s));
    assert!(!server::verify_login(
        id,
        &G1Affine::identity(),
        &y1,
        &v,
        &s
    ));
    assert_eq!(format!("{token:?}"), "Token(..)");
}

#[test]
fn encodings_round_trip_and_reject_bad_bytes() {
    let s = MasterShare::generate().unwrap();
    let back = MasterShare::from_bytes(s.to_bytes().as_slice()).unwrap();
    assert_eq!(back.public_key(), s.public_key());
    assert_eq!(
        MasterShare::from_bytes(&[0u8; 32]).unwrap_err(),
        DecodeError::Scalar
    );
    assert_eq!(
        MasterShare::from_bytes(&[0xffu8; 32]).unwrap_err(),
        DecodeError::Scalar
    );
    assert!(matches!(
        MasterShare::from_bytes(&[1u8; 31]),
        Err(DecodeError::Length { .. })
    ));

    let c = s.client_share(b"id");
    assert_eq!(g1_from_hex(&g1_to_hex(&c)).unwrap(), c);
    let p = s.server_share();
    assert_eq!(g2_from_hex(&g2_to_hex(&p)).unwrap(), p);
    assert_eq!(g1_to_hex(&c).len(), 2 * G1_LEN);
    assert_eq!(g2_to_hex(&p).len(), 2 * G2_LEN);
    assert_eq!(g1_from_hex("zz").unwrap_err(), DecodeError::Hex);
    assert!(matches!(g2_from_hex("00"), Err(DecodeError::Length { .. })));
    assert_eq!(
        g1_from_bytes(&G1Affine::identity().to_compressed()).unwrap_err(),
        DecodeError::Identity
    );
    assert_eq!(
        g2_from_bytes(&G2Affine::identity().to_compressed()).unwrap_err(),
        DecodeError::Identity
    );
    let mut bad = c.to_compressed();
    bad[0] &= 0x7f; // no compression flag
    assert_eq!(g1_from_bytes(&bad).unwrap_err(), DecodeError::Point("G1"));
    assert_eq!(format!("{s:?}"), "MasterShare(..)");

    // Scalars: big-endian, canonical, non-zero.
    let y = random_scalar().unwrap();
    let h = scalar_to_be_hex(&y);
    assert_eq!(h.len(), 64);
    assert_eq!(scalar_from_be_hex(&h).unwrap(), y);
    assert_eq!(scalar_to_be_hex(&Scalar::ONE), format!("{:064x}", 1));
    assert_eq!(
        scalar_from_be_hex(&"00".repeat(32)).unwrap_err(),
        DecodeError::Scalar
    );
    // r itself is not canonical.
    let r = "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";
    assert_eq!(scalar_from_be_hex(r).unwrap_err(), DecodeError::Scalar);
    assert!(matches!(
        scalar_from_be_hex("01"),
        Err(DecodeError::Length { .. })
    ));
}

#[test]
fn requests_are_validated() {
    let ok = ShareRequest::client(vec!["a".into(), "b".into()]);
    assert_eq!(
        ShareRequest::parse(&serde_json::to_vec(&ok).unwrap()).unwrap(),
        ok
    );
    let server = ShareRequest::server();
    assert_eq!(
        serde_json::to_string(&server).unwrap(),
        r#"{"v":2,"kind":"server"}"#
    );
    assert_eq!(
        ShareRequest::parse(br#"{"v":2,"kind":"server"}"#).unwrap(),
        server
    );
    let cases: &[(&[u8], WireError)] = &[
        (b"not json", WireError::Malformed),
        (
            br#"{"v":1,"kind":"client","mpin_id":"a"}"#,
            WireError::Malformed,
        ),
        (
            br#"{"v":1,"kind":"client","mpin_ids":["a"]}"#,
            WireError::Version(1),
        ),
        (br#"{"v":2,"kind":"client"}"#, WireError::IdCount(0)),
        (
            br#"{"v":2,"kind":"client","mpin_ids":[""]}"#,
            WireError::IdLength,
        ),
        (
            br#"{"v":2,"kind":"client","mpin_ids":["a","a"]}"#,
            WireError::Duplicate,
        ),
        (
            br#"{"v":2,"kind":"server","mpin_ids":["a"]}"#,
            WireError::ServerWithIds,
        ),
        (br#"{"v":2,"kind":"other"}"#, WireError::Malformed),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            &ShareRequest::parse(bytes).unwrap_err(),
            want,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let many = ShareRequest::client((0..=wire::MAX_MPIN_IDS).map(|i| i.to_string()).collect());
    assert_eq!(
        many.validate().unwrap_err(),
        WireError::IdCount(wire::MAX_MPIN_IDS + 1)
    );
    let long = ShareRequest::client(vec!["x".repeat(wire::MAX_MPIN_ID_LEN + 1)]);
    assert_eq!(long.validate().unwrap_err(), WireError::IdLength);
    assert_eq!(SecretKind::parse("client"), Some(SecretKind::Client));
    assert_eq!(SecretKind::parse("Client"), None);
}

#[test]
fn sealed_replies_are_opened_and_checked() {
    let s = MasterShare::generate().unwrap();
    let ctx = proof_context("bafy-request");
    let ids = ["alice", "bob"];
    let items: Vec<ClientShare> = ids
        .iter()
        .map(|id| {
            let (share, proof) = s.prove_client_share(id.as_bytes(), &ctx).unwrap();
            ClientShare {
                mpin_id: (*id).into(),
                share: g1_to_hex(&share),
                proof: proof.to_hex(),
            }
        })
        .collect();
    let sealed = SealedShares {
        v: wire::WIRE_VERSION,
        client_shares: items,
        server_share: None,
    };
    let bytes = serde_json::to_vec(&sealed).unwrap();
    let opened = SealedShares::parse(&bytes).unwrap();
    let hashed: Vec<(&str, G1Affine)> =
        ids.iter().map(|id| (*id, hash_id(id.as_bytes()))).collect();
    let shares = opened
        .open_client_shares(&s.public_key(), &hashed, &ctx)
        .unwrap();
    assert_eq!(
        shares,
        vec![s.client_share(b"alice"), s.client_share(b"bob")]
    );
    // Another request's context, the wrong order, one missing.
    assert_eq!(
        opened
            .open_client_shares(&s.public_key(), &hashed, b"other")
            .unwrap_err(),
        WireError::Proof { index: 0 }
    );
    let reversed: Vec<(&str, G1Affine)> = hashed.iter().rev().cloned().collect();
    assert!(matches!(
        opened.open_client_shares(&s.public_key(), &reversed, &ctx),
        Err(WireError::Mismatch(_))
    ));
    assert!(matches!(
        opened.open_client_shares(&s.public_key(), &hashed[..1], &ctx),
        Err(WireError::Mismatch(_))
    ));
    // A swapped share for bob (alice's) fails bob's proof.
    let mut tampered = SealedShares::parse(&bytes).unwrap();
    tampered.client_shares[1].share = g1_to_hex(&s.client_share(b"alice"));
    assert_eq!(
        tampered
            .open_client_shares(&s.public_key(), &hashed, &ctx)
            .unwrap_err(),
        WireError::Proof { index: 1 }
    );
    assert!(opened.open_server_share(&s.public_key()).is_err());

    let server = SealedShares {
        v: wire::WIRE_VERSION,
        client_shares: Vec::new(),
        server_share: Some(g2_to_hex(&s.server_share())),
    };
    let server = SealedShares::parse(&serde_json::to_vec(&server).unwrap()).unwrap();
    assert_eq!(
        server.open_server_share(&s.public_key()).unwrap(),
        s.server_share()
    );
    let other = MasterShare::generate().unwrap();
    assert_eq!(
        server.open_server_share(&other.public_key()).unwrap_err(),
        WireError::Pairing
    );
    assert!(SealedShares::parse(br#"{"v":1,"server_share":"00"}"#).is_err());
    assert!(SealedShares::parse(br#"{"v":2,"extra":1}"#).is_err());
    assert_eq!(format!("{server:?}"), "SealedShares(..)");

    let reply = ShareReply {
        v: 2,
        status: wire::ReplyStatus::Issued,
        kind: Some(SecretKind::Client),
        public_key: Some(g1_to_hex(&s.public_key())),
        count: Some(2),
        reason: None,
    };
    let parsed = ShareReply::parse(&serde_json::to_vec(&reply).unwrap()).unwrap();
    assert_eq!(parsed.public_key().unwrap(), s.public_key());
    assert_eq!(
        ShareReply::parse(
            br#"{"v":1,"status":"issued","kind":"client","public_share":"00","reason":null}"#
        )
        .unwrap_err(),
        WireError::Version(1)
    );
}

/// Cost of the arithmetic alone; run with
/// `cargo test --release -p milagro-mpin -- --ignored --nocapture`.
#[test]
#[ignore = "timing figures, not a check"]
fn timings() {
    use std::time::Instant;
    let s = MasterShare::generate().unwrap();
    let n = 200u32;
    let ids: Vec<String> = (0..n).map(|i| format!("user{i}")).collect();
    let t = Instant::now();
    let hs: Vec<G1Affine> = ids.iter().map(|id| hash_id(id.as_bytes())).collect();
    let hash = t.elapsed() / n;
    let t = Instant::now();
    let shares: Vec<(G1Affine, DleqProof)> = ids
        .iter()
        .map(|id| s.prove_client_share(id.as_bytes(), b"ctx").unwrap())
        .collect();
    let prove = t.elapsed() / n;
    let t = Instant::now();
    for ((c, p), h) in shares.iter().zip(&hs) {
        assert!(p.verify_with_hash(&s.public_key(), h, c, b"ctx"));
    }
    let verify = t.elapsed() / n;
    let ctx = b"ctx".as_slice();
    let batch: Vec<BatchItem> = shares
        .iter()
        .zip(&hs)
        .map(|((c, p), h)| BatchItem {
            proof: *p,
            public_key: s.public_key(),
            h: *h,
            share: *c,
            context: ctx,
        })
        .collect();
    let t = Instant::now();
    assert_eq!(DleqProof::verify_batch(&batch), Ok(()));
    let verify_batch = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..20 {
        assert!(verify_server_share(&s.server_share(), &s.public_key()));
    }
    let pairing = t.elapsed() / 20;
    println!(
        "hash {hash:?}, issue+prove {prove:?}, verify {verify:?}, \
         verify in a batch of {n} {verify_batch:?}, server-share check {pairing:?}"
    );
}
