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

//! Identity document tests: build, verify, rotation, and every rejection.

mod common;

use common::{Node, flipped};
use milagro_proto::block::cid_of;
use milagro_proto::{
    Block, DecapsulationKey, EcdhKey, Endpoints, Error, IdentityDraft, Limits, LocalEcdhKey,
    LocalSigner, Signer, VerifiedIdentity,
};

fn limits() -> Limits {
    Limits::default()
}

fn full_node() -> (LocalSigner, VerifiedIdentity) {
    let signer = LocalSigner::generate().unwrap();
    let ecdh = LocalEcdhKey::generate().unwrap();
    let kem = DecapsulationKey::generate().unwrap();
    let beneficiary = LocalSigner::generate().unwrap();
    let mut draft = IdentityDraft::new(
        "fiduciary-1",
        1_700_000_000_123,
        signer.public_key(),
        ecdh.public_key(),
        kem.public_key(),
    );
    draft.beneficiary_key = Some(beneficiary.public_key());
    draft.endpoints = Endpoints {
        http: vec!["https://f1.example.org:8443".into()],
        peer_id: Some("12D3KooWExamplePeer".into()),
        multiaddrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
    };
    let id = draft.sign(&signer).unwrap();
    (signer, id)
}

#[test]
fn build_and_verify_roundtrip() {
    let (signer, id) = full_node();
    let again = VerifiedIdentity::decode(id.id(), id.block().bytes(), &limits()).unwrap();
    assert_eq!(again, id);
    assert_eq!(again.name(), "fiduciary-1");
    assert_eq!(again.created_ms(), 1_700_000_000_123);
    assert_eq!(*again.signing_key(), signer.public_key());
    assert!(again.beneficiary_key().is_some());
    assert_eq!(again.endpoints().http.len(), 1);
    assert_eq!(again.previous(), None);
    assert_eq!(again.version(), 1);
    assert_eq!(*again.id(), cid_of(again.block().bytes()));
}

#[test]
fn signing_is_deterministic_so_node_id_is_stable() {
    let n = Node::new("a");
    let draft = IdentityDraft::new(
        "a",
        1_700_000_000_000,
        n.signer.public_key(),
        n.ecdh.public_key(),
        n.kem.public_key(),
    );
    assert_eq!(draft.sign(&n.signer).unwrap().id(), n.identity.id());
}

#[test]
fn any_byte_flipped_breaks_verification() {
    let (_, id) = full_node();
    let bytes = id.block().bytes();
    let mut bad_sig = 0;
    for i in 0..bytes.len() {
        let b = flipped(bytes, i);
        // Presented under the original CID: hash mismatch.
        let err = VerifiedIdentity::decode(id.id(), &b, &limits()).unwrap_err();
        assert!(
            matches!(err, Error::HashMismatch { .. }),
            "byte {i}: {err:?}"
        );
        // Presented under its own CID (an attacker's new document): refused.
        let err = VerifiedIdentity::decode(&cid_of(&b), &b, &limits())
            .expect_err(&format!("flip of byte {i} was accepted"));
        if matches!(err, Error::BadSignature { .. }) {
            bad_sig += 1;
        }
    }
    // Most flips land in key material, names, URLs: caught by the signature.
    assert!(bad_sig > bytes.len() / 2, "{bad_sig} of {}", bytes.len());
}

#[test]
fn zero_byte_in_name_is_still_covered() {
    // The original Milagro hashed up to the first zero byte only.
    let n = Node::new("x");
    let draft = IdentityDraft::new(
        "a\0b",
        1,
        n.signer.public_key(),
        n.ecdh.public_key(),
        n.kem.public_key(),
    );
    let id = draft.sign(&n.signer).unwrap();
    let bytes = id.block().bytes();
    let pos = bytes.windows(3).position(|w| w == b"a\0b").unwrap();
    let mut b = bytes.to_vec();
    b[pos + 2] = b'c';
    let err = VerifiedIdentity::decode(&cid_of(&b), &b, &limits()).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
}

#[test]
fn signer_must_hold_the_document_key() {
    let n = Node::new("a");
    let other = LocalSigner::generate().unwrap();
    let draft = IdentityDraft::new(
        "a",
        1,
        n.signer.public_key(),
        n.ecdh.public_key(),
        n.kem.public_key(),
    );
    assert!(matches!(
        draft.sign(&other),
        Err(Error::SignerMismatch { .. })
    ));
}

