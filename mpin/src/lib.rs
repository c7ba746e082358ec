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
//! zeroized when dropped.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
mod dleq;
pub mod server;
pub mod wire;

pub use bls12_381::{self, G1Affine, G1Projective, G2Affine, G2Projective, Gt, Scalar};
pub use dleq::{DLEQ_DST, DleqProof, PROOF_LEN};

use bls12_381::{
    G2Prepared,
    hash_to_curve::{ExpandMsgXmd, HashToCurve},
    multi_miller_loop,
};
use zeroize::{Zeroize, Zeroizing};

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

/// `H(msg)` under `dst`: RFC 9380 `BLS12381G1_XMD:SHA-256_SSWU_RO_`.
pub fn hash_to_g1(msg: &[u8], dst: &[u8]) -> G1Affine {
    G1Affine::from(
        <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve([msg], dst),
    )
}

/// `H(mpin_id)` under [`MPIN_DST`].
pub fn hash_id(mpin_id: &[u8]) -> G1Affine {
    hash_to_g1(mpin_id, MPIN_DST)
}

/// A uniformly random non-zero scalar from the OS's generator.
pub fn random_scalar() -> Result<Scalar, getrandom::Error> {
    loop {
        let mut wide = Zeroizing::new([0u8; 64]);
        getrandom::fill(wide.as_mut())?;
        let s = Scalar::from_bytes_wide(&wide);
        if s != Scalar::zero() {
            return Ok(s);
        }
    }
}

/// A D-TA's master-secret share `s_i` (and its public key, computed once).
/// Zeroized on drop; never printed.
pub struct MasterShare(Scalar, G1Affine);

impl std::fmt::Debug for MasterShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterShare(..)")
    }
}

impl Drop for MasterShare {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl MasterShare {
    /// Draws a uniformly random non-zero share from the OS's generator.
    pub fn generate() -> Result<MasterShare, getrandom::Error> {
        random_scalar().map(MasterShare::new)
    }

    fn new(s: Scalar) -> MasterShare {
        let public = G1Affine::from(G1Projective::generator() * s);
        MasterShare(s, public)
    }

    /// The canonical 32-byte (little-endian) encoding, for the keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// Reads [`MasterShare::to_bytes`]; refuses a non-canonical or zero scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterShare, DecodeError> {
        let arr: &[u8; SCALAR_LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            expected: SCALAR_LEN,
            found: bytes.len(),
        })?;
        let s: Option<Scalar> = Scalar::from_bytes(arr).into();
        match s {
            Some(s) if s != Scalar::zero() => Ok(MasterShare::new(s)),
            _ => Err(DecodeError::Scalar),
        }
    }

    /// The public key `P_i = s_i*g1` (G1).
    pub fn public_key(&self) -> G1Affine {
        self.1
    }

    /// The client-secret share `s_i*H(mpin_id)` (G1), without a proof.
    pub fn client_share(&self, mpin_id: &[u8]) -> G1Affine {
        G1Affine::from(G1Projective::from(hash_id(mpin_id)) * self.0)
    }

    /// The server-secret share `S_i = s_i*Q` (G2). A secret: it goes sealed
    /// to an authentication server only, never into a clear body or a log.
    pub fn server_share(&self) -> G2Affine {
        G2Affine::from(G2Projective::generator() * self.0)
    }

    /// The client share for `mpin_id` with a DLEQ proof bound to `context`
    /// (the request it answers; see [`wire::proof_context`]).
    pub fn prove_client_share(
        &self,
        mpin_id: &[u8],
        context: &[u8],
    ) -> Result<(G1Affine, DleqProof), getrandom::Error> {
        let h = hash_id(mpin_id);
        let share = G1Affine::from(G1Projective::from(h) * self.0);
        let proof = DleqProof::prove(&self.0, &self.1, &h, &share, context)?;
        Ok((share, proof))
    }

    /// `s_i + 1`, for the tests of a wrong share.
    #[cfg(test)]
    pub(crate) fn scalar_plus_one_for_tests(&self) -> Scalar {
        self.0 + Scalar::one()
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
    multi_miller_loop(&[(public_key, &q), (&neg_g1, &s)]).final_exponentiation() == Gt::identity()
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
    let mut b = s.to_bytes();
    b.reverse();
    b
}

/// 32 bytes big-endian as a scalar: canonical (below the group order) and
/// non-zero.
pub fn scalar_from_be_bytes(bytes: &[u8]) -> Result<Scalar, DecodeError> {
    let mut le = Zeroizing::new(fixed::<SCALAR_LEN>(bytes)?);
    le.reverse();
    let s: Option<Scalar> = Scalar::from_bytes(&le).into();
    match s {
        Some(s) if s != Scalar::zero() => Ok(s),
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
