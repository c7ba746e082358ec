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

//! Feldman verifiable secret sharing and the joint-Feldman DKG among
//! fiduciaries (the t-of-n mode).
//!
//! A dealer with polynomial f(X) = Σ a_k X^k publishes C_k = a_k*G. Share
//! (j, s_j) is valid iff s_j*G == Σ_k C_k j^k. In the joint-Feldman DKG each
//! fiduciary i deals its own random f_i; fiduciary j sums what it received,
//! s_j = Σ_i f_i(j), and the group key is K = Σ_i C_i0 = (Σ_i f_i(0))*G.
//! Commitments add coefficient-wise, so Σ_i C_i (a [`Commitments`]) is a
//! Feldman commitment to Σ_i f_i and verifies every s_j.
//!
//! Caveat (Gennaro, Jarecki, Krawczyk, Rabin, 1999/2007): a rushing dealer
//! can bias the distribution of K in joint-Feldman. See `docs/custody.md`
//! for why this is acceptable here.

use k256::{ProjectivePoint, PublicKey, Scalar};

use crate::keys::{self, PUBLIC_KEY_LEN, SecretScalar};
use crate::shamir::{self, MAX_PARTIES, Polynomial, Share};
use crate::{Error, Result};

/// Feldman commitments C_0..C_{t-1} to a polynomial's coefficients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments {
    points: Vec<ProjectivePoint>,
}

impl Commitments {
    /// The commitments of a polynomial: C_k = a_k*G.
    pub fn of(poly: &Polynomial) -> Self {
        Commitments {
            points: poly
                .coefficients()
                .iter()
                .map(ProjectivePoint::mul_by_generator)
                .collect(),
        }
    }

    /// From points (at least one).
    pub fn from_points(points: Vec<ProjectivePoint>) -> Result<Self> {
        if points.is_empty() || points.len() > MAX_PARTIES {
            return Err(Error::InvalidThreshold {
                threshold: points.len(),
                parties: MAX_PARTIES,
            });
        }
        Ok(Commitments { points })
    }

    /// Decode compressed points; each must be valid and not the identity.
    pub fn from_bytes<B: AsRef<[u8]>>(encoded: &[B]) -> Result<Self> {
        let points = encoded
            .iter()
            .map(|b| keys::decode_public_key(b.as_ref()).map(|k| k.to_projective()))
            .collect::<Result<Vec<_>>>()?;
        Self::from_points(points)
    }

    /// Compressed encodings; fails if a commitment is the identity (which an
    /// honest dealer never produces: its coefficients are non-zero).
    pub fn to_bytes(&self) -> Result<Vec<[u8; PUBLIC_KEY_LEN]>> {
        self.points
            .iter()
            .map(|p| keys::point_to_public_key(p).map(|k| keys::encode_public_key(&k)))
            .collect()
    }

    /// The points C_0..C_{t-1}.
    pub fn points(&self) -> &[ProjectivePoint] {
        &self.points
    }

    /// t, the number of commitments.
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// The committed secret's public key C_0 (not the identity).
    pub fn public_key(&self) -> Result<PublicKey> {
        keys::point_to_public_key(&self.points[0])
    }

    /// The expected public share Σ_k C_k j^k, i.e. f(j)*G.
    pub fn public_share_point(&self, index: u32) -> Result<ProjectivePoint> {
        if index == 0 || index as usize > MAX_PARTIES {
            return Err(Error::InvalidIndex { index });
        }
        let x = Scalar::from(index);
        // Horner in the exponent.
        let mut acc = ProjectivePoint::IDENTITY;
        for c in self.points.iter().rev() {
            acc = acc * x + c;
        }
        Ok(acc)
    }

    /// The expected public share of party `index` as a public key
    /// (the beneficiary checks a released s_j against it).
    pub fn public_share(&self, index: u32) -> Result<PublicKey> {
        keys::point_to_public_key(&self.public_share_point(index)?)
    }

    /// Check s_j*G == Σ_k C_k j^k.
    pub fn verify_share(&self, share: &Share) -> Result<()> {
        let expected = self.public_share_point(share.index())?;
        if ProjectivePoint::mul_by_generator(share.value()) == expected {
            Ok(())
        } else {
            Err(Error::ShareMismatch {
                index: share.index(),
            })
        }
    }

    /// Coefficient-wise sum Σ_i C_i of the dealers' commitments (all with the
    /// same t): the commitment to Σ_i f_i.
    pub fn sum(all: &[Commitments]) -> Result<Commitments> {
        let first = all
            .first()
            .ok_or(Error::NotEnoughShares { have: 0, need: 1 })?;
        let t = first.threshold();
        if all.iter().any(|c| c.threshold() != t) {
            return Err(Error::InconsistentDealings);
        }
        let points = (0..t)
            .map(|k| {
                all.iter()
                    .fold(ProjectivePoint::IDENTITY, |acc, c| acc + c.points[k])
            })
            .collect();
        Ok(Commitments { points })
    }
}

/// One dealer's output: its commitments and the shares for parties 1..=n.
#[derive(Debug)]
pub struct Dealing {
    /// Broadcast to every party (and reported to the principal).
    pub commitments: Commitments,
    /// Share j-1 goes, sealed, to party j only.
    pub shares: Vec<Share>,
}

/// Deal a fresh random secret to n parties with threshold t (a DKG dealer).
pub fn deal(threshold: usize, parties: usize) -> Result<Dealing> {
    shamir::check_threshold(threshold, parties)?;
    let poly = Polynomial::random(threshold)?;
    deal_polynomial(&poly, parties)
}

