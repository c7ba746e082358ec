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

//! The wallet key: P = B + ΣK_i for the principal, x = b + Σk_i for the
//! beneficiary, with the check x*G == P before the secret is exposed.
//!
//! In the t-of-n mode the fiduciaries' part is the DKG group key K (one
//! element in `shares`) and its secret k is interpolated from t shares
//! (see [`crate::feldman`]); the formulas are the same with one summand.

use k256::{ProjectivePoint, PublicKey, Scalar};

use crate::keys::{self, SecretScalar};
use crate::{Error, Result};

/// P = B + ΣK_i. Rejects an empty fiduciary list and an identity sum.
pub fn aggregate_public_key(beneficiary: &PublicKey, shares: &[PublicKey]) -> Result<PublicKey> {
    if shares.is_empty() {
        return Err(Error::NotEnoughShares { have: 0, need: 1 });
    }
    let sum = shares.iter().fold(beneficiary.to_projective(), |acc, k| {
        acc + k.to_projective()
    });
    keys::point_to_public_key(&sum)
}

/// ΣK_i alone (the fiduciaries' combined key). Rejects an identity sum.
pub fn sum_public_keys(keys_in: &[PublicKey]) -> Result<PublicKey> {
    let sum = keys_in
        .iter()
        .fold(ProjectivePoint::IDENTITY, |acc, k| acc + k.to_projective());
    keys::point_to_public_key(&sum)
}

/// x = b + Σk_i, returned only if x*G == `expected` (the wallet key P).
pub fn aggregate_secret(
    beneficiary: &SecretScalar,
    shares: &[SecretScalar],
    expected: &PublicKey,
) -> Result<SecretScalar> {
    if shares.is_empty() {
        return Err(Error::NotEnoughShares { have: 0, need: 1 });
    }
    let mut x: Scalar = *beneficiary.as_scalar();
    for k in shares {
        x += k.as_scalar();
    }
    let x = SecretScalar::from_scalar(x).map_err(|_| Error::KeyMismatch)?;
    check_secret(&x, expected)?;
    Ok(x)
}

/// Check x*G == P.
pub fn check_secret(secret: &SecretScalar, expected: &PublicKey) -> Result<()> {
    if secret.public_key() == *expected {
        Ok(())
    } else {
        Err(Error::KeyMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_roundtrip() {
        let b = SecretScalar::random().unwrap();
        let ks: Vec<SecretScalar> = (0..3).map(|_| SecretScalar::random().unwrap()).collect();
        let kp: Vec<PublicKey> = ks.iter().map(|k| k.public_key()).collect();
        let p = aggregate_public_key(&b.public_key(), &kp).unwrap();
        let x = aggregate_secret(&b, &ks, &p).unwrap();
        assert_eq!(x.public_key(), p);
        // Order does not matter.
        let mut rev = kp.clone();
        rev.reverse();
        assert_eq!(aggregate_public_key(&b.public_key(), &rev).unwrap(), p);
    }

    #[test]
    fn missing_or_wrong_share_is_a_mismatch() {
        let b = SecretScalar::random().unwrap();
        let ks: Vec<SecretScalar> = (0..2).map(|_| SecretScalar::random().unwrap()).collect();
        let kp: Vec<PublicKey> = ks.iter().map(|k| k.public_key()).collect();
        let p = aggregate_public_key(&b.public_key(), &kp).unwrap();
        assert_eq!(
            aggregate_secret(&b, &ks[..1], &p).unwrap_err(),
            Error::KeyMismatch
        );
        let wrong = [ks[0].clone(), SecretScalar::random().unwrap()];
        assert_eq!(
            aggregate_secret(&b, &wrong, &p).unwrap_err(),
            Error::KeyMismatch
        );
        assert!(aggregate_secret(&b, &[], &p).is_err());
    }

    #[test]
    fn identity_sum_rejected() {
        // A rogue K = -B makes P the identity: refused.
        let b = SecretScalar::random().unwrap();
        let neg = keys::point_to_public_key(&(-b.public_key().to_projective())).unwrap();
        assert_eq!(
            aggregate_public_key(&b.public_key(), &[neg]),
            Err(Error::IdentityKey)
        );
        assert_eq!(
            sum_public_keys(&[b.public_key(), neg]),
            Err(Error::IdentityKey)
        );
        // And x = b + (-b) = 0 is refused too.
        let neg_s = SecretScalar::from_scalar(-*b.as_scalar()).unwrap();
        assert!(aggregate_secret(&b, &[neg_s], &b.public_key()).is_err());
    }
}
