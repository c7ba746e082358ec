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

//! Envelope tests: seal/open across separate nodes, freshness, and every
//! receiver-side rejection that belongs to the format.

mod common;

use common::{Node, flipped};
use milagro_proto::block::cid_of;
use milagro_proto::{
    Envelope, EnvelopeDraft, Error, Limits, VerifiedEnvelope, VerifiedIdentity, open, seal,
};
use proptest::prelude::*;

fn limits() -> Limits {
    Limits::default()
}

fn draft<'a>(secret: &'a [u8]) -> EnvelopeDraft<'a> {
    EnvelopeDraft {
        kind: "custody/order",
        time_ms: 1_700_000_001_000,
        links: &[],
        body: Some(b"public part"),
        secret_body: Some(secret),
    }
}

fn seal_to(sender: &Node, to: &[&Node], secret: &[u8]) -> VerifiedEnvelope {
    let ids: Vec<&VerifiedIdentity> = to.iter().map(|n| &n.identity).collect();
    seal(&sender.signer, &sender.identity, &ids, &draft(secret)).unwrap()
}

fn receive(env: &VerifiedEnvelope, sender: &Node) -> VerifiedEnvelope {
    Envelope::decode_and_verify(env.cid(), env.block().bytes(), &sender.identity, &limits())
        .unwrap()
}

#[test]
fn seal_and_open_across_nodes() {
    let alice = Node::new("alice");
    let bob = Node::new("bob");
    let carol = Node::new("carol");
    let prev = cid_of(b"previous envelope");
    let links = [prev];
    let d = EnvelopeDraft {
        links: &links,
        ..draft(b"the share")
    };
    let env = seal(
        &alice.signer,
        &alice.identity,
        &[&bob.identity, &carol.identity],
        &d,
    )
    .unwrap();
    let got = receive(&env, &alice);
    assert_eq!(got.kind(), "custody/order");
    assert_eq!(got.sender(), alice.identity.id());
    assert_eq!(got.time_ms(), 1_700_000_001_000);
    assert_eq!(got.links(), &links);
    assert_eq!(got.body(), Some(&b"public part"[..]));
    assert_eq!(
        got.recipients(),
        &[*bob.identity.id(), *carol.identity.id()]
    );
    assert_eq!(got.id(), env.id());
    for r in [&bob, &carol] {
        let pt = open(&got, r.identity.id(), &r.ecdh, &r.kem).unwrap();
        assert_eq!(&pt[..], b"the share");
    }
    // The sender is not a recipient here.
    assert_eq!(
        got.open(alice.identity.id(), &alice.ecdh, &alice.kem)
            .unwrap_err(),
        Error::NotARecipient(Box::new(*alice.identity.id()))
    );
}

#[test]
fn one_to_twenty_recipients() {
    let sender = Node::new("sender");
    let nodes: Vec<Node> = (0..20).map(|i| Node::new(&format!("r{i}"))).collect();
    for n in 1usize..=20 {
        let to: Vec<&Node> = nodes.iter().take(n).collect();
        let secret = vec![n as u8; 100 + n];
        let env = receive(&seal_to(&sender, &to, &secret), &sender);
        assert_eq!(env.recipients().len(), n);
        for r in &to {
            assert_eq!(
                &env.open(r.identity.id(), &r.ecdh, &r.kem).unwrap()[..],
                &secret[..]
            );
        }
        // A node outside the list cannot open.
        let outsider = &nodes[19];
        if n < 20 {
            assert!(matches!(
                env.open(outsider.identity.id(), &outsider.ecdh, &outsider.kem),
                Err(Error::NotARecipient(_))
            ));
        }
    }
}