/// Deal a given secret (a trusted dealer; used in tests and tools).
pub fn deal_secret(secret: &SecretScalar, threshold: usize, parties: usize) -> Result<Dealing> {
    shamir::check_threshold(threshold, parties)?;
    let poly = Polynomial::with_secret(secret, threshold)?;
    deal_polynomial(&poly, parties)
}

fn deal_polynomial(poly: &Polynomial, parties: usize) -> Result<Dealing> {
    Ok(Dealing {
        commitments: Commitments::of(poly),
        shares: poly.shares(parties)?,
    })
}

/// Party j's DKG share s_j = Σ_i f_i(j) from what every dealer sent it, each
/// verified against that dealer's commitments first. `received[i]` pairs
/// dealer i's commitments with the share it sent to party `index`.
///
/// On a bad share the error names the share index; the caller maps the
/// position of the failing pair to the faulty dealer (see [`verify_dealings`]).
pub fn combine_shares(index: u32, received: &[(&Commitments, &Share)]) -> Result<Share> {
    if received.is_empty() {
        return Err(Error::NotEnoughShares { have: 0, need: 1 });
    }
    let t = received[0].0.threshold();
    let mut sum = Scalar::ZERO;
    for (commitments, share) in received {
        if share.index() != index {
            return Err(Error::InvalidIndex {
                index: share.index(),
            });
        }
        if commitments.threshold() != t {
            return Err(Error::InconsistentDealings);
        }
        commitments.verify_share(share)?;
        sum += share.value();
    }
    let out = Share::new(index, sum);
    zeroize::Zeroize::zeroize(&mut sum);
    out
}

/// Check each dealer's share for party `index`; returns the positions (in
/// `received`) of the dealers whose share does not verify — the complaints.
pub fn verify_dealings(index: u32, received: &[(&Commitments, &Share)]) -> Vec<usize> {
    received
        .iter()
        .enumerate()
        .filter(|(_, (c, s))| s.index() != index || c.verify_share(s).is_err())
        .map(|(pos, _)| pos)
        .collect()
}

/// The DKG group key K = Σ_i C_i0. Rejects the identity.
pub fn group_key(all: &[Commitments]) -> Result<PublicKey> {
    Commitments::sum(all)?.public_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealing_verifies_and_reconstructs() {
        let secret = SecretScalar::random().unwrap();
        let d = deal_secret(&secret, 3, 5).unwrap();
        for s in &d.shares {
            d.commitments.verify_share(s).unwrap();
        }
        assert_eq!(d.commitments.public_key().unwrap(), secret.public_key());
        let k = shamir::reconstruct(&d.shares[1..4], 3).unwrap();
        assert_eq!(k, secret);
    }

    #[test]
    fn corrupted_share_detected() {
        let d = deal(2, 3).unwrap();
        let bad = Share::new(2, *d.shares[1].value() + Scalar::ONE).unwrap();
        assert_eq!(
            d.commitments.verify_share(&bad),
            Err(Error::ShareMismatch { index: 2 })
        );
        // A valid value under the wrong index is also refused.
        let moved = Share::new(3, *d.shares[1].value()).unwrap();
        assert!(d.commitments.verify_share(&moved).is_err());
    }

    #[test]
    fn joint_feldman_dkg() {
        let (t, n) = (2usize, 3usize);
        let dealings: Vec<Dealing> = (0..n).map(|_| deal(t, n).unwrap()).collect();
        let commitments: Vec<Commitments> =
            dealings.iter().map(|d| d.commitments.clone()).collect();
        let k = group_key(&commitments).unwrap();
        let summed = Commitments::sum(&commitments).unwrap();
        let finals: Vec<Share> = (1..=n as u32)
            .map(|j| {
                let received: Vec<(&Commitments, &Share)> = dealings
                    .iter()
                    .map(|d| (&d.commitments, &d.shares[j as usize - 1]))
                    .collect();
                assert!(verify_dealings(j, &received).is_empty());
                combine_shares(j, &received).unwrap()
            })
            .collect();
        for s in &finals {
            summed.verify_share(s).unwrap();
            assert_eq!(
                summed.public_share(s.index()).unwrap().to_projective(),
                ProjectivePoint::GENERATOR * s.value()
            );
        }
        for pair in [[0usize, 1], [0, 2], [1, 2]] {
            let sub = [finals[pair[0]].clone(), finals[pair[1]].clone()];
            assert_eq!(shamir::reconstruct(&sub, t).unwrap().public_key(), k);
        }
    }

    #[test]
    fn faulty_dealer_named() {
        let dealings: Vec<Dealing> = (0..3).map(|_| deal(2, 3).unwrap()).collect();
        let bad = Share::new(1, Scalar::ONE).unwrap();
        let received = vec![
            (&dealings[0].commitments, &dealings[0].shares[0]),
            (&dealings[1].commitments, &bad),
            (&dealings[2].commitments, &dealings[2].shares[0]),
        ];
        assert_eq!(verify_dealings(1, &received), vec![1]);
        assert!(combine_shares(1, &received).is_err());
    }

    #[test]
    fn encoding_roundtrip_and_inconsistency() {
        let d = deal(3, 4).unwrap();
        let bytes = d.commitments.to_bytes().unwrap();
        assert_eq!(Commitments::from_bytes(&bytes).unwrap(), d.commitments);
        assert!(Commitments::from_bytes::<[u8; 33]>(&[]).is_err());
        assert!(Commitments::from_bytes(&[[0u8; 33]]).is_err());
        let other = deal(2, 4).unwrap();
        assert_eq!(
            Commitments::sum(&[d.commitments, other.commitments]),
            Err(Error::InconsistentDealings)
        );
    }
}
