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

//! The Chaum-Pedersen proof that a client share uses the D-TA's key.
//!
//! Statement: `log_g1(P) == log_H(C)`, with `P = s*g1` the D-TA's public key,
//! `H = H(mpin_id)` and `C = s*H` the client share. Non-interactive by
//! Fiat-Shamir over a domain-separated transcript that also takes the
//! request's `context`, so a proof answers one request only:
//!
//! ```text
//! prover:   k (nonce), A1 = k*g1, A2 = k*H
//!           c = int_be(SHA-512(lp(DLEQ_DST) || lp(g1) || lp(P) || lp(H) || lp(C)
//!                              || lp(A1) || lp(A2) || lp(context))) mod r
//!           z = k - c*s mod r
//! proof:    be32(c) || be32(z)                                     (64 bytes)
//! verifier: A1' = z*g1 + c*P, A2' = z*H + c*C; accept iff c == c(A1', A2')
//! ```
//!
//! `lp(x)` is the 4-byte big-endian length of `x` then `x`; points are
//! compressed (48 bytes). The nonce is hedged: SHA-512 of the secret, the
//! statement, the context and 32 fresh random bytes, so neither a weak
//! generator nor a repeated request reuses a nonce with two challenges.
//! Verifying needs no pairing.
//!
//! Batches: the challenge hashes the commitments `A1`, `A2`, which the
//! verifier recomputes from `(c, z)`, so the usual batch check (a random
//! linear combination of `A1 == z*g1 + c*P` and `A2 == z*H + c*C` over all
//! proofs, one multi-exponentiation) does not apply to this encoding: it
//! needs proofs that carry `A1` and `A2` (a new wire version).
//! [`DleqProof::verify_batch`] checks each proof, sharing what the proofs
//! of one D-TA have in common (the precomputed multiples of `g1` and `P`).

use blstrs::{G1Affine, G1Projective, Scalar};
use group::{Curve, Group, prime::PrimeCurveAffine};
use sha2::{Digest, Sha512};

use crate::{DecodeError, SCALAR_LEN, Secret, hash_id, scalar_from_le_wide, scalar_to_be_bytes};

/// Domain separation tag of the proof's challenge.
pub const DLEQ_DST: &[u8] = b"MILAGRO-MPIN-V1_DLEQ_BLS12381G1_SHA-512";
/// Domain separation tag of the hedged nonce.
const NONCE_DST: &[u8] = b"MILAGRO-MPIN-V1_DLEQ-NONCE_BLS12381G1_SHA-512";
/// Length of an encoded proof: `c` then `z`, 32 bytes big-endian each.
pub const PROOF_LEN: usize = 2 * SCALAR_LEN;

/// A DLEQ proof `(c, z)` that a client share uses the same secret as the
/// D-TA's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DleqProof {
    c: Scalar,
    z: Scalar,
}

impl std::fmt::Debug for DleqProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DleqProof({})", hex::encode(self.to_bytes()))
    }
}

fn lp(hasher: &mut Sha512, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

/// SHA-512 as a big-endian integer, reduced mod r.
fn wide_be(digest: &[u8]) -> Scalar {
    let mut wide = zeroize::Zeroizing::new([0u8; 64]);
    wide.copy_from_slice(digest);
    wide.reverse();
    scalar_from_le_wide(&wide)
}

/// The Fiat-Shamir challenge.
fn challenge(
    public_key: &G1Affine,
    h: &G1Affine,
    share: &G1Affine,
    a1: &G1Affine,
    a2: &G1Affine,
    context: &[u8],
) -> Scalar {
    let mut t = Sha512::new();
    lp(&mut t, DLEQ_DST);
    for p in [&G1Affine::generator(), public_key, h, share, a1, a2] {
        lp(&mut t, &p.to_compressed());
    }
    lp(&mut t, context);
    wide_be(&t.finalize())
}

/// `a*p + b*q` by Straus' method with 4-bit windows, in variable time: for
/// the verifier only, whose scalars and points are all public.
fn straus_vartime(p: &G1Projective, a: &Scalar, q: &G1Projective, b: &Scalar) -> G1Projective {
    let table = |base: &G1Projective| {
        let mut t = [G1Projective::identity(); 16];
        for i in 1..16 {
            t[i] = t[i - 1] + base;
        }
        t
    };
    let (tp, tq) = (table(p), table(q));
    let (a, b) = (a.to_bytes_le(), b.to_bytes_le());
    let mut acc = G1Projective::identity();
    for i in (0..64).rev() {
        if i != 63 {
            for _ in 0..4 {
                acc = acc.double();
            }
        }
        let nibble = |bytes: &[u8; 32]| usize::from((bytes[i / 2] >> (4 * (i % 2))) & 0x0f);
        let (na, nb) = (nibble(&a), nibble(&b));
        if na != 0 {
            acc += tp[na];
        }
        if nb != 0 {
            acc += tq[nb];
        }
    }
    acc
}

/// Multiples of a fixed base for a variable-time 4-bit comb: row `j` holds
/// `d*16^j*base` for `d` in 1..=15, so `a*base` is at most 64 additions and
/// no doubling. 960 additions to build: worth it for a base used with many
/// scalars (`g1`, and a D-TA's `P` over the proofs of one reply). Public
/// values only.
struct Comb(Vec<[G1Projective; 15]>);

impl Comb {
    fn new(base: &G1Projective) -> Comb {
        let mut rows = Vec::with_capacity(64);
        let mut b = *base;
        for _ in 0..64 {
            let mut row = [b; 15];
            for d in 1..15 {
                row[d] = row[d - 1] + b;
            }
            b = row[14] + b;
            rows.push(row);
        }
        Comb(rows)
    }

    /// `acc + a*base`, in variable time.
    fn mul_add(&self, acc: &mut G1Projective, a: &Scalar) {
        for (i, byte) in a.to_bytes_le().iter().enumerate() {
            for (half, nibble) in [(0, byte & 0x0f), (1, byte >> 4)] {
                if nibble != 0 {
                    *acc += self.0[2 * i + half][usize::from(nibble) - 1];
                }
            }
        }
    }
}

/// The comb of `g1`, built once per process (138 KiB).
fn generator_comb() -> &'static Comb {
    static COMB: std::sync::OnceLock<Comb> = std::sync::OnceLock::new();
    COMB.get_or_init(|| Comb::new(&G1Projective::generator()))
}