#[test]
fn two_seals_of_the_same_message_differ() {
    let a = Node::new("a");
    let b = Node::new("b");
    let e1 = seal_to(&a, &[&b], b"same");
    let e2 = seal_to(&a, &[&b], b"same");
    assert_ne!(e1.cid(), e2.cid());
    assert_ne!(e1.id(), e2.id());
    // Pick the sealed fields apart through the generic IPLD data model.
    let fields = |e: &VerifiedEnvelope| {
        let v: ipld_core::ipld::Ipld = serde_ipld_dagcbor::from_slice(e.block().bytes()).unwrap();
        let sealed = v.get("sealed").unwrap().unwrap();
        let key = sealed
            .get("keys")
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap()
            .unwrap();
        let bytes = |x: &ipld_core::ipld::Ipld| match x {
            ipld_core::ipld::Ipld::Bytes(b) => b.clone(),
            _ => panic!("not bytes"),
        };
        (
            bytes(sealed.get("nonce").unwrap().unwrap()),
            bytes(sealed.get("ct").unwrap().unwrap()),
            bytes(key.get("epk").unwrap().unwrap()),
            bytes(key.get("kem_ct").unwrap().unwrap()),
            bytes(key.get("wrapped_key").unwrap().unwrap()),
        )
    };
    let (n1, c1, epk1, kct1, w1) = fields(&e1);
    let (n2, c2, epk2, kct2, w2) = fields(&e2);
    assert_ne!(n1, n2, "nonce repeated");
    assert_ne!(c1, c2, "ciphertext repeated");
    assert_ne!(epk1, epk2, "ephemeral key repeated");
    assert_ne!(kct1, kct2, "KEM ciphertext repeated");
    assert_ne!(w1, w2, "wrapped key repeated");
    assert_eq!(
        &e1.open(b.identity.id(), &b.ecdh, &b.kem).unwrap()[..],
        &e2.open(b.identity.id(), &b.ecdh, &b.kem).unwrap()[..]
    );
}

#[test]
fn any_byte_flipped_breaks_verification() {
    let a = Node::new("a");
    let b = Node::new("b");
    let env = seal_to(&a, &[&b], b"a secret with a \0 zero byte inside");
    let bytes = env.block().bytes();
    let mut by_signature = 0;
    for i in 0..bytes.len() {
        let f = flipped(bytes, i);
        assert!(matches!(
            Envelope::decode_and_verify(env.cid(), &f, &a.identity, &limits()),
            Err(Error::HashMismatch { .. })
        ));
        let err = Envelope::decode_and_verify(&cid_of(&f), &f, &a.identity, &limits())
            .expect_err(&format!("flip of byte {i} verified"));
        if matches!(err, Error::BadSignature { .. }) {
            by_signature += 1;
        }
    }
    assert!(
        by_signature > bytes.len() / 2,
        "{by_signature}/{}",
        bytes.len()
    );
}

