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

//! Shamir secret sharing over the secp256k1 scalar field.
//!
//! A polynomial f(X) = a_0 + a_1 X + ... + a_{t-1} X^{t-1} (degree t-1) gives
//! share j = (j, f(j)) for j = 1..=n; any t shares determine a_0 = f(0) by
//! Lagrange interpolation, t-1 shares reveal nothing about it. Share indices
//! are 1-based (index 0 would be the secret itself) and fit a `u32`.
//!
//! Coefficients and share values are zeroized on drop.

use k256::Scalar;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{self, SecretScalar};
use crate::{Error, Result, rng};

/// Largest number of parties supported (share indices are 1..=MAX_PARTIES).
pub const MAX_PARTIES: usize = 255;

/// Check 1 <= t <= n <= [`MAX_PARTIES`].
pub fn check_threshold(threshold: usize, parties: usize) -> Result<()> {
    if threshold == 0 || threshold > parties || parties > MAX_PARTIES {
        return Err(Error::InvalidThreshold { threshold, parties });
    }
    Ok(())
}

/// A secret polynomial of degree t-1 (t coefficients). Zeroized on drop.
pub struct Polynomial {
    coeffs: Vec<Scalar>,
}

impl std::fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Polynomial")
            .field("threshold", &self.coeffs.len())
            .finish_non_exhaustive()
    }
}

impl Polynomial {
    /// A random polynomial for threshold t (degree t-1) with non-zero
    /// coefficients drawn from the OS CSPRNG.
    pub fn random(threshold: usize) -> Result<Self> {
        check_threshold(threshold, threshold.max(1))?;
        let mut coeffs = Vec::with_capacity(threshold);
        for _ in 0..threshold {
            coeffs.push(rng::random_nonzero_scalar()?);
        }
        Ok(Polynomial { coeffs })
    }

    /// A random polynomial for threshold t whose constant term is `secret`.
    pub fn with_secret(secret: &SecretScalar, threshold: usize) -> Result<Self> {
        let mut p = Self::random(threshold)?;
        p.coeffs[0] = *secret.as_scalar();
        Ok(p)
    }

    /// The coefficients as 32-byte big-endian scalars, concatenated (secret:
    /// for keeping a dealer's polynomial in a keystore).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(32 * self.coeffs.len()));
        for c in &self.coeffs {
            out.extend_from_slice(&*crate::keys::encode_scalar(c));
        }
        out
    }

    /// The inverse of [`Polynomial::to_bytes`]: t non-zero coefficients.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(32) || bytes.len() / 32 > MAX_PARTIES {
            return Err(Error::InvalidScalar);
        }
        let coeffs = bytes
            .chunks_exact(32)
            .map(|chunk| {
                let raw: &[u8; 32] = chunk.try_into().map_err(|_| Error::InvalidScalar)?;
                Ok(*SecretScalar::from_bytes(raw)?.as_scalar())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Polynomial { coeffs })
    }

    /// t, the number of coefficients.
    pub fn threshold(&self) -> usize {
        self.coeffs.len()
    }

    /// The coefficients a_0..a_{t-1} (secret).
    pub fn coefficients(&self) -> &[Scalar] {
        &self.coeffs
    }

    /// The constant term f(0), the dealt secret.
    pub fn secret(&self) -> Result<SecretScalar> {
        SecretScalar::from_scalar(self.coeffs[0])
    }

    /// f(x) by Horner's rule.
    pub fn evaluate(&self, x: &Scalar) -> Scalar {
        let mut acc = Scalar::ZERO;
        for c in self.coeffs.iter().rev() {
            acc = acc * x + c;
        }
        acc
    }

    /// Share `index` (1-based): (index, f(index)).
    pub fn share(&self, index: u32) -> Result<Share> {
        if index == 0 || index as usize > MAX_PARTIES {
            return Err(Error::InvalidIndex { index });
        }
        Ok(Share {
            index,
            value: self.evaluate(&Scalar::from(index)),
        })
    }

    /// Shares 1..=n.
    pub fn shares(&self, parties: usize) -> Result<Vec<Share>> {
        check_threshold(self.threshold(), parties)?;
        (1..=parties as u32).map(|j| self.share(j)).collect()
    }
}

