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

//! M-Pin on BLS12-381, shared by the D-TA plugin, the `mpin` authentication
//! plugin and M-Pin clients (see `docs/dta.md` and `docs/mpin.md`).
//!
//! - [`hash_id`]: `H`, the RFC 9380 hash-to-G1 suite
//!   `BLS12381G1_XMD:SHA-256_SSWU_RO_` under the tag [`MPIN_DST`].
//! - [`MasterShare`]: a D-TA's master-secret share `s_i`. Its public key is
//!   `P_i = s_i*g1` in G1; its client share for an ID is `s_i*H(id)` (G1),
//!   issued with a [`DleqProof`] that it uses the same `s_i` as `P_i`; its
//!   server share is `S_i = s_i*Q` (G2), which is a secret of the
//!   authentication server and never published: [`verify_server_share`]
//!   checks it against `P_i` with a pairing.
//! - [`client`] and [`server`]: the two passes of M-Pin.
//! - [`wire`]: the bodies of the `dta/request` and `dta/share` envelopes.
//!
//! Points travel in the standard compressed encodings (48-byte G1, 96-byte
//! G2; the zcash / blst format), scalars as 32 bytes big-endian. Decoders
//! refuse points off the prime-order subgroup and the identity. Secrets are
//! zeroized when dropped (see [`Secret`]).
//!
//! The arithmetic is `blstrs` (the `ff`/`group`/`pairing` traits over
//! supranational's `blst`), re-exported as [`curve`]. Multiplications by a
//! secret scalar (a share `s_i`, a DLEQ nonce, an M-Pin `x`) go through
//! `blstrs`' `Mul<&Scalar>`, which is `blst_p1_mult` / `blst_p2_mult` with
//! the public bit length 255: for a reduced scalar that is the GLV (G1) or
//! GLS (G2) method with Booth-recoded 5-bit windows, each table entry read by
//! a full-table masked copy (`gather_booth_w5`), additions that take the
//! point at infinity without a branch, and the scalar's copy scrubbed after
//! (blst 0.3.17, `src/e1.c`, `src/e2.c`, `src/ec_mult.h`): constant time.
//! Only the DLEQ verifier, whose inputs are all public, uses variable-time
//! arithmetic.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
mod dleq;
pub mod server;
pub mod wire;

pub use blstrs as curve;
pub use blstrs::{G1Affine, G1Projective, G2Affine, G2Projective, Gt, Scalar};
pub use dleq::{BatchItem, DLEQ_DST, DleqProof, PROOF_LEN};
/// The traits that give the curve types their constants and methods
/// (`Scalar::ZERO`, `G1Projective::generator()`, `is_identity()`, ...).
pub use ff::Field;
pub use group::{Curve, Group, prime::PrimeCurveAffine};

use blstrs::{Bls12, G2Prepared};
use pairing::{MillerLoopResult, MultiMillerLoop};
use zeroize::{DefaultIsZeroes, Zeroize, Zeroizing};

/// Domain separation tag of `H` for M-Pin IDs.
pub const MPIN_DST: &[u8] = b"MILAGRO-MPIN-V1_BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// Length of a compressed G1 point.
pub const G1_LEN: usize = 48;
/// Length of a compressed G2 point.
pub const G2_LEN: usize = 96;
/// Length of an encoded scalar.
pub const SCALAR_LEN: usize = 32;

