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

//! Property tests of the threshold arithmetic over the secp256k1 scalar
//! field: Shamir sharing, Feldman verification, Lagrange interpolation and
//! the joint-Feldman DKG, for random 1 <= t <= n <= 10.

use k256::{ProjectivePoint, Scalar};
use milagro_custody::feldman::{self, Commitments, Dealing};
use milagro_custody::shamir::{self, Polynomial, Share};
use milagro_custody::{Error, SecretScalar, wallet};
use proptest::prelude::*;
use proptest::sample::subsequence;

/// (t, n) with 1 <= t <= n <= 10.
fn t_n() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=10).prop_flat_map(|n| (1usize..=n, Just(n)))
}

/// (t, n, a t-subset of 0..n, a (t-1)-subset of 0..n).
fn t_n_subsets() -> impl Strategy<Value = (usize, usize, Vec<usize>, Vec<usize>)> {
    t_n().prop_flat_map(|(t, n)| {
        (
            Just(t),
            Just(n),
            subsequence((0..n).collect::<Vec<_>>(), t),
            subsequence((0..n).collect::<Vec<_>>(), t - 1),
        )
    })
}

fn pick(shares: &[Share], positions: &[usize]) -> Vec<Share> {
    positions.iter().map(|&p| shares[p].clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any t shares interpolate the secret; t-1 give a different value.
    #[test]
    fn any_t_shares_interpolate((t, n, subset, smaller) in t_n_subsets(), shuffle in any::<bool>()) {
        let secret = SecretScalar::random().unwrap();
        let poly = Polynomial::with_secret(&secret, t).unwrap();
        let shares = poly.shares(n).unwrap();
        let mut chosen = pick(&shares, &subset);
        if shuffle {
            chosen.reverse();
        }
        let got = shamir::interpolate_at_zero(&chosen).unwrap();
        prop_assert_eq!(*got, *secret.as_scalar());
        prop_assert_eq!(shamir::reconstruct(&chosen, t).unwrap(), secret.clone());
        // All n shares also work (a degree t-1 polynomial through n points).
        prop_assert_eq!(*shamir::interpolate_at_zero(&shares).unwrap(), *secret.as_scalar());
        if t > 1 {
            let fewer = pick(&shares, &smaller);
            let wrong = shamir::interpolate_at_zero(&fewer).unwrap();
            prop_assert_ne!(*wrong, *secret.as_scalar());
            prop_assert!(shamir::reconstruct(&fewer, t).is_err());
        }
    }

    /// Every honest share verifies against the Feldman commitments; a
    /// corrupted one (any non-zero offset, or moved to another index) fails.
    #[test]
    fn feldman_detects_corruption((t, n) in t_n(), victim in 0usize..10, offset in 1u64..u64::MAX) {
        let dealing = feldman::deal(t, n).unwrap();
        for s in &dealing.shares {
            prop_assert!(dealing.commitments.verify_share(s).is_ok());
        }
        let v = victim % n;
        let honest = &dealing.shares[v];
        let corrupted = Share::new(honest.index(), *honest.value() + Scalar::from(offset)).unwrap();
        prop_assert_eq!(
            dealing.commitments.verify_share(&corrupted),
            Err(Error::ShareMismatch { index: honest.index() })
        );
        // (With t = 1 every share equals the secret, so only t > 1 binds the index.)
        if n > 1 && t > 1 {
            let other = (honest.index() % n as u32) + 1;
            let moved = Share::new(other, *honest.value()).unwrap();
            prop_assert!(dealing.commitments.verify_share(&moved).is_err());
        }
        // The group key is C_0 and matches the interpolated secret.
        let k = shamir::reconstruct(&dealing.shares, t).unwrap();
        prop_assert_eq!(k.public_key(), dealing.commitments.public_key().unwrap());
    }

    /// Joint-Feldman DKG: s_j = sum_i f_i(j) verifies against sum_i C_i,
    /// any t of the s_j interpolate k with k*G = K = sum_i C_i0, and the
    /// wallet key b + k matches P = B + K.
    #[test]
    fn joint_feldman_dkg((t, n, subset, smaller) in t_n_subsets()) {
        let dealings: Vec<Dealing> = (0..n).map(|_| feldman::deal(t, n).unwrap()).collect();
        let all: Vec<Commitments> = dealings.iter().map(|d| d.commitments.clone()).collect();
        let group = feldman::group_key(&all).unwrap();
        let summed = Commitments::sum(&all).unwrap();
        let finals: Vec<Share> = (1..=n as u32)
            .map(|j| {
                let received: Vec<(&Commitments, &Share)> = dealings
                    .iter()
                    .map(|d| (&d.commitments, &d.shares[j as usize - 1]))
                    .collect();
                feldman::combine_shares(j, &received).unwrap()
            })
            .collect();
        for s in &finals {
            prop_assert!(summed.verify_share(s).is_ok());
            // The beneficiary's check: s_j*G == sum_i sum_k C_ik j^k.
            let expected = all
                .iter()
                .map(|c| c.public_share_point(s.index()).unwrap())
                .fold(ProjectivePoint::IDENTITY, |a, p| a + p);
            prop_assert_eq!(ProjectivePoint::GENERATOR * s.value(), expected);
        }
        let k = shamir::reconstruct(&pick(&finals, &subset), t).unwrap();
        prop_assert_eq!(k.public_key(), group);
        // Sum of the dealt secrets, computed directly, agrees.
        let direct = dealings
            .iter()
            .map(|d| *shamir::interpolate_at_zero(&d.shares).unwrap())
            .fold(Scalar::ZERO, |a, b| a + b);
        prop_assert_eq!(direct, *k.as_scalar());
        if t > 1 {
            let wrong = shamir::interpolate_at_zero(&pick(&finals, &smaller)).unwrap();
            prop_assert_ne!(*wrong, *k.as_scalar());
        }
        let b = SecretScalar::random().unwrap();
        let p = wallet::aggregate_public_key(&b.public_key(), &[group]).unwrap();
        let x = wallet::aggregate_secret(&b, &[k], &p).unwrap();
        prop_assert_eq!(x.public_key(), p);
    }

    /// A dealer that sends a wrong share is singled out by verify_dealings.
    #[test]
    fn faulty_dealer_is_named((t, n) in t_n(), bad_dealer in 0usize..10, victim in 0usize..10) {
        let bad_dealer = bad_dealer % n;
        let j = (victim % n) as u32 + 1;
        let dealings: Vec<Dealing> = (0..n).map(|_| feldman::deal(t, n).unwrap()).collect();
        let wrong = Share::new(j, *dealings[bad_dealer].shares[j as usize - 1].value() + Scalar::ONE).unwrap();
        let received: Vec<(&Commitments, &Share)> = dealings
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let s = if i == bad_dealer { &wrong } else { &d.shares[j as usize - 1] };
                (&d.commitments, s)
            })
            .collect();
        prop_assert_eq!(feldman::verify_dealings(j, &received), vec![bad_dealer]);
        prop_assert!(feldman::combine_shares(j, &received).is_err());
    }

    /// Commitments survive their byte encoding.
    #[test]
    fn commitments_encoding((t, n) in t_n()) {
        let d = feldman::deal(t, n).unwrap();
        let bytes = d.commitments.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), t);
        prop_assert_eq!(Commitments::from_bytes(&bytes).unwrap(), d.commitments);
    }
}