#[test]
fn sender_mismatch_and_bad_signature() {
    let a = Node::new("a");
    let b = Node::new("b");
    let env = seal_to(&a, &[&b], b"x");
    // Verified against the wrong identity.
    assert!(matches!(
        Envelope::decode_and_verify(env.cid(), env.block().bytes(), &b.identity, &limits()),
        Err(Error::SenderMismatch { .. })
    ));
    // Signer that does not hold the sender's key.
    assert!(matches!(
        seal(&b.signer, &a.identity, &[&b.identity], &draft(b"x")),
        Err(Error::SignerMismatch { .. })
    ));
    // A signature from another key spliced in.
    let other = seal_to(&b, &[&b], b"x");
    let sig_pos = |bytes: &[u8]| {
        bytes
            .windows(6)
            .position(|w| w == b"\x63sig\x58\x40")
            .unwrap()
            + 6
    };
    let mut forged = env.block().bytes().to_vec();
    let p = sig_pos(&forged);
    let q = sig_pos(other.block().bytes());
    forged[p..p + 64].copy_from_slice(&other.block().bytes()[q..q + 64]);
    assert!(matches!(
        Envelope::decode_and_verify(&cid_of(&forged), &forged, &a.identity, &limits()),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn decode_rejections() {
    let a = Node::new("a");
    let b = Node::new("b");
    let env = seal_to(&a, &[&b], b"x");
    let bytes = env.block().bytes();

    let t = &bytes[..bytes.len() / 2];
    assert!(matches!(
        Envelope::decode(&cid_of(t), t, &limits()),
        Err(Error::Truncated(_))
    ));
    let g = b"\x1f\xff\xfe garbage";
    assert!(matches!(
        Envelope::decode(&cid_of(g), g, &limits()),
        Err(Error::MalformedCbor(_))
    ));
    let small = Limits {
        max_envelope_bytes: 1000,
        ..limits()
    };
    assert!(matches!(
        Envelope::decode(env.cid(), bytes, &small),
        Err(Error::Oversize { what: "block", .. })
    ));
    let no_recipients = Limits {
        max_recipients: 0,
        ..limits()
    };
    assert!(matches!(
        Envelope::decode(env.cid(), bytes, &no_recipients),
        Err(Error::Oversize {
            what: "recipients",
            ..
        })
    ));
    let pos = bytes.windows(8).position(|w| w == b"gversion").unwrap();
    let mut v = bytes.to_vec();
    v[pos + 8] = 0x07;
    assert!(matches!(
        Envelope::decode(&cid_of(&v), &v, &limits()),
        Err(Error::UnknownVersion { found: 7, .. })
    ));
    // An identity document is not an envelope.
    let idb = a.identity.block();
    assert!(matches!(
        Envelope::decode(idb.cid(), idb.bytes(), &limits()),
        Err(Error::MalformedCbor(_))
    ));
}

#[test]
fn not_sealed_and_no_recipients() {
    let a = Node::new("a");
    let b = Node::new("b");
    let plain = EnvelopeDraft {
        body: Some(b"hello"),
        ..EnvelopeDraft::new("custody/redeem", 5)
    };
    let env = seal(&a.signer, &a.identity, &[&b.identity], &plain).unwrap();
    let env = receive(&env, &a);
    assert!(!env.is_sealed());
    assert!(env.is_recipient(b.identity.id()));
    assert_eq!(
        env.open(b.identity.id(), &b.ecdh, &b.kem).unwrap_err(),
        Error::NotSealed
    );
    assert_eq!(
        seal(&a.signer, &a.identity, &[], &draft(b"s")).unwrap_err(),
        Error::NoRecipients
    );
    assert!(matches!(
        seal(
            &a.signer,
            &a.identity,
            &[&b.identity, &b.identity],
            &draft(b"s")
        ),
        Err(Error::DuplicateRecipient(_))
    ));
}

#[test]
fn wrong_keys_cannot_open() {
    let a = Node::new("a");
    let b = Node::new("b");
    let c = Node::new("c");
    let env = seal_to(&a, &[&b], b"x");
    // Right ID, wrong private keys.
    assert_eq!(
        env.open(b.identity.id(), &c.ecdh, &b.kem).unwrap_err(),
        Error::KeyUnwrapFailed
    );
    assert_eq!(
        env.open(b.identity.id(), &b.ecdh, &c.kem).unwrap_err(),
        Error::KeyUnwrapFailed
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn prop_roundtrip(
        secret in proptest::collection::vec(any::<u8>(), 0..2048),
        body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
        kind in "[a-z]{1,12}/[a-z]{1,12}",
        time in any::<u64>(),
    ) {
        let a = Node::new("a");
        let b = Node::new("b");
        let d = EnvelopeDraft {
            kind: &kind,
            time_ms: time,
            links: &[],
            body: body.as_deref(),
            secret_body: Some(&secret),
        };
        let env = seal(&a.signer, &a.identity, &[&b.identity], &d).unwrap();
        let got = receive(&env, &a);
        prop_assert_eq!(got.kind(), kind.as_str());
        prop_assert_eq!(got.time_ms(), time);
        prop_assert_eq!(got.body(), body.as_deref());
        let pt = got.open(b.identity.id(), &b.ecdh, &b.kem).unwrap();
        prop_assert_eq!(&pt[..], &secret[..]);
    }

    #[test]
    fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::decode(&cid_of(&bytes), &bytes, &limits());
        let _ = VerifiedIdentity::decode(&cid_of(&bytes), &bytes, &limits());
    }
}