impl Zeroize for Polynomial {
    fn zeroize(&mut self) {
        self.coeffs.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl Drop for Polynomial {
    fn drop(&mut self) {
        self.zeroize();
    }
}

/// A Shamir share (j, s_j). Zeroized on drop; `Debug` shows the index only.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    index: u32,
    value: Scalar,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Share {
    /// A share from its index and value.
    pub fn new(index: u32, value: Scalar) -> Result<Self> {
        if index == 0 || index as usize > MAX_PARTIES {
            return Err(Error::InvalidIndex { index });
        }
        Ok(Share { index, value })
    }

    /// A share from its index and 32-byte big-endian value (canonical).
    pub fn from_bytes(index: u32, bytes: &[u8; 32]) -> Result<Self> {
        Self::new(index, keys::decode_scalar(bytes)?)
    }

    /// The 1-based index j.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The value s_j (secret).
    pub fn value(&self) -> &Scalar {
        &self.value
    }

    /// The value as 32 big-endian bytes, zeroized on drop.
    pub fn value_bytes(&self) -> Zeroizing<[u8; 32]> {
        keys::encode_scalar(&self.value)
    }
}

impl Zeroize for Share {
    fn zeroize(&mut self) {
        self.value.zeroize();
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.zeroize();
    }
}

fn check_indices(indices: &[u32]) -> Result<()> {
    for (pos, &i) in indices.iter().enumerate() {
        if i == 0 || i as usize > MAX_PARTIES || indices[..pos].contains(&i) {
            return Err(Error::InvalidIndex { index: i });
        }
    }
    Ok(())
}

/// The Lagrange coefficient λ_i(0) = Π_{m≠i} m / (m - i) over `indices`
/// (which must contain `index`, be non-zero and distinct).
pub fn lagrange_coefficient_at_zero(index: u32, indices: &[u32]) -> Result<Scalar> {
    check_indices(indices)?;
    if !indices.contains(&index) {
        return Err(Error::InvalidIndex { index });
    }
    let xi = Scalar::from(index);
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for &m in indices.iter().filter(|&&m| m != index) {
        let xm = Scalar::from(m);
        num *= xm;
        den *= xm - xi;
    }
    let inv = Option::<Scalar>::from(den.invert()).ok_or(Error::InvalidIndex { index })?;
    Ok(num * inv)
}

/// f(0) from shares with distinct non-zero indices: Σ λ_j(0) s_j.
///
/// With at least t shares of a degree t-1 polynomial this is the secret; with
/// fewer it is some other value (the caller must know t).
pub fn interpolate_at_zero(shares: &[Share]) -> Result<Zeroizing<Scalar>> {
    if shares.is_empty() {
        return Err(Error::NotEnoughShares { have: 0, need: 1 });
    }
    let indices: Vec<u32> = shares.iter().map(Share::index).collect();
    check_indices(&indices)?;
    let mut acc = Zeroizing::new(Scalar::ZERO);
    for s in shares {
        let lambda = lagrange_coefficient_at_zero(s.index, &indices)?;
        *acc += lambda * s.value;
    }
    Ok(acc)
}

/// Rebuild the secret from at least `threshold` shares (uses the first t);
/// the result must be non-zero.
pub fn reconstruct(shares: &[Share], threshold: usize) -> Result<SecretScalar> {
    if threshold == 0 || shares.len() < threshold {
        return Err(Error::NotEnoughShares {
            have: shares.len(),
            need: threshold.max(1),
        });
    }
    let k = interpolate_at_zero(&shares[..threshold])?;
    if bool::from(k.is_zero()) {
        return Err(Error::InvalidScalar);
    }
    SecretScalar::from_scalar(*k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_known_polynomial() {
        // f(X) = 5 + 3X + 2X^2: f(1) = 10, f(2) = 19, f(3) = 32.
        let p = Polynomial {
            coeffs: vec![Scalar::from(5u32), Scalar::from(3u32), Scalar::from(2u32)],
        };
        assert_eq!(p.share(1).unwrap().value, Scalar::from(10u32));
        assert_eq!(p.share(2).unwrap().value, Scalar::from(19u32));
        assert_eq!(p.share(3).unwrap().value, Scalar::from(32u32));
        let s = p.shares(3).unwrap();
        assert_eq!(*interpolate_at_zero(&s).unwrap(), Scalar::from(5u32));
    }

    #[test]
    fn lagrange_coefficients_sum_to_one() {
        let idx = [1u32, 4, 7, 9];
        let sum = idx
            .iter()
            .map(|&i| lagrange_coefficient_at_zero(i, &idx).unwrap())
            .fold(Scalar::ZERO, |a, b| a + b);
        assert_eq!(sum, Scalar::ONE);
    }

    #[test]
    fn bad_indices_rejected() {
        assert!(Share::new(0, Scalar::ONE).is_err());
        let a = Share::new(1, Scalar::ONE).unwrap();
        assert_eq!(
            interpolate_at_zero(&[a.clone(), a]).unwrap_err(),
            Error::InvalidIndex { index: 1 }
        );
        assert!(lagrange_coefficient_at_zero(2, &[1, 3]).is_err());
        assert!(interpolate_at_zero(&[]).is_err());
    }

    #[test]
    fn thresholds_checked() {
        assert!(check_threshold(0, 3).is_err());
        assert!(check_threshold(4, 3).is_err());
        assert!(check_threshold(1, 1).is_ok());
        assert!(check_threshold(2, MAX_PARTIES + 1).is_err());
        let p = Polynomial::random(3).unwrap();
        assert!(p.shares(2).is_err());
        assert!(reconstruct(&p.shares(3).unwrap()[..2], 3).is_err());
    }

    #[test]
    fn with_secret_reconstructs() {
        let secret = SecretScalar::random().unwrap();
        let p = Polynomial::with_secret(&secret, 2).unwrap();
        let shares = p.shares(5).unwrap();
        assert_eq!(reconstruct(&shares[3..], 2).unwrap(), secret);
        assert_eq!(format!("{:?}", shares[0]), "Share { index: 1, .. }");
    }
}