/// Why bytes are not a valid point or scalar. Says nothing of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input has the wrong length.
    #[error("expected {expected} bytes, got {found}")]
    Length {
        /// The length the encoding has.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The input is not hexadecimal.
    #[error("not hex")]
    Hex,
    /// Not a point of the prime-order subgroup (named: `G1` or `G2`).
    #[error("not a valid compressed {0} point in the prime-order subgroup")]
    Point(&'static str),
    /// The point at infinity.
    #[error("the point at infinity is not accepted")]
    Identity,
    /// Not a canonical scalar, or zero.
    #[error("not a canonical non-zero scalar")]
    Scalar,
}

/// `H(msg)` under `dst`: RFC 9380 `BLS12381G1_XMD:SHA-256_SSWU_RO_`
/// (`blst_hash_to_g1` with no augmentation prefix).
pub fn hash_to_g1(msg: &[u8], dst: &[u8]) -> G1Affine {
    G1Affine::from(G1Projective::hash_to_curve(msg, dst, &[]))
}

/// `H(mpin_id)` under [`MPIN_DST`].
pub fn hash_id(mpin_id: &[u8]) -> G1Affine {
    hash_to_g1(mpin_id, MPIN_DST)
}

/// A 512-bit little-endian integer reduced mod r (what `bls12_381`'s
/// `Scalar::from_bytes_wide` computed, which `blstrs` lacks): Horner's rule
/// over four 128-bit limbs, each below r, in constant-time field arithmetic.
pub(crate) fn scalar_from_le_wide(wide: &[u8; 64]) -> Scalar {
    let limb = |i: usize| {
        let mut le = Zeroizing::new([0u8; SCALAR_LEN]);
        le[..16].copy_from_slice(&wide[16 * i..16 * (i + 1)]);
        Secret::new(Scalar::from_bytes_le(&le).expect("a 128-bit value is below r"))
    };
    let mut two_128 = [0u8; SCALAR_LEN];
    two_128[16] = 1;
    let two_128 = Scalar::from_bytes_le(&two_128).expect("2^128 is below r");
    let mut acc = limb(3);
    for i in (0..3).rev() {
        acc = Secret::new(*acc * two_128 + *limb(i));
    }
    *acc
}

/// A uniformly random non-zero scalar from the OS's generator.
pub fn random_scalar() -> Result<Scalar, getrandom::Error> {
    loop {
        let mut wide = Zeroizing::new([0u8; 64]);
        getrandom::fill(wide.as_mut())?;
        let s = scalar_from_le_wide(&wide);
        if !bool::from(s.is_zero()) {
            return Ok(s);
        }
    }
}

/// A copy of a secret scalar or point (any `Copy + Default` value), wiped
/// when dropped; dereferences to the value.
///
/// `blstrs`' types do not implement `Zeroize` (`bls12_381` had it behind a
/// feature), and the orphan rule forbids implementing it here, so the value
/// sits in a private wrapper that is `zeroize::DefaultIsZeroes`: dropping
/// overwrites it with its `Default` (all-zero limbs for `Scalar` and the
/// affine points) by `zeroize`'s volatile write and fence, with no `unsafe`
/// in this crate. As before, copies the arithmetic makes on the stack (the
/// curve types are `Copy`) are not covered.
pub struct Secret<T: Copy + Default>(Wipe<T>);

#[derive(Clone, Copy, Default)]
struct Wipe<T>(T);

impl<T: Copy + Default> DefaultIsZeroes for Wipe<T> {}

impl<T: Copy + Default> Secret<T> {
    /// Holds `value` until dropped.
    pub fn new(value: T) -> Secret<T> {
        Secret(Wipe(value))
    }
}

impl<T: Copy + Default> std::ops::Deref for Secret<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.0
    }
}

impl<T: Copy + Default> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Copy + Default> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Overwrites a scalar or point held in a caller's own structure with its
/// `Default` (all-zero limbs) in place, for the structures that zeroized a
/// `bls12_381` value on drop. Without `unsafe`, no volatile write through a
/// `&mut T` of a foreign type is possible; the store is kept by handing the
/// reference to `std::hint::black_box`, which the compiler must assume
/// reads it. Prefer [`Secret`] (a volatile write) where the value can live
/// in one.
pub fn wipe<T: Copy + Default>(value: &mut T) {
    *value = T::default();
    std::hint::black_box(value);
}

/// A D-TA's master-secret share `s_i` (and its public key, computed once).
/// Zeroized on drop ([`Secret`]); never printed.
pub struct MasterShare(Secret<Scalar>, G1Affine);

impl std::fmt::Debug for MasterShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterShare(..)")
    }
}

impl MasterShare {
    /// Draws a uniformly random non-zero share from the OS's generator.
    pub fn generate() -> Result<MasterShare, getrandom::Error> {
        random_scalar().map(MasterShare::new)
    }

    fn new(s: Scalar) -> MasterShare {
        let s = Secret::new(s);
        let public = G1Affine::from(G1Projective::generator() * *s);
        MasterShare(s, public)
    }

    /// The canonical 32-byte (little-endian) encoding, for the keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        Zeroizing::new(self.0.to_bytes_le())
    }

    /// Reads [`MasterShare::to_bytes`]; refuses a non-canonical or zero scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterShare, DecodeError> {
        let arr: &[u8; SCALAR_LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            expected: SCALAR_LEN,
            found: bytes.len(),
        })?;
        let s: Option<Scalar> = Scalar::from_bytes_le(arr).into();
        match s {
            Some(s) if !bool::from(s.is_zero()) => Ok(MasterShare::new(s)),
            _ => Err(DecodeError::Scalar),
        }
    }

    /// The public key `P_i = s_i*g1` (G1).
    pub fn public_key(&self) -> G1Affine {
        self.1
    }

    /// The client-secret share `s_i*H(mpin_id)` (G1), without a proof.
    pub fn client_share(&self, mpin_id: &[u8]) -> G1Affine {
        G1Affine::from(G1Projective::from(hash_id(mpin_id)) * *self.0)
    }

    /// The server-secret share `S_i = s_i*Q` (G2). A secret: it goes sealed
    /// to an authentication server only, never into a clear body or a log.
    pub fn server_share(&self) -> G2Affine {
        G2Affine::from(G2Projective::generator() * *self.0)
    }

    /// The client share for `mpin_id` with a DLEQ proof bound to `context`
    /// (the request it answers; see [`wire::proof_context`]).
    pub fn prove_client_share(
        &self,
        mpin_id: &[u8],
        context: &[u8],
    ) -> Result<(G1Affine, DleqProof), getrandom::Error> {
        let h = hash_id(mpin_id);
        let share = G1Affine::from(G1Projective::from(h) * *self.0);
        let proof = DleqProof::prove(&self.0, &self.1, &h, &share, context)?;
        Ok((share, proof))
    }

    /// `s_i + 1`, for the tests of a wrong share.
    #[cfg(test)]
    pub(crate) fn scalar_plus_one_for_tests(&self) -> Scalar {
        *self.0 + Scalar::ONE
    }
}

