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

//! The M-Pin (type-3 pairing) arithmetic of the D-TA, on BLS12-381.
//!
//! - A D-TA holds a master-secret share `s` (a scalar) and publishes its
//!   public share `s*Q`, `Q` the G2 generator.
//! - Client-secret share for an M-Pin ID: `s*H(id)` in G1, with `H` the
//!   RFC 9380 hash-to-curve suite `BLS12381G1_XMD:SHA-256_SSWU_RO_` under the
//!   tag [`MPIN_DST`]. Server-secret share: `s*Q` in G2.
//! - A requester checks each client share with a pairing,
//!   `e(share, Q) == e(H(id), s*Q)`, and each server share against the public
//!   share, then adds the shares.
//!
//! Points travel in the standard compressed encodings (48-byte G1, 96-byte
//! G2; the zcash / blst format). Scalars are zeroized when dropped.

use bls12_381::{
    G1Affine, G1Projective, G2Affine, G2Projective, Scalar,
    hash_to_curve::{ExpandMsgXmd, HashToCurve},
    pairing,
};
use zeroize::{Zeroize, Zeroizing};

/// Domain separation tag of `H` for M-Pin IDs.
pub const MPIN_DST: &[u8] = b"MILAGRO-MPIN-V1_BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// Length of a compressed G1 point.
pub const G1_LEN: usize = 48;
/// Length of a compressed G2 point.
pub const G2_LEN: usize = 96;
/// Length of an encoded scalar (little-endian, canonical).
pub const SCALAR_LEN: usize = 32;

/// Why bytes are not a valid point or scalar. Says nothing of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("expected {expected} bytes, got {found}")]
    Length { expected: usize, found: usize },
    #[error("not hex")]
    Hex,
    #[error("not a valid compressed {0} point in the prime-order subgroup")]
    Point(&'static str),
    #[error("the point at infinity is not accepted")]
    Identity,
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

/// A D-TA's master-secret share. Zeroized on drop; never printed.
pub struct MasterShare(Scalar);

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
        loop {
            let mut wide = Zeroizing::new([0u8; 64]);
            getrandom::fill(wide.as_mut())?;
            let s = Scalar::from_bytes_wide(&wide);
            if s != Scalar::zero() {
                return Ok(MasterShare(s));
            }
        }
    }

    /// The canonical 32-byte encoding, for the keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<MasterShare, DecodeError> {
        let arr: &[u8; SCALAR_LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            expected: SCALAR_LEN,
            found: bytes.len(),
        })?;
        let s: Option<Scalar> = Scalar::from_bytes(arr).into();
        match s {
            Some(s) if s != Scalar::zero() => Ok(MasterShare(s)),
            _ => Err(DecodeError::Scalar),
        }
    }

    /// The public share `s*Q`.
    pub fn public_share(&self) -> G2Affine {
        G2Affine::from(G2Projective::generator() * self.0)
    }

    /// The client-secret share `s*H(mpin_id)`.
    pub fn client_share(&self, mpin_id: &[u8]) -> G1Affine {
        G1Affine::from(G1Projective::from(hash_id(mpin_id)) * self.0)
    }

    /// The server-secret share `s*Q` (equal to the public share).
    pub fn server_share(&self) -> G2Affine {
        self.public_share()
    }

    /// A deliberately wrong client share (`(s+1)*H(id)`), for fault tests.
    #[cfg(any(test, feature = "test-faults"))]
    pub fn wrong_client_share(&self, mpin_id: &[u8]) -> G1Affine {
        G1Affine::from(G1Projective::from(hash_id(mpin_id)) * (self.0 + Scalar::one()))
    }

    /// A deliberately wrong server share (`(s+1)*Q`), for fault tests.
    #[cfg(any(test, feature = "test-faults"))]
    pub fn wrong_server_share(&self) -> G2Affine {
        G2Affine::from(G2Projective::generator() * (self.0 + Scalar::one()))
    }
}

/// Checks a client-secret share against its D-TA's public share:
/// `e(share, Q) == e(H(mpin_id), public_share)`.
pub fn verify_client_share(share: &G1Affine, mpin_id: &[u8], public_share: &G2Affine) -> bool {
    pairing(share, &G2Affine::generator()) == pairing(&hash_id(mpin_id), public_share)
}

/// Checks a server-secret share: it must be the D-TA's public share.
pub fn verify_server_share(share: &G2Affine, public_share: &G2Affine) -> bool {
    share == public_share
}

/// The M-Pin pairing relation between a combined client secret `C` and a
/// combined server secret `S`: `e(C, Q) == e(H(mpin_id), S)`.
pub fn secrets_match(client: &G1Affine, mpin_id: &[u8], server: &G2Affine) -> bool {
    pairing(client, &G2Affine::generator()) == pairing(&hash_id(mpin_id), server)
}

