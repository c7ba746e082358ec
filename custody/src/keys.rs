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

//! secp256k1 encodings shared by the custody messages: compressed public
//! keys (33 bytes, SEC1) and secret scalars (32 bytes, big-endian), the latter
//! held in [`SecretScalar`], which is zeroized on drop.

use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::{FieldBytes, ProjectivePoint, PublicKey, Scalar};
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Result, rng};

/// Length of a compressed SEC1 public key.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Length of an encoded scalar.
pub const SCALAR_LEN: usize = 32;

/// Compressed SEC1 encoding (33 bytes) of a public key.
pub fn encode_public_key(key: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = key.as_affine().to_sec1_point(true);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(point.as_bytes());
    out
}

/// Uncompressed SEC1 encoding (65 bytes, `0x04 || X || Y`) of a public key.
pub fn encode_public_key_uncompressed(key: &PublicKey) -> [u8; 65] {
    let point = key.as_affine().to_sec1_point(false);
    let mut out = [0u8; 65];
    out.copy_from_slice(point.as_bytes());
    out
}

/// Decode a compressed SEC1 public key. Rejects any other length or prefix,
/// points not on the curve, and the identity.
pub fn decode_public_key(bytes: &[u8]) -> Result<PublicKey> {
    if bytes.len() != PUBLIC_KEY_LEN || !(bytes[0] == 0x02 || bytes[0] == 0x03) {
        return Err(Error::InvalidPublicKey);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::InvalidPublicKey)
}

/// A point as a public key; the identity is rejected.
pub fn point_to_public_key(point: &ProjectivePoint) -> Result<PublicKey> {
    PublicKey::from_affine(point.to_affine()).map_err(|_| Error::IdentityKey)
}

/// Decode a canonical scalar (big-endian, < n). Zero is allowed here.
pub fn decode_scalar(bytes: &[u8; SCALAR_LEN]) -> Result<Scalar> {
    let repr = FieldBytes::from(*bytes);
    Option::<Scalar>::from(Scalar::from_repr(repr)).ok_or(Error::InvalidScalar)
}

/// Big-endian encoding of a scalar, zeroized when dropped.
pub fn encode_scalar(scalar: &Scalar) -> Zeroizing<[u8; SCALAR_LEN]> {
    let mut repr = scalar.to_repr();
    let mut out = Zeroizing::new([0u8; SCALAR_LEN]);
    out.copy_from_slice(repr.as_slice());
    repr.as_mut_slice().zeroize();
    out
}

/// A non-zero secret scalar (a fiduciary share k_i, the beneficiary key b,
/// the wallet key x). Zeroized on drop; `Debug` prints nothing secret.
#[derive(Clone)]
pub struct SecretScalar(Scalar);

impl SecretScalar {
    /// Draw a uniformly random non-zero scalar from the OS CSPRNG.
    pub fn random() -> Result<Self> {
        Ok(SecretScalar(rng::random_nonzero_scalar()?))
    }

    /// From 32 big-endian bytes; must be canonical (< n) and non-zero.
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self> {
        Self::from_scalar(decode_scalar(bytes)?)
    }

    /// From a scalar; zero is rejected.
    pub fn from_scalar(scalar: Scalar) -> Result<Self> {
        if bool::from(scalar.is_zero()) {
            return Err(Error::InvalidScalar);
        }
        Ok(SecretScalar(scalar))
    }

    /// 32 big-endian bytes, zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        encode_scalar(&self.0)
    }

    /// The scalar (callers must not keep copies around).
    pub fn as_scalar(&self) -> &Scalar {
        &self.0
    }

    /// The public key `self * G`.
    pub fn public_key(&self) -> PublicKey {
        let point = ProjectivePoint::mul_by_generator(&self.0);
        PublicKey::from_affine(point.to_affine())
            .expect("non-zero scalar times G is not the identity")
    }
}

impl Zeroize for SecretScalar {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for SecretScalar {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl PartialEq for SecretScalar {
    fn eq(&self, other: &Self) -> bool {
        use k256::elliptic_curve::subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SecretScalar {}

impl std::fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretScalar(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_roundtrip_and_rejections() {
        let k = SecretScalar::random().unwrap();
        let pk = k.public_key();
        let bytes = encode_public_key(&pk);
        assert_eq!(decode_public_key(&bytes).unwrap(), pk);
        let unc = encode_public_key_uncompressed(&pk);
        assert!(decode_public_key(&unc).is_err(), "uncompressed refused");
        assert!(decode_public_key(&[0u8; 33]).is_err());
        assert!(
            decode_public_key(&[0u8]).is_err(),
            "identity encoding refused"
        );
        let mut bad = bytes;
        bad[0] = 0x05;
        assert!(decode_public_key(&bad).is_err());
    }

    #[test]
    fn scalar_rejections() {
        assert_eq!(
            SecretScalar::from_bytes(&[0u8; 32]),
            Err(Error::InvalidScalar)
        );
        assert_eq!(
            SecretScalar::from_bytes(&[0xff; 32]),
            Err(Error::InvalidScalar)
        );
        let mut one = [0u8; 32];
        one[31] = 1;
        let s = SecretScalar::from_bytes(&one).unwrap();
        assert_eq!(*s.to_bytes(), one);
        assert_eq!(format!("{s:?}"), "SecretScalar(<redacted>)");
    }
}
