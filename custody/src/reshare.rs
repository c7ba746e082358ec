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

//! Share refresh and resharing (`docs/custody.md` §9): the fiduciaries'
//! part of the wallet key k moves from one sharing to another, k unchanged.
//!
//! A sharing is n fiduciaries and a threshold t: additive (t = n, k = Σk_i,
//! public K_i) or Shamir (t < n, k = Σλ_j s_j, public S_j and the Feldman
//! commitments of the sharing polynomial). A set D of the old fiduciaries
//! (all of them when additive, at least t otherwise) re-deal: dealer i deals
//! w_i = ω_i·k_i with a fresh random polynomial of the new degree t'-1, where
//! ω_i = 1 (additive) or the Lagrange coefficient of i at 0 over D (Shamir),
//! so that Σ_{i∈D} w_i = k. The new fiduciary j adds what it received:
//! s'_j = Σ_i g_i(j), a Shamir share of k for threshold t'. When t' = n' it
//! keeps the additive share k'_j = λ'_j·s'_j instead (λ' over 1..n'), so a
//! reshared wallet is of the same two kinds as an ordered one.
//!
//! Checks: every g_i(j) against dealer i's Feldman commitments, and dealer
//! i's committed constant C_i0 against ω_i·(its old public share), so no
//! dealer can move k; the new public shares against the commitments. A
//! refresh is a reshare to the same fiduciaries and threshold: the new
//! polynomials are fresh, so old and new shares do not combine.

use k256::{ProjectivePoint, PublicKey, Scalar};

use crate::feldman::Commitments;
use crate::keys::{self, SecretScalar};
use crate::shamir::{self, Polynomial, Share};
use crate::{Error, Result, wallet};

/// The public side of one sharing of the fiduciaries' key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharing {
    /// The fiduciaries' node IDs; fiduciary j (1-based) is at position j-1.
    pub fiduciaries: Vec<String>,
    /// t (t = n: additive).
    pub threshold: u32,
    /// K_i (additive) or S_j (Shamir), one per fiduciary.
    pub share_public_keys: Vec<PublicKey>,
    /// Shamir only: the commitments of the sharing polynomial (t points).
    pub commitments: Option<Commitments>,
}

impl Sharing {
    /// Whether this sharing is additive (t = n).
    pub fn is_additive(&self) -> bool {
        self.threshold as usize == self.fiduciaries.len()
    }

    /// The fiduciaries' key K = Σ K_i (additive) or C_0 (Shamir).
    pub fn group_key(&self) -> Result<PublicKey> {
        match &self.commitments {
            Some(c) => c.public_key(),
            None => wallet::sum_public_keys(&self.share_public_keys),
        }
    }

    /// The beneficiary's check of a released share from `fiduciary`: it must
    /// match that fiduciary's public share (and the commitments, Shamir).
    /// Returns the fiduciary's 1-based index.
    pub fn check_release(&self, fiduciary: &str, share: &SecretScalar) -> Result<u32> {
        let pos =
            self.fiduciaries
                .iter()
                .position(|f| f == fiduciary)
                .ok_or(Error::InvalidField {
                    field: "fiduciary",
                    reason: "not a fiduciary of this wallet",
                })?;
        let index = pos as u32 + 1;
        if share.public_key() != self.share_public_keys[pos] {
            return Err(Error::ShareMismatch { index });
        }
        if let Some(c) = &self.commitments {
            c.verify_share(&Share::new(index, *share.as_scalar())?)?;
        }
        Ok(index)
    }

