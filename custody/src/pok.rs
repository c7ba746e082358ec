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

//! Schnorr proof of knowledge of k for K = k*G on secp256k1 (Fiat-Shamir).
//!
//! A fiduciary proves it knows the discrete logarithm of its share public key
//! K_i, so it cannot choose K_i as a function of the other parties' keys
//! (a rogue-key attack that would let it control P = B + ΣK_i).
//!
//! Prover: r random non-zero (OS CSPRNG), R = r*G, c = H(...) mod n,
//! s = r + c*k. Proof = R (33 bytes, compressed) || s (32 bytes).
//! Verifier: s*G == R + c*K, with K and R not the identity.
//!
//! The challenge hash is SHA-256 over
//!
//! ```text
//! u16be(len(DST)) || DST || K (33) || R (33)
//!   || u32be(len(order_cid)) || order_cid (binary CID)
//!   || u32be(len(fiduciary)) || fiduciary (UTF-8 node ID text)
//! ```
//!
//! with `DST = b"milagro/custody/pok/v1"`, reduced modulo n. Binding the
//! order CID and the fiduciary's node ID means a proof cannot be replayed for
//! another order or by another fiduciary.

use k256::elliptic_curve::ops::Reduce;
use k256::{FieldBytes, ProjectivePoint, PublicKey, Scalar};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::keys::{self, SecretScalar};
use crate::{Error, Result};

/// Domain-separation tag of the proof of knowledge.
pub const POK_DST: &[u8] = b"milagro/custody/pok/v1";

/// Length of an encoded proof: R (33) || s (32).
pub const PROOF_LEN: usize = 65;

/// What a proof is bound to: the order and the proving fiduciary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PokContext<'a> {
    /// The binary CID of the `custody/order` block (`Cid::to_bytes`).
    pub order_cid: &'a [u8],
    /// The fiduciary's node ID, as text (canonical CID string).
    pub fiduciary: &'a str,
}

/// A Schnorr proof of knowledge: commitment R and response s.
#[derive(Clone, PartialEq, Eq)]
pub struct Proof {
    r: PublicKey,
    s: Scalar,
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof").finish_non_exhaustive()
    }
}

impl Proof {
    /// The 65-byte encoding R || s.
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..33].copy_from_slice(&keys::encode_public_key(&self.r));
        out[33..].copy_from_slice(&*keys::encode_scalar(&self.s));
        out
    }

    /// Decode R || s: R must be a valid compressed non-identity point and s
    /// a canonical scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PROOF_LEN {
            return Err(Error::InvalidProof);
        }
        let r = keys::decode_public_key(&bytes[..33]).map_err(|_| Error::InvalidProof)?;
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&bytes[33..]);
        let s = keys::decode_scalar(&s_bytes).map_err(|_| Error::InvalidProof)?;
        Ok(Proof { r, s })
    }
}

/// The Fiat-Shamir challenge (see the module documentation for the exact input).
pub fn challenge(public: &PublicKey, r: &PublicKey, ctx: &PokContext<'_>) -> Scalar {
    let mut h = Sha256::new();
    h.update((POK_DST.len() as u16).to_be_bytes());
    h.update(POK_DST);
    h.update(keys::encode_public_key(public));
    h.update(keys::encode_public_key(r));
    h.update((ctx.order_cid.len() as u32).to_be_bytes());
    h.update(ctx.order_cid);
    h.update((ctx.fiduciary.len() as u32).to_be_bytes());
    h.update(ctx.fiduciary.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(digest))
}

/// Prove knowledge of `secret` (for `secret * G`) in `ctx`.
pub fn prove(secret: &SecretScalar, ctx: &PokContext<'_>) -> Result<Proof> {
    let public = secret.public_key();
    let mut nonce = SecretScalar::random()?;
    let r = nonce.public_key();
    let c = challenge(&public, &r, ctx);
    let s = *nonce.as_scalar() + c * secret.as_scalar();
    nonce.zeroize();
    Ok(Proof { r, s })
}

/// Verify a proof of knowledge of the discrete log of `public` in `ctx`.
///
/// `PublicKey` can never be the identity, so identity keys and identity
/// commitments are rejected at decoding (see [`keys::decode_public_key`]).
pub fn verify(public: &PublicKey, proof: &Proof, ctx: &PokContext<'_>) -> Result<()> {
    let c = challenge(public, &proof.r, ctx);
    let lhs = ProjectivePoint::mul_by_generator_vartime(&proof.s);
    let rhs = proof.r.to_projective() + public.to_projective() * c;
    if lhs == rhs {
        Ok(())
    } else {
        Err(Error::InvalidProof)
    }
}