/// The sum of G1 shares.
pub fn combine_g1<'a>(shares: impl IntoIterator<Item = &'a G1Affine>) -> G1Affine {
    G1Affine::from(
        shares
            .into_iter()
            .fold(G1Projective::identity(), |acc, s| acc + s),
    )
}

/// The sum of G2 shares.
pub fn combine_g2<'a>(shares: impl IntoIterator<Item = &'a G2Affine>) -> G2Affine {
    G2Affine::from(
        shares
            .into_iter()
            .fold(G2Projective::identity(), |acc, s| acc + s),
    )
}

pub fn g1_to_hex(p: &G1Affine) -> String {
    hex::encode(p.to_compressed())
}

pub fn g2_to_hex(p: &G2Affine) -> String {
    hex::encode(p.to_compressed())
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::Length {
        expected: N,
        found: bytes.len(),
    })
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

pub fn g1_from_hex(s: &str) -> Result<G1Affine, DecodeError> {
    g1_from_bytes(&hex::decode(s).map_err(|_| DecodeError::Hex)?)
}

pub fn g2_from_hex(s: &str) -> Result<G2Affine, DecodeError> {
    g2_from_bytes(&hex::decode(s).map_err(|_| DecodeError::Hex)?)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn combined_secrets_satisfy_the_pairing_and_partial_ones_do_not() {
        let id = b"alice@example.org";
        let shares: Vec<MasterShare> = (0..3).map(|_| MasterShare::generate().unwrap()).collect();
        let client: Vec<G1Affine> = shares.iter().map(|s| s.client_share(id)).collect();
        let server: Vec<G2Affine> = shares.iter().map(|s| s.server_share()).collect();
        for (s, c) in shares.iter().zip(&client) {
            assert!(verify_client_share(c, id, &s.public_share()));
            assert!(!verify_client_share(c, b"bob", &s.public_share()));
            assert!(verify_server_share(&s.server_share(), &s.public_share()));
        }
        let c = combine_g1(&client);
        let s = combine_g2(&server);
        assert!(secrets_match(&c, id, &s));
        assert!(!secrets_match(&combine_g1(&client[..2]), id, &s));
        assert!(!secrets_match(&c, id, &combine_g2(&server[..2])));
        assert!(!secrets_match(&c, b"mallory", &s));
    }

    #[test]
    fn wrong_shares_fail_their_checks() {
        let s = MasterShare::generate().unwrap();
        assert!(!verify_client_share(
            &s.wrong_client_share(b"id"),
            b"id",
            &s.public_share()
        ));
        assert!(!verify_server_share(
            &s.wrong_server_share(),
            &s.public_share()
        ));
    }

    #[test]
    fn encodings_round_trip_and_reject_bad_bytes() {
        let s = MasterShare::generate().unwrap();
        let back = MasterShare::from_bytes(s.to_bytes().as_slice()).unwrap();
        assert_eq!(back.public_share(), s.public_share());
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
        let p = s.public_share();
        assert_eq!(g2_from_hex(&g2_to_hex(&p)).unwrap(), p);
        assert_eq!(g1_to_hex(&c).len(), 2 * G1_LEN);
        assert_eq!(g2_to_hex(&p).len(), 2 * G2_LEN);
        assert_eq!(g1_from_hex("zz").unwrap_err(), DecodeError::Hex);
        assert!(matches!(g2_from_hex("00"), Err(DecodeError::Length { .. })));
        assert_eq!(
            g1_from_bytes(&G1Affine::identity().to_compressed()).unwrap_err(),
            DecodeError::Identity
        );
        let mut bad = c.to_compressed();
        bad[47] ^= 1;
        assert!(g1_from_bytes(&bad).is_err() || g1_from_bytes(&bad).unwrap() != c);
        assert_eq!(format!("{s:?}"), "MasterShare(..)");
    }

    /// Cost of the arithmetic alone; run with
    /// `cargo test --release -p milagro-plugin-dta -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing figures, not a check"]
    fn timings() {
        use std::time::Instant;
        let s = MasterShare::generate().unwrap();
        let public = s.public_share();
        let n = 200;
        let t = Instant::now();
        let shares: Vec<G1Affine> = (0..n)
            .map(|i| s.client_share(format!("user{i}").as_bytes()))
            .collect();
        let issue = t.elapsed() / n;
        let t = Instant::now();
        for (i, c) in shares.iter().enumerate() {
            assert!(verify_client_share(
                c,
                format!("user{i}").as_bytes(),
                &public
            ));
        }
        let verify = t.elapsed() / n;
        println!(
            "client share: issue {issue:?} ({:.0}/s), pairing check {verify:?} ({:.0}/s)",
            1.0 / issue.as_secs_f64(),
            1.0 / verify.as_secs_f64()
        );
    }
}