    /// x = b + k from checked releases `(index, share)` (additive: all n;
    /// Shamir: at least t), returned only if x*G == `wallet_key`.
    pub fn rebuild_secret(
        &self,
        wallet_key: &PublicKey,
        beneficiary: &SecretScalar,
        releases: &[(u32, SecretScalar)],
    ) -> Result<SecretScalar> {
        let n = self.fiduciaries.len();
        let mut indices: Vec<u32> = releases.iter().map(|(i, _)| *i).collect();
        indices.sort_unstable();
        if let Some(w) = indices.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::InvalidIndex { index: w[0] });
        }
        if let Some(&bad) = indices.iter().find(|&&i| i == 0 || i as usize > n) {
            return Err(Error::InvalidIndex { index: bad });
        }
        if self.is_additive() {
            if releases.len() < n {
                return Err(Error::NotEnoughShares {
                    have: releases.len(),
                    need: n,
                });
            }
            let ks: Vec<SecretScalar> = releases.iter().map(|(_, s)| s.clone()).collect();
            wallet::aggregate_secret(beneficiary, &ks, wallet_key)
        } else {
            let shares = releases
                .iter()
                .map(|(i, s)| Share::new(*i, *s.as_scalar()))
                .collect::<Result<Vec<_>>>()?;
            let k = shamir::reconstruct(&shares, self.threshold as usize)?;
            wallet::aggregate_secret(beneficiary, &[k], wallet_key)
        }
    }

    /// ω_i of old fiduciary `index` dealing among `dealers` (1-based
    /// indices): 1 when additive, else its Lagrange coefficient at 0.
    /// Checks that `dealers` is a valid dealer set for this sharing.
    pub fn dealer_weight(&self, index: u32, dealers: &[u32]) -> Result<Scalar> {
        check_dealers(self.fiduciaries.len(), self.threshold as usize, dealers)?;
        if !dealers.contains(&index) {
            return Err(Error::InvalidIndex { index });
        }
        if self.is_additive() {
            Ok(Scalar::ONE)
        } else {
            shamir::lagrange_coefficient_at_zero(index, dealers)
        }
    }

    /// ω_i·(public share of i) for every dealer, in `dealers` order: what
    /// each dealer's committed constant C_i0 must be.
    pub fn expected_constants(&self, dealers: &[u32]) -> Result<Vec<ProjectivePoint>> {
        dealers
            .iter()
            .map(|&i| {
                let public = self
                    .share_public_keys
                    .get(i as usize - 1)
                    .ok_or(Error::InvalidIndex { index: i })?;
                Ok(public.to_projective() * self.dealer_weight(i, dealers)?)
            })
            .collect()
    }
}

/// A dealer set for a sharing of n with threshold t: strictly increasing
/// 1-based indices, all n when additive, at least t otherwise.
pub fn check_dealers(n: usize, t: usize, dealers: &[u32]) -> Result<()> {
    let increasing = dealers.windows(2).all(|w| w[0] < w[1]);
    let in_range = dealers.iter().all(|&i| i >= 1 && i as usize <= n);
    let enough = if t == n {
        dealers.len() == n
    } else {
        dealers.len() >= t
    };
    if increasing && in_range && enough {
        Ok(())
    } else {
        Err(Error::InvalidField {
            field: "dealers",
            reason: "increasing indices of the old fiduciaries: all of them (t = n) or at least t",
        })
    }
}

/// Dealer i's polynomial for a reshare: constant ω_i·share, fresh random
/// coefficients, degree `threshold`-1. Secret: keep it (to deal the same
/// again after a crash) and erase it once the reshare is over.
pub fn dealer_polynomial(
    share: &SecretScalar,
    weight: &Scalar,
    threshold: usize,
) -> Result<Polynomial> {
    let constant = SecretScalar::from_scalar(*share.as_scalar() * weight)?;
    Polynomial::with_secret(&constant, threshold)
}

/// New fiduciary `index`'s (1-based, in the new set of `parties`) share
/// from the deals `received` (one per dealer, with `expected` constants in
/// the same order): each checked, then summed; for t' = n' the additive
/// share λ'_j·s'_j. On a bad deal, the dealers' positions that failed.
pub fn combine_deals(
    index: u32,
    threshold: usize,
    parties: usize,
    received: &[(&Commitments, &Share)],
    expected: &[ProjectivePoint],
) -> std::result::Result<SecretScalar, Faulty> {
    let faulty: Vec<usize> = received
        .iter()
        .zip(expected)
        .enumerate()
        .filter(|(_, ((c, share), constant))| {
            c.threshold() != threshold
                || c.points()[0] != **constant
                || share.index() != index
                || c.verify_share(share).is_err()
        })
        .map(|(pos, _)| pos)
        .collect();
    if !faulty.is_empty() || received.len() != expected.len() {
        return Err(Faulty(faulty));
    }
    let sum = received
        .iter()
        .fold(Scalar::ZERO, |acc, (_, share)| acc + share.value());
    let value = if threshold == parties {
        sum * additive_weight(index, parties).map_err(|_| Faulty(Vec::new()))?
    } else {
        sum
    };
    SecretScalar::from_scalar(value).map_err(|_| Faulty(Vec::new()))
}

