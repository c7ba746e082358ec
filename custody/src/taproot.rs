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

//! Taproot key-path outputs (BIP340, BIP341, BIP86): the output key of a
//! wallet key and its bech32m (BIP350) `bc1p…` / `tb1p…` address.
//!
//! The wallet key P is the internal key. Key path only, as BIP86 says: the
//! output key is Q = lift_x(x(P)) + t·G with
//! t = int(SHA256(T ‖ T ‖ x(P))) mod n and T = SHA256("TapTweak"), committing
//! to no script path. Its address, the segwit v1 program x(Q) in bech32m, is
//! [`crate::address::p2tr`].

use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::{PrimeField, sec1::ToSec1Point};
use k256::{FieldBytes, ProjectivePoint, PublicKey, Scalar};
use sha2::{Digest, Sha256};

use crate::{Error, Result, keys};

/// A 32-byte x-only key (BIP340).
pub type XOnlyKey = [u8; 32];

/// x(P), the BIP340 x-only encoding of `key`.
pub fn x_only(key: &PublicKey) -> XOnlyKey {
    key.as_affine().x().into()
}

/// SHA256(SHA256(tag) ‖ SHA256(tag) ‖ data), BIP340's tagged hash.
pub fn tagged_hash(tag: &str, data: &[&[u8]]) -> [u8; 32] {
    let tag = Sha256::digest(tag.as_bytes());
    let mut h = Sha256::new();
    h.update(tag);
    h.update(tag);
    for d in data {
        h.update(d);
    }
    h.finalize().into()
}

/// The BIP86 tweak t of internal key `key` (no script path).
pub fn tweak(key: &PublicKey) -> Result<Scalar> {
    let hash = tagged_hash("TapTweak", &[&x_only(key)]);
    // t >= n happens with probability about 2^-128; BIP341 fails there too.
    Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(hash))).ok_or(Error::InvalidField {
        field: "public_key",
        reason: "its taproot tweak is not a scalar",
    })
}

/// The BIP86 output key Q of internal key `key`, x-only.
pub fn output_key(key: &PublicKey) -> Result<XOnlyKey> {
    // lift_x(x(P)): P itself when its y is even, else -P.
    let even = if bool::from(key.as_affine().y_is_odd()) {
        -key.to_projective()
    } else {
        key.to_projective()
    };
    let q = even + ProjectivePoint::GENERATOR * tweak(key)?;
    let q = keys::point_to_public_key(&q).map_err(|_| Error::IdentityKey)?;
    let encoded = q.as_affine().to_sec1_point(true);
    let mut out = [0u8; 32];
    out.copy_from_slice(&encoded.as_bytes()[1..]);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn from_x(x: &str) -> PublicKey {
        let mut bytes = vec![0x02];
        bytes.extend(hex::decode(x).unwrap());
        keys::decode_public_key(&bytes).unwrap()
    }

    /// BIP86's test vectors (account 0, first receiving, second receiving
    /// and first change address): internal key, output key, address.
    pub(crate) const BIP86: [(&str, &str, &str); 3] = [
        (
            "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115",
            "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c",
            "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
        ),
        (
            "83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145",
            "a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb",
            "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh",
        ),
        (
            "399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef",
            "882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc",
            "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7",
        ),
    ];

    #[test]
    fn bip86_vectors() {
        for (internal, output, _) in BIP86 {
            assert_eq!(hex::encode(output_key(&from_x(internal)).unwrap()), output);
        }
    }

    /// The output key depends on x(P) only: P and -P give the same one.
    #[test]
    fn odd_y_internal_key_is_lifted() {
        let even = from_x("cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115");
        let odd = keys::point_to_public_key(&-even.to_projective()).unwrap();
        assert_eq!(output_key(&even).unwrap(), output_key(&odd).unwrap());
    }
}