#[test]
fn rotation() {
    let old = Node::new("node");
    let new_signer = LocalSigner::generate().unwrap();
    let new_ecdh = LocalEcdhKey::generate().unwrap();
    let new_kem = DecapsulationKey::generate().unwrap();
    let draft = IdentityDraft::new(
        "node",
        1_800_000_000_000,
        new_signer.public_key(),
        new_ecdh.public_key(),
        new_kem.public_key(),
    );
    let rotated = draft
        .sign_rotation(&new_signer, &old.identity, &old.signer)
        .unwrap();
    assert_eq!(rotated.previous(), Some(old.identity.id()));
    let decoded =
        VerifiedIdentity::decode(rotated.id(), rotated.block().bytes(), &limits()).unwrap();
    decoded.verify_rotation(&old.identity).unwrap();

    // Against an unrelated previous document.
    let stranger = Node::new("stranger");
    assert!(matches!(
        decoded.verify_rotation(&stranger.identity),
        Err(Error::RotationMismatch { .. })
    ));
    // A first document is no rotation.
    assert!(matches!(
        old.identity.verify_rotation(&stranger.identity),
        Err(Error::RotationMismatch { linked: None, .. })
    ));
    // Previous key must sign: the wrong previous signer is refused at build time.
    assert!(matches!(
        draft.sign_rotation(&new_signer, &old.identity, &stranger.signer),
        Err(Error::SignerMismatch { .. })
    ));
    // Not newer than the previous document.
    let mut stale = draft.clone();
    stale.created_ms = old.identity.created_ms();
    assert!(matches!(
        stale.sign_rotation(&new_signer, &old.identity, &old.signer),
        Err(Error::RotationNotNewer)
    ));
}

#[test]
fn rejections() {
    let (_, id) = full_node();
    let bytes = id.block().bytes();

    // Bad hash.
    let other = Node::new("other");
    assert!(matches!(
        VerifiedIdentity::decode(id.id(), other.identity.block().bytes(), &limits()),
        Err(Error::HashMismatch { .. })
    ));

    // Oversize.
    let small = Limits {
        max_identity_bytes: 100,
        ..Limits::default()
    };
    assert!(matches!(
        VerifiedIdentity::decode(id.id(), bytes, &small),
        Err(Error::Oversize { .. })
    ));
    let short_names = Limits {
        max_text_bytes: 3,
        ..Limits::default()
    };
    assert!(matches!(
        VerifiedIdentity::decode(id.id(), bytes, &short_names),
        Err(Error::Oversize { what: "name", .. })
    ));

    // Truncated.
    let t = &bytes[..bytes.len() - 10];
    assert!(matches!(
        VerifiedIdentity::decode(&cid_of(t), t, &limits()),
        Err(Error::Truncated(_))
    ));

    // Garbage.
    let g = b"\xff\x00garbage";
    assert!(matches!(
        VerifiedIdentity::decode(&cid_of(g), g, &limits()),
        Err(Error::MalformedCbor(_))
    ));
    let empty: &[u8] = b"";
    assert!(matches!(
        VerifiedIdentity::decode(&cid_of(empty), empty, &limits()),
        Err(Error::Truncated(_))
    ));

    // Trailing data.
    let mut tr = bytes.to_vec();
    tr.push(0x00);
    assert!(matches!(
        VerifiedIdentity::decode(&cid_of(&tr), &tr, &limits()),
        Err(Error::TrailingData)
    ));

    // Unknown version: "version" key followed by uint 1 -> 2.
    let pos = bytes.windows(8).position(|w| w == b"gversion").unwrap();
    let mut v = bytes.to_vec();
    assert_eq!(v[pos + 8], 0x01);
    v[pos + 8] = 0x02;
    assert!(matches!(
        VerifiedIdentity::decode(&cid_of(&v), &v, &limits()),
        Err(Error::UnknownVersion { found: 2, .. })
    ));

    // A block that is not an identity document at all.
    let b = Block::encode(&vec![1u8, 2, 3]).unwrap();
    assert!(matches!(
        VerifiedIdentity::decode(b.cid(), b.bytes(), &limits()),
        Err(Error::MalformedCbor(_))
    ));
}

#[test]
fn bad_self_signature() {
    // Splice another node's signature into a document.
    let a = Node::new("same");
    let b = Node::new("same");
    let sig_of = |id: &VerifiedIdentity| {
        let bytes = id.block().bytes();
        // "sig" key (0x63 's' 'i' 'g') followed by bytes(64) header 0x58 0x40.
        let pos = bytes
            .windows(6)
            .position(|w| w == b"\x63sig\x58\x40")
            .unwrap();
        (pos + 6, bytes[pos + 6..pos + 70].to_vec())
    };
    let (pos, _) = sig_of(&a.identity);
    let (_, other_sig) = sig_of(&b.identity);
    let mut forged = a.identity.block().bytes().to_vec();
    forged[pos..pos + 64].copy_from_slice(&other_sig);
    assert!(matches!(
        VerifiedIdentity::decode(&cid_of(&forged), &forged, &limits()),
        Err(Error::BadSignature { .. })
    ));
}