/// The positions of the dealers whose deal failed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faulty(pub Vec<usize>);

/// λ'_j over 1..=n: what turns Shamir share j of an n-of-n sharing into an
/// additive one.
fn additive_weight(index: u32, parties: usize) -> Result<Scalar> {
    let all: Vec<u32> = (1..=parties as u32).collect();
    shamir::lagrange_coefficient_at_zero(index, &all)
}

/// One list of `threshold` commitments per dealer, each committing to the
/// `expected` constant (the dealer's ω_i·(old public share)).
pub fn check_dealer_constants(
    dealer_commitments: &[Commitments],
    expected: &[ProjectivePoint],
    threshold: usize,
) -> Result<()> {
    let fits = dealer_commitments.len() == expected.len()
        && dealer_commitments
            .iter()
            .zip(expected)
            .all(|(c, e)| c.threshold() == threshold && c.points()[0] == *e);
    if fits {
        Ok(())
    } else {
        Err(Error::InconsistentDealings)
    }
}

/// The new sharing from the dealers' commitments (one list per dealer, in
/// dealer order) and the new fiduciaries' public shares: every dealer's
/// constant is the `expected` one, all lists have t' points, and each
/// public share matches them (λ'_j times it, when t' = n'). The group key
/// is then unchanged by construction (Σ expected = K).
pub fn new_sharing(
    fiduciaries: Vec<String>,
    threshold: u32,
    expected: &[ProjectivePoint],
    dealer_commitments: &[Commitments],
    share_public_keys: Vec<PublicKey>,
) -> Result<Sharing> {
    let n = fiduciaries.len();
    let t = threshold as usize;
    shamir::check_threshold(t, n)?;
    check_dealer_constants(dealer_commitments, expected, t)?;
    if share_public_keys.len() != n {
        return Err(Error::NotEnoughShares {
            have: share_public_keys.len(),
            need: n,
        });
    }
    let sum = Commitments::sum(dealer_commitments)?;
    for (pos, public) in share_public_keys.iter().enumerate() {
        let index = pos as u32 + 1;
        let mut expected_share = sum.public_share_point(index)?;
        if t == n {
            expected_share *= additive_weight(index, n)?;
        }
        if keys::point_to_public_key(&expected_share)? != *public {
            return Err(Error::ShareMismatch { index });
        }
    }
    Ok(Sharing {
        fiduciaries,
        threshold,
        share_public_keys,
        commitments: (t < n).then_some(sum),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feldman;

    /// Deals `sharing`'s secret shares (by dealer position) to a new set.
    fn reshare(
        old: &Sharing,
        old_shares: &[(u32, SecretScalar)],
        dealers: &[u32],
        names: Vec<String>,
        t: usize,
    ) -> (Sharing, Vec<SecretScalar>) {
        let n = names.len();
        let expected = old.expected_constants(dealers).unwrap();
        let mut polys = Vec::new();
        for &i in dealers {
            let share = &old_shares.iter().find(|(j, _)| *j == i).unwrap().1;
            polys.push(
                dealer_polynomial(share, &old.dealer_weight(i, dealers).unwrap(), t).unwrap(),
            );
        }
        let commitments: Vec<Commitments> = polys.iter().map(Commitments::of).collect();
        let mut new_shares = Vec::new();
        for j in 1..=n as u32 {
            let deals: Vec<Share> = polys.iter().map(|p| p.share(j).unwrap()).collect();
            let pairs: Vec<(&Commitments, &Share)> = commitments.iter().zip(&deals).collect();
            new_shares.push(combine_deals(j, t, n, &pairs, &expected).unwrap());
        }
        let publics = new_shares.iter().map(SecretScalar::public_key).collect();
        let sharing = new_sharing(names, t as u32, &expected, &commitments, publics).unwrap();
        (sharing, new_shares)
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    fn indexed(shares: &[SecretScalar]) -> Vec<(u32, SecretScalar)> {
        shares
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, s.clone()))
            .collect()
    }

    #[test]
    fn additive_to_shamir_to_additive_keeps_the_key() {
        let b = SecretScalar::random().unwrap();
        let ks: Vec<SecretScalar> = (0..3).map(|_| SecretScalar::random().unwrap()).collect();
        let old = Sharing {
            fiduciaries: names(3),
            threshold: 3,
            share_public_keys: ks.iter().map(SecretScalar::public_key).collect(),
            commitments: None,
        };
        let p = wallet::aggregate_public_key(&b.public_key(), &[old.group_key().unwrap()]).unwrap();
        let (shamir, s) = reshare(&old, &indexed(&ks), &[1, 2, 3], names(4), 2);
        assert_eq!(shamir.group_key().unwrap(), old.group_key().unwrap());
        let two = [(2, s[1].clone()), (4, s[3].clone())];
        shamir.rebuild_secret(&p, &b, &two).unwrap();
        // Any t of the 4 dealing again (here 1 and 3) into 3-of-3 additive.
        let (additive, k) = reshare(&shamir, &indexed(&s), &[1, 3], names(3), 3);
        assert!(additive.commitments.is_none());
        additive.rebuild_secret(&p, &b, &indexed(&k)).unwrap();
        for (i, share) in indexed(&k) {
            assert_eq!(
                additive
                    .check_release(&format!("f{}", i - 1), &share)
                    .unwrap(),
                i
            );
        }
    }

    #[test]
    fn a_refreshed_share_does_not_combine_with_an_old_one() {
        let b = SecretScalar::random().unwrap();
        let dealing = feldman::deal(2, 3).unwrap();
        let old_shares: Vec<SecretScalar> = dealing
            .shares
            .iter()
            .map(|s| SecretScalar::from_scalar(*s.value()).unwrap())
            .collect();
        let old = Sharing {
            fiduciaries: names(3),
            threshold: 2,
            share_public_keys: old_shares.iter().map(SecretScalar::public_key).collect(),
            commitments: Some(dealing.commitments.clone()),
        };
        let p = wallet::aggregate_public_key(&b.public_key(), &[old.group_key().unwrap()]).unwrap();
        let (new, s) = reshare(&old, &indexed(&old_shares), &[1, 2, 3], names(3), 2);
        new.rebuild_secret(&p, &b, &[(1, s[0].clone()), (3, s[2].clone())])
            .unwrap();
        let mixed = [(1, old_shares[0].clone()), (2, s[1].clone())];
        assert_eq!(
            new.rebuild_secret(&p, &b, &mixed).unwrap_err(),
            Error::KeyMismatch
        );
        // The old share is not even accepted as a release any more.
        assert!(new.check_release("f0", &old_shares[0]).is_err());
    }

    #[test]
    fn a_dealer_that_moves_its_constant_is_named() {
        let ks: Vec<SecretScalar> = (0..2).map(|_| SecretScalar::random().unwrap()).collect();
        let old = Sharing {
            fiduciaries: names(2),
            threshold: 2,
            share_public_keys: ks.iter().map(SecretScalar::public_key).collect(),
            commitments: None,
        };
        let expected = old.expected_constants(&[1, 2]).unwrap();
        let honest = dealer_polynomial(&ks[0], &Scalar::ONE, 2).unwrap();
        let rogue = Polynomial::random(2).unwrap();
        let commitments = [Commitments::of(&honest), Commitments::of(&rogue)];
        let deals = [honest.share(1).unwrap(), rogue.share(1).unwrap()];
        let pairs: Vec<(&Commitments, &Share)> = commitments.iter().zip(&deals).collect();
        assert_eq!(
            combine_deals(1, 2, 2, &pairs, &expected).unwrap_err(),
            Faulty(vec![1])
        );
        assert!(check_dealers(3, 2, &[1]).is_err());
        assert!(check_dealers(3, 3, &[1, 2]).is_err());
        assert!(check_dealers(3, 2, &[2, 1]).is_err());
        check_dealers(3, 2, &[1, 3]).unwrap();
    }
}