/// Decode a proof and verify it (convenience for received commitments).
pub fn verify_bytes(public: &[u8], proof: &[u8], ctx: &PokContext<'_>) -> Result<()> {
    let public = keys::decode_public_key(public)?;
    let proof = Proof::from_bytes(proof)?;
    verify(&public, &proof, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID_A: &[u8] = b"\x01\x71\x12\x20order-a-0123456789abcdef0123456";
    const CID_B: &[u8] = b"\x01\x71\x12\x20order-b-0123456789abcdef0123456";

    fn ctx<'a>(cid: &'a [u8], id: &'a str) -> PokContext<'a> {
        PokContext {
            order_cid: cid,
            fiduciary: id,
        }
    }

    /// The challenge vector written down in docs/custody.md (K = 1*G, R = 2*G).
    #[test]
    fn challenge_vector() {
        let key = |n: u8| {
            let mut b = [0u8; 32];
            b[31] = n;
            SecretScalar::from_bytes(&b).unwrap().public_key()
        };
        let cid =
            hex::decode("017112206211240620bd9b6fc7f5985bc7e5e948005e91d8b1f7af7b8355c5f36c49ffc8")
                .unwrap();
        let c = challenge(
            &key(1),
            &key(2),
            &ctx(
                &cid,
                "bafyreiaij7wqrolyv5gx2glkordkq22yacpgg23bdwyweenwlknk37zjyu",
            ),
        );
        assert_eq!(
            hex::encode(*keys::encode_scalar(&c)),
            "b7894b6d442f49424504c5413dd674604fd86b3a03f960019a2daeac17eac79f"
        );
    }

    #[test]
    fn prove_verify_roundtrip() {
        let k = SecretScalar::random().unwrap();
        let c = ctx(CID_A, "fid-1");
        let proof = prove(&k, &c).unwrap();
        verify(&k.public_key(), &proof, &c).unwrap();
        let bytes = proof.to_bytes();
        verify_bytes(&keys::encode_public_key(&k.public_key()), &bytes, &c).unwrap();
    }

    #[test]
    fn nonces_are_fresh() {
        let k = SecretScalar::random().unwrap();
        let c = ctx(CID_A, "fid-1");
        assert_ne!(
            prove(&k, &c).unwrap().to_bytes(),
            prove(&k, &c).unwrap().to_bytes()
        );
    }

    #[test]
    fn wrong_context_rejected() {
        let k = SecretScalar::random().unwrap();
        let proof = prove(&k, &ctx(CID_A, "fid-1")).unwrap();
        let pk = k.public_key();
        assert_eq!(
            verify(&pk, &proof, &ctx(CID_B, "fid-1")),
            Err(Error::InvalidProof)
        );
        assert_eq!(
            verify(&pk, &proof, &ctx(CID_A, "fid-2")),
            Err(Error::InvalidProof)
        );
        // Length prefixes: moving bytes between the two fields changes the hash.
        assert_eq!(
            verify(&pk, &proof, &ctx(&CID_A[..CID_A.len() - 1], "6fid-1")),
            Err(Error::InvalidProof)
        );
    }

    #[test]
    fn wrong_key_rejected() {
        let k = SecretScalar::random().unwrap();
        let other = SecretScalar::random().unwrap();
        let c = ctx(CID_A, "fid-1");
        let proof = prove(&k, &c).unwrap();
        assert_eq!(
            verify(&other.public_key(), &proof, &c),
            Err(Error::InvalidProof)
        );
    }

    #[test]
    fn tampered_proof_rejected() {
        let k = SecretScalar::random().unwrap();
        let c = ctx(CID_A, "fid-1");
        let pk = keys::encode_public_key(&k.public_key());
        let bytes = prove(&k, &c).unwrap().to_bytes();
        for i in 0..PROOF_LEN {
            for bit in [0x01u8, 0x80] {
                let mut t = bytes;
                t[i] ^= bit;
                assert!(verify_bytes(&pk, &t, &c).is_err(), "byte {i} bit {bit:#x}");
            }
        }
        assert!(verify_bytes(&pk, &bytes[..64], &c).is_err());
    }

    #[test]
    fn identity_points_rejected() {
        let k = SecretScalar::random().unwrap();
        let c = ctx(CID_A, "fid-1");
        let bytes = prove(&k, &c).unwrap().to_bytes();
        // Identity as K (the SEC1 identity is the single byte 0x00, or any 33-byte garbage).
        assert_eq!(
            verify_bytes(&[0u8], &bytes, &c),
            Err(Error::InvalidPublicKey)
        );
        assert_eq!(
            verify_bytes(&[0u8; 33], &bytes, &c),
            Err(Error::InvalidPublicKey)
        );
        // Identity as R.
        let mut t = bytes;
        t[..33].copy_from_slice(&[0u8; 33]);
        assert!(Proof::from_bytes(&t).is_err());
        // s = n (non-canonical) is refused.
        let mut t = bytes;
        t[33..].copy_from_slice(&[0xff; 32]);
        assert!(Proof::from_bytes(&t).is_err());
    }

    #[test]
    fn forged_proof_without_knowledge_fails() {
        // A rogue key K' = X - K_other with a random "proof" does not verify.
        let other = SecretScalar::random().unwrap();
        let target = SecretScalar::random().unwrap();
        let rogue = keys::point_to_public_key(
            &(target.public_key().to_projective() - other.public_key().to_projective()),
        )
        .unwrap();
        let c = ctx(CID_A, "fid-1");
        let fake = prove(&target, &c).unwrap();
        assert!(verify(&rogue, &fake, &c).is_err());
    }
}