/// Consecutive proofs under one public key from which a batch builds that
/// key's comb (below, the two-base Straus of a lone proof is cheaper).
const COMB_MIN_RUN: usize = 8;

/// One proof to check with [`DleqProof::verify_batch`]: the arguments of
/// [`DleqProof::verify_with_hash`].
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The proof.
    pub proof: DleqProof,
    /// The D-TA's public key `P`.
    pub public_key: G1Affine,
    /// `H(mpin_id)`.
    pub h: G1Affine,
    /// The client share `C`.
    pub share: G1Affine,
    /// The request's context ([`crate::wire::proof_context`]).
    pub context: &'a [u8],
}

/// 32 bytes big-endian, canonical (zero allowed).
fn scalar_be(bytes: &[u8]) -> Option<Scalar> {
    let be: [u8; SCALAR_LEN] = bytes.try_into().ok()?;
    Scalar::from_bytes_be(&be).into()
}

impl DleqProof {
    /// Proves `log_g1(public_key) == log_h(share)` for `secret`, bound to
    /// `context`, with a hedged nonce.
    pub(crate) fn prove(
        secret: &Scalar,
        public_key: &G1Affine,
        h: &G1Affine,
        share: &G1Affine,
        context: &[u8],
    ) -> Result<DleqProof, getrandom::Error> {
        let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(fresh.as_mut())?;
        let mut n = Sha512::new();
        lp(&mut n, NONCE_DST);
        lp(
            &mut n,
            zeroize::Zeroizing::new(secret.to_bytes_le()).as_slice(),
        );
        lp(&mut n, &h.to_compressed());
        lp(&mut n, context);
        lp(&mut n, fresh.as_slice());
        let k = Secret::new(wide_be(&n.finalize()));
        Ok(Self::prove_with_nonce(
            secret, &k, public_key, h, share, context,
        ))
    }

    /// [`DleqProof::prove`] with a given nonce `k` (for test vectors only:
    /// a nonce used twice with two challenges gives the secret away).
    pub(crate) fn prove_with_nonce(
        secret: &Scalar,
        k: &Scalar,
        public_key: &G1Affine,
        h: &G1Affine,
        share: &G1Affine,
        context: &[u8],
    ) -> DleqProof {
        let a1 = G1Affine::from(G1Projective::generator() * k);
        let a2 = G1Affine::from(G1Projective::from(h) * k);
        let c = challenge(public_key, h, share, &a1, &a2, context);
        let z = *k - c * secret;
        DleqProof { c, z }
    }