/// Checks a server-secret share against its D-TA's public key:
/// `e(P_i, Q) == e(g1, S_i)`.
pub fn verify_server_share(share: &G2Affine, public_key: &G1Affine) -> bool {
    if bool::from(share.is_identity()) || bool::from(public_key.is_identity()) {
        return false;
    }
    let q = G2Prepared::from(G2Affine::generator());
    let s = G2Prepared::from(*share);
    let neg_g1 = -G1Affine::generator();
    Bls12::multi_miller_loop(&[(public_key, &q), (&neg_g1, &s)]).final_exponentiation()
        == Gt::identity()
}

/// The sum of G1 points.
pub fn combine_g1<'a>(points: impl IntoIterator<Item = &'a G1Affine>) -> G1Affine {
    G1Affine::from(
        points
            .into_iter()
            .fold(G1Projective::identity(), |acc, p| acc + p),
    )
}

/// The sum of G2 points.
pub fn combine_g2<'a>(points: impl IntoIterator<Item = &'a G2Affine>) -> G2Affine {
    G2Affine::from(
        points
            .into_iter()
            .fold(G2Projective::identity(), |acc, p| acc + p),
    )
}

/// A G1 point, compressed, as hex (96 characters).
pub fn g1_to_hex(p: &G1Affine) -> String {
    hex::encode(p.to_compressed())
}

/// A G2 point, compressed, as hex (192 characters).
pub fn g2_to_hex(p: &G2Affine) -> String {
    hex::encode(p.to_compressed())
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::Length {
        expected: N,
        found: bytes.len(),
    })
}

fn unhex(s: &str) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    hex::decode(s)
        .map(Zeroizing::new)
        .map_err(|_| DecodeError::Hex)
}

/// A compressed G1 point, checked to be in the subgroup and not the identity.
pub fn g1_from_bytes(bytes: &[u8]) -> Result<G1Affine, DecodeError> {
    let p: Option<G1Affine> = G1Affine::from_compressed(&fixed::<G1_LEN>(bytes)?).into();
    let p = p.ok_or(DecodeError::Point("G1"))?;
    if bool::from(p.is_identity()) {
        return Err(DecodeError::Identity);
    }
    Ok(p)
}

/// A compressed G2 point, checked to be in the subgroup and not the identity.
pub fn g2_from_bytes(bytes: &[u8]) -> Result<G2Affine, DecodeError> {
    let p: Option<G2Affine> = G2Affine::from_compressed(&fixed::<G2_LEN>(bytes)?).into();
    let p = p.ok_or(DecodeError::Point("G2"))?;
    if bool::from(p.is_identity()) {
        return Err(DecodeError::Identity);
    }
    Ok(p)
}

/// [`g1_from_bytes`] of hex.
pub fn g1_from_hex(s: &str) -> Result<G1Affine, DecodeError> {
    g1_from_bytes(&unhex(s)?)
}

/// [`g2_from_bytes`] of hex.
pub fn g2_from_hex(s: &str) -> Result<G2Affine, DecodeError> {
    g2_from_bytes(&unhex(s)?)
}

/// A scalar as 32 bytes big-endian.
pub fn scalar_to_be_bytes(s: &Scalar) -> [u8; SCALAR_LEN] {
    s.to_bytes_be()
}

/// 32 bytes big-endian as a scalar: canonical (below the group order) and
/// non-zero.
pub fn scalar_from_be_bytes(bytes: &[u8]) -> Result<Scalar, DecodeError> {
    let be = Zeroizing::new(fixed::<SCALAR_LEN>(bytes)?);
    let s: Option<Scalar> = Scalar::from_bytes_be(&be).into();
    match s {
        Some(s) if !bool::from(s.is_zero()) => Ok(s),
        _ => Err(DecodeError::Scalar),
    }
}

/// A scalar as 64 hex characters, big-endian.
pub fn scalar_to_be_hex(s: &Scalar) -> String {
    hex::encode(scalar_to_be_bytes(s))
}

/// [`scalar_from_be_bytes`] of hex.
pub fn scalar_from_be_hex(s: &str) -> Result<Scalar, DecodeError> {
    scalar_from_be_bytes(&unhex(s)?)
}

#[cfg(test)]
mod tests;
