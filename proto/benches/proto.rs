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

//! Benchmarks: identity verification, seal and open for 1, 2, 5 and 20
//! recipients, and the primitives they are made of (measured in the same
//! run so that seal + open can be compared with the sum of its parts).

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{Criterion, criterion_group, criterion_main};
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::elliptic_curve::Generate;
use milagro_proto::block::cid_of;
use milagro_proto::kem::{HybridCiphertext, derive_kek};
use milagro_proto::{
    DecapsulationKey, EcdhKey, Envelope, EnvelopeDraft, IdentityDraft, Limits, LocalEcdhKey,
    LocalSigner, Signer, VerifiedIdentity, seal,
};
use ml_kem::kem::{Decapsulate, Encapsulate};

const BODY: usize = 1024;

struct Node {
    signer: LocalSigner,
    ecdh: LocalEcdhKey,
    kem: DecapsulationKey,
    id: VerifiedIdentity,
}

fn node(name: &str) -> Node {
    let signer = LocalSigner::generate().unwrap();
    let ecdh = LocalEcdhKey::generate().unwrap();
    let kem = DecapsulationKey::generate().unwrap();
    let id = IdentityDraft::new(
        name,
        1_700_000_000_000,
        signer.public_key(),
        ecdh.public_key(),
        kem.public_key(),
    )
    .sign(&signer)
    .unwrap();
    Node {
        signer,
        ecdh,
        kem,
        id,
    }
}

fn protocol(c: &mut Criterion) {
    let sender = node("sender");
    let nodes: Vec<Node> = (0..20).map(|i| node(&format!("r{i}"))).collect();
    let limits = Limits::default();
    let secret = vec![0x5a; BODY];

    c.bench_function("identity/verify", |b| {
        let blk = sender.id.block();
        b.iter(|| VerifiedIdentity::decode(blk.cid(), black_box(blk.bytes()), &limits).unwrap())
    });

    for n in [1usize, 2, 5, 20] {
        let to: Vec<&VerifiedIdentity> = nodes.iter().take(n).map(|x| &x.id).collect();
        let draft = EnvelopeDraft {
            secret_body: Some(&secret),
            ..EnvelopeDraft::new("custody/order", 1_700_000_000_000)
        };
        c.bench_function(&format!("envelope/seal/{n}"), |b| {
            b.iter(|| seal(&sender.signer, &sender.id, black_box(&to), &draft).unwrap())
        });
        let env = seal(&sender.signer, &sender.id, &to, &draft).unwrap();
        let me = &nodes[n - 1];
        c.bench_function(&format!("envelope/open/{n}"), |b| {
            b.iter(|| {
                let v = Envelope::decode_and_verify(
                    env.cid(),
                    black_box(env.block().bytes()),
                    &sender.id,
                    &limits,
                )
                .unwrap();
                v.open(me.id.id(), &me.ecdh, &me.kem).unwrap()
            })
        });
    }
}

fn primitives(c: &mut Criterion) {
    let signer = LocalSigner::generate().unwrap();
    let digest = [7u8; 32];
    let sk = k256::ecdsa::SigningKey::from_slice(&signer.to_bytes()[..]).unwrap();
    let vk = *sk.verifying_key();
    c.bench_function("prim/ecdsa_sign", |b| {
        b.iter(|| -> k256::ecdsa::Signature { sk.sign_prehash(black_box(&digest)).unwrap() })
    });
    let sig: k256::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
    c.bench_function("prim/ecdsa_verify", |b| {
        b.iter(|| vk.verify_prehash(black_box(&digest), &sig).unwrap())
    });

    let ecdh = LocalEcdhKey::generate().unwrap();
    let peer = LocalEcdhKey::generate().unwrap().public_key();
    c.bench_function("prim/ecdh", |b| {
        b.iter(|| ecdh.diffie_hellman(black_box(&peer)).unwrap())
    });
    c.bench_function("prim/ecdh_ephemeral", |b| {
        // what a sender does per recipient: fresh key, its public key, ECDH
        b.iter(|| {
            let e = k256::ecdh::EphemeralSecret::generate_from_rng(&mut rand_core::UnwrapErr(
                getrandom::SysRng,
            ));
            let p = e.public_key();
            (p, e.diffie_hellman(black_box(peer.as_k256())))
        })
    });

    let (dk, ek) = {
        use ml_kem::kem::Kem;
        ml_kem::MlKem768::generate_keypair_from_rng(&mut rand_core::UnwrapErr(getrandom::SysRng))
    };
    c.bench_function("prim/mlkem768_encaps", |b| {
        b.iter(|| black_box(&ek).encapsulate_with_rng(&mut rand_core::UnwrapErr(getrandom::SysRng)))
    });
    let (ct, _) = ek.encapsulate_with_rng(&mut rand_core::UnwrapErr(getrandom::SysRng));
    c.bench_function("prim/mlkem768_decaps", |b| {
        b.iter(|| dk.decapsulate(black_box(&ct)))
    });

    let hct = HybridCiphertext {
        epk: peer,
        kem_ct: ct.to_vec(),
    };
    let id = cid_of(b"recipient");
    c.bench_function("prim/hkdf_kek", |b| {
        b.iter(|| derive_kek(&[1u8; 32], &[2u8; 32], black_box(&hct), &id))
    });

    let key = [9u8; 32];
    let cipher = Aes256Gcm::new((&key).into());
    let aad = [3u8; 32];
    c.bench_function("prim/aes256gcm_seal_1k", |b| {
        b.iter(|| {
            let mut buf = vec![0x5a; BODY];
            cipher
                .encrypt_in_place(&Nonce::default(), &aad, &mut buf)
                .unwrap();
            buf
        })
    });
    let mut sealed = vec![0x5a; BODY];
    cipher
        .encrypt_in_place(&Nonce::default(), &aad, &mut sealed)
        .unwrap();
    c.bench_function("prim/aes256gcm_open_1k", |b| {
        b.iter(|| {
            let mut buf = sealed.clone();
            cipher
                .decrypt_in_place(&Nonce::default(), &aad, &mut buf)
                .unwrap();
            buf
        })
    });
    c.bench_function("prim/aes256gcm_wrap_32", |b| {
        b.iter(|| {
            let mut buf = vec![0x5a; 32];
            cipher
                .encrypt_in_place(&Nonce::default(), &aad, &mut buf)
                .unwrap();
            buf
        })
    });
    let env_like = vec![0u8; 2600];
    c.bench_function("prim/sha256_2600", |b| {
        b.iter(|| cid_of(black_box(&env_like)))
    });
}

criterion_group!(benches, protocol, primitives);
criterion_main!(benches);