    /// `be32(c) || be32(z)`.
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..SCALAR_LEN].copy_from_slice(&scalar_to_be_bytes(&self.c));
        out[SCALAR_LEN..].copy_from_slice(&scalar_to_be_bytes(&self.z));
        out
    }

    /// Reads [`DleqProof::to_bytes`]; both scalars must be canonical.
    pub fn from_bytes(bytes: &[u8]) -> Result<DleqProof, DecodeError> {
        if bytes.len() != PROOF_LEN {
            return Err(DecodeError::Length {
                expected: PROOF_LEN,
                found: bytes.len(),
            });
        }
        let c = scalar_be(&bytes[..SCALAR_LEN]).ok_or(DecodeError::Scalar)?;
        let z = scalar_be(&bytes[SCALAR_LEN..]).ok_or(DecodeError::Scalar)?;
        Ok(DleqProof { c, z })
    }

    /// The proof as hex (128 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// [`DleqProof::from_bytes`] of hex.
    pub fn from_hex(s: &str) -> Result<DleqProof, DecodeError> {
        DleqProof::from_bytes(&hex::decode(s).map_err(|_| DecodeError::Hex)?)
    }

    /// Whether `share` is `s*H(mpin_id)` for the `s` of `public_key = s*g1`,
    /// proven for `context`.
    pub fn verify(
        &self,
        public_key: &G1Affine,
        mpin_id: &[u8],
        share: &G1Affine,
        context: &[u8],
    ) -> bool {
        self.verify_with_hash(public_key, &hash_id(mpin_id), share, context)
    }

    /// Checks many proofs; `Err` holds the index of the first that fails
    /// (an empty batch passes). The same result as
    /// [`DleqProof::verify_with_hash`] on each item in turn, faster for the
    /// proofs of one reply: `z*g1` comes from a per-process comb of `g1` and,
    /// for a run of at least 8 consecutive items under one public key,
    /// `c*P` from a comb of `P` built for the run (see the module's note on
    /// why the proofs are not combined into one multi-exponentiation).
    pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), usize> {
        let g1 = generator_comb();
        let mut start = 0;
        while start < items.len() {
            let key = items[start].public_key;
            let run = items[start..]
                .iter()
                .take_while(|item| item.public_key == key)
                .count();
            let key_comb = (run >= COMB_MIN_RUN).then(|| Comb::new(&key.into()));
            for (i, item) in items[start..start + run].iter().enumerate() {
                let ok = match &key_comb {
                    Some(p) => item.proof.verify_with_combs(g1, p, item),
                    None => item.proof.verify_with_hash(
                        &item.public_key,
                        &item.h,
                        &item.share,
                        item.context,
                    ),
                };
                if !ok {
                    return Err(start + i);
                }
            }
            start += run;
        }
        Ok(())
    }

    /// [`DleqProof::verify_with_hash`] with `A1` from the combs of `g1` and
    /// `item.public_key`.
    fn verify_with_combs(&self, g1: &Comb, key: &Comb, item: &BatchItem<'_>) -> bool {
        let (p, h, share) = (&item.public_key, &item.h, &item.share);
        if bool::from(p.is_identity() | h.is_identity() | share.is_identity()) {
            return false;
        }
        let mut a1 = G1Projective::identity();
        g1.mul_add(&mut a1, &self.z);
        key.mul_add(&mut a1, &self.c);
        let a2 = straus_vartime(&h.into(), &self.z, &share.into(), &self.c);
        let mut affine = [G1Affine::identity(); 2];
        G1Projective::batch_normalize(&[a1, a2], &mut affine);
        challenge(p, h, share, &affine[0], &affine[1], item.context) == self.c
    }

    /// [`DleqProof::verify`] with `H(mpin_id)` already computed (a requester
    /// checking several D-TAs' shares for one ID hashes it once).
    pub fn verify_with_hash(
        &self,
        public_key: &G1Affine,
        h: &G1Affine,
        share: &G1Affine,
        context: &[u8],
    ) -> bool {
        if bool::from(public_key.is_identity() | h.is_identity() | share.is_identity()) {
            return false;
        }
        let a1 = straus_vartime(
            &G1Projective::generator(),
            &self.z,
            &public_key.into(),
            &self.c,
        );
        let a2 = straus_vartime(&h.into(), &self.z, &share.into(), &self.c);
        let mut affine = [G1Affine::identity(); 2];
        G1Projective::batch_normalize(&[a1, a2], &mut affine);
        challenge(public_key, h, share, &affine[0], &affine[1], context) == self.c
    }
}

/// `a*base` by a [`Comb`], for the unit tests.
#[cfg(test)]
pub(crate) fn comb_for_tests(base: &G1Projective, a: &Scalar) -> G1Projective {
    let mut acc = G1Projective::identity();
    Comb::new(base).mul_add(&mut acc, a);
    acc
}

/// [`straus_vartime`], for the unit tests.
#[cfg(test)]
pub(crate) fn straus_for_tests(
    p: &G1Projective,
    a: &Scalar,
    q: &G1Projective,
    b: &Scalar,
) -> G1Projective {
    straus_vartime(p, a, q, b)
}
