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

//! Protocol test vectors: generated from fixed seeds and checked.
//!
//! `proto/tests/vectors/protocol-v1.json` is produced by
//!
//! ```text
//! MILAGRO_WRITE_VECTORS=1 cargo test -p milagro-proto --test vectors
//! ```
//!
//! and this test checks it: every document decodes and verifies under its
//! CID, the envelope opens with the recipients' keys from the file, the
//! hybrid KEM intermediate values match, and regenerating from the same
//! seeds gives byte-identical output.

use milagro_proto::block::cid_of;
use milagro_proto::envelope::seal_with_rng;
use milagro_proto::kem::{self, HybridCiphertext};
use milagro_proto::{
    Cid, DecapsulationKey, EcPublicKey, EcdhKey, Endpoints, Envelope, EnvelopeDraft, IdentityDraft,
    Limits, LocalEcdhKey, LocalSigner, Signer, VerifiedIdentity,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/protocol-v1.json"
);

struct Party {
    signer: LocalSigner,
    ecdh: LocalEcdhKey,
    kem: DecapsulationKey,
}

fn party(seed: u64) -> Party {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Party {
        signer: LocalSigner::generate_with_rng(&mut rng),
        ecdh: LocalEcdhKey::generate_with_rng(&mut rng),
        kem: DecapsulationKey::generate_with_rng(&mut rng),
    }
}

fn keys_json(seed: u64, p: &Party) -> Value {
    json!({
        "rng_seed_u64": seed,
        "signing_secret": hex::encode(&p.signer.to_bytes()[..]),
        "signing_public": hex::encode(p.signer.public_key().to_bytes()),
        "ecdh_secret": hex::encode(&p.ecdh.to_bytes()[..]),
        "ecdh_public": hex::encode(p.ecdh.public_key().to_bytes()),
        "kem_seed": hex::encode(&p.kem.to_seed()[..]),
        "kem_public_sha256": hex::encode(sha256(&p.kem.public_key().to_bytes())),
    })
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

fn identity(p: &Party, name: &str, created: u64) -> IdentityDraft {
    IdentityDraft::new(
        name,
        created,
        p.signer.public_key(),
        p.ecdh.public_key(),
        p.kem.public_key(),
    )
}

fn block_json(cid: &Cid, bytes: &[u8]) -> Value {
    json!({ "cid": cid.to_string(), "hex": hex::encode(bytes) })
}

fn generate() -> Value {
    let (alice, bob, carol) = (party(1), party(2), party(3));
    let alice2 = party(4);

    let alice_id = identity(&alice, "alice", 1_700_000_000_000)
        .sign(&alice.signer)
        .unwrap();
    let mut bob_draft = identity(&bob, "bob", 1_700_000_000_001);
    bob_draft.beneficiary_key =
        Some(LocalSigner::generate_with_rng(&mut ChaCha20Rng::seed_from_u64(20)).public_key());
    bob_draft.endpoints = Endpoints {
        http: vec!["https://bob.example:8443".into()],
        peer_id: Some("12D3KooWBobExamplePeerId".into()),
        multiaddrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
    };
    let bob_id = bob_draft.sign(&bob.signer).unwrap();
    let carol_id = identity(&carol, "carol", 1_700_000_000_002)
        .sign(&carol.signer)
        .unwrap();
    let alice_rotated = identity(&alice2, "alice", 1_800_000_000_000)
        .sign_rotation(&alice2.signer, &alice_id, &alice.signer)
        .unwrap();

    let link = cid_of(b"milagro test vector: previous envelope");
    let links = [link];
    let draft = EnvelopeDraft {
        kind: "custody/order",
        time_ms: 1_700_000_123_456,
        links: &links,
        body: Some(b"{\"reference\":\"order-1\"}"),
        secret_body: Some(b"secret share: 42"),
    };
    let env = seal_with_rng(
        &alice.signer,
        &alice_id,
        &[&bob_id, &carol_id],
        &draft,
        &mut ChaCha20Rng::seed_from_u64(100),
    )
    .unwrap();
    let plain = seal_with_rng(
        &alice.signer,
        &alice_id,
        &[&bob_id],
        &EnvelopeDraft {
            body: Some(b"redeem order-1"),
            ..EnvelopeDraft::new("custody/redeem", 1_700_000_200_000)
        },
        &mut ChaCha20Rng::seed_from_u64(101),
    )
    .unwrap();

    // Hybrid KEM intermediate values, to bob.
    let (hct, kek) = kem::encapsulate_with_rng(
        &bob.ecdh.public_key(),
        &bob.kem.public_key(),
        bob_id.id(),
        &mut ChaCha20Rng::seed_from_u64(200),
    )
    .unwrap();
    let ss_ec = bob.ecdh.diffie_hellman(&hct.epk).unwrap();
    let ss_kem = bob.kem.decapsulate(&hct.kem_ct).unwrap();

    json!({
        "description": "Milagro protocol v1 test vectors. All keys are test keys derived from ChaCha20Rng::seed_from_u64(rng_seed_u64) (rand_chacha 0.10) in the order signing, ecdh, kem. Regenerate: MILAGRO_WRITE_VECTORS=1 cargo test -p milagro-proto --test vectors",
        "parties": {
            "alice": keys_json(1, &alice),
            "bob": keys_json(2, &bob),
            "carol": keys_json(3, &carol),
            "alice_rotated": keys_json(4, &alice2),
        },
        "identities": {
            "alice": block_json(alice_id.id(), alice_id.block().bytes()),
            "bob": block_json(bob_id.id(), bob_id.block().bytes()),
            "carol": block_json(carol_id.id(), carol_id.block().bytes()),
            "alice_rotated": block_json(alice_rotated.id(), alice_rotated.block().bytes()),
        },
        "envelopes": {
            "sealed": {
                "rng_seed_u64": 100,
                "sender": "alice",
                "recipients": ["bob", "carol"],
                "secret_body_hex": hex::encode(b"secret share: 42"),
                "block": block_json(env.cid(), env.block().bytes()),
            },
            "plain": {
                "rng_seed_u64": 101,
                "sender": "alice",
                "recipients": ["bob"],
                "block": block_json(plain.cid(), plain.block().bytes()),
            },
        },
        "hybrid_kem": {
            "rng_seed_u64": 200,
            "recipient": "bob",
            "recipient_id": bob_id.id().to_string(),
            "epk": hex::encode(hct.epk.to_bytes()),
            "kem_ct": hex::encode(&hct.kem_ct),
            "ss_ec": hex::encode(&ss_ec[..]),
            "ss_kem": hex::encode(&ss_kem[..]),
            "kek": hex::encode(&kek[..]),
        },
    })
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("missing string at {path:?}"))
}

fn h(v: &Value, path: &[&str]) -> Vec<u8> {
    hex::decode(s(v, path)).unwrap()
}

fn identity_from(v: &Value, name: &str) -> VerifiedIdentity {
    let cid: Cid = s(v, &["identities", name, "cid"]).parse().unwrap();
    let bytes = h(v, &["identities", name, "hex"]);
    VerifiedIdentity::decode(&cid, &bytes, &Limits::default()).unwrap()
}

fn keys_from(v: &Value, name: &str) -> (LocalSigner, LocalEcdhKey, DecapsulationKey) {
    let k32 = |f: &str| -> [u8; 32] { h(v, &["parties", name, f]).try_into().unwrap() };
    let seed: [u8; 64] = h(v, &["parties", name, "kem_seed"]).try_into().unwrap();
    (
        LocalSigner::from_bytes(&k32("signing_secret")).unwrap(),
        LocalEcdhKey::from_bytes(&k32("ecdh_secret")).unwrap(),
        DecapsulationKey::from_seed(&seed),
    )
}

#[test]
fn vectors() {
    let fresh = generate();
    if std::env::var_os("MILAGRO_WRITE_VECTORS").is_some() {
        let mut text = serde_json::to_string_pretty(&fresh).unwrap();
        text.push('\n');
        std::fs::write(PATH, text).unwrap();
    }
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(PATH).expect("vector file missing: see module docs"),
    )
    .unwrap();

    // 1. Identities decode and verify; keys in the file match the documents.
    let alice = identity_from(&stored, "alice");
    let bob = identity_from(&stored, "bob");
    let carol = identity_from(&stored, "carol");
    let rotated = identity_from(&stored, "alice_rotated");
    rotated.verify_rotation(&alice).unwrap();
    for (name, id) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        let (sig, ecdh, kem) = keys_from(&stored, name);
        assert_eq!(sig.public_key(), *id.signing_key());
        assert_eq!(ecdh.public_key(), *id.ecdh_key());
        assert_eq!(kem.public_key(), *id.kem_key());
    }

    // 2. The sealed envelope verifies and opens for both recipients.
    let cid: Cid = s(&stored, &["envelopes", "sealed", "block", "cid"])
        .parse()
        .unwrap();
    let bytes = h(&stored, &["envelopes", "sealed", "block", "hex"]);
    let env = Envelope::decode_and_verify(&cid, &bytes, &alice, &Limits::default()).unwrap();
    let secret = h(&stored, &["envelopes", "sealed", "secret_body_hex"]);
    for (name, id) in [("bob", &bob), ("carol", &carol)] {
        let (_, ecdh, kem) = keys_from(&stored, name);
        assert_eq!(&env.open(id.id(), &ecdh, &kem).unwrap()[..], &secret[..]);
    }
    let cid: Cid = s(&stored, &["envelopes", "plain", "block", "cid"])
        .parse()
        .unwrap();
    let bytes = h(&stored, &["envelopes", "plain", "block", "hex"]);
    let plain = Envelope::decode_and_verify(&cid, &bytes, &alice, &Limits::default()).unwrap();
    assert_eq!(plain.body(), Some(&b"redeem order-1"[..]));

    // 3. Hybrid KEM: bob's keys re-derive the KEK from the public values.
    let (_, ecdh, kem_key) = keys_from(&stored, "bob");
    let hct = HybridCiphertext {
        epk: EcPublicKey::from_bytes(&h(&stored, &["hybrid_kem", "epk"]), "epk").unwrap(),
        kem_ct: h(&stored, &["hybrid_kem", "kem_ct"]),
    };
    assert_eq!(
        hex::encode(&ecdh.diffie_hellman(&hct.epk).unwrap()[..]),
        s(&stored, &["hybrid_kem", "ss_ec"])
    );
    assert_eq!(
        hex::encode(&kem_key.decapsulate(&hct.kem_ct).unwrap()[..]),
        s(&stored, &["hybrid_kem", "ss_kem"])
    );
    let kek = kem::decapsulate(&hct, bob.id(), &ecdh, &kem_key).unwrap();
    assert_eq!(hex::encode(&kek[..]), s(&stored, &["hybrid_kem", "kek"]));

    // 4. Same seeds, same bytes.
    assert_eq!(
        fresh, stored,
        "regenerated vectors differ from the stored file; if the format changed on purpose, \
         regenerate (see module docs) and document the change"
    );
}
