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

//! BIP340 Schnorr signatures for Taproot wallets, made by the beneficiary
//! and any t fiduciaries together: FROST (RFC 9591) through the Zcash
//! Foundation's `frost-secp256k1-tr`, with the wallet key never assembled.
//!
//! The wallet key is P = B + K: the beneficiary's b is an additive share
//! beside the fiduciaries' sharing of k (Shamir t-of-n with Feldman
//! commitments, or additive n-of-n). A signing set is the beneficiary and a
//! set T of fiduciaries (exactly t, or all n when additive), so no t
//! fiduciaries sign without the beneficiary and the beneficiary cannot sign
//! alone.
//!
//! What the library cannot express, and is ours: FROST weighs signer i's
//! share by the Lagrange coefficient λᴸ_i of the whole signing set (its
//! identifiers), while our composition needs the beneficiary weighed by 1
//! and fiduciary j by λᵀ_j, its Lagrange coefficient within T only (1 when
//! additive). So each signer signs, for this signing set only, with the
//! share σ_i = μ_i / λᴸ_i where μ_β = b and μ_j = λᵀ_j·s_j, and the
//! verifying share Y_i = σ_i·G (B / λᴸ_β and (λᵀ_j / λᴸ_j)·S_j, from public
//! values). Then Σ λᴸ_i·σ_i = b + Σ λᵀ_j·s_j = b + k = x. Everything else
//! is the library's: nonces (hedged with the share), binding factors, the
//! group commitment, BIP340's even-y rules, the BIP86 tweak, each share's
//! check and the aggregation. The argument is in `docs/custody.md` §12.
//!
//! The beneficiary's FROST identifier is a hash of a fixed tag (never a
//! small integer, so never a fiduciary's index j).

use std::collections::BTreeMap;

use frost::keys::{KeyPackage, PublicKeyPackage, SigningShare, Tweak, VerifyingShare};
use frost::round1::{SigningCommitments, SigningNonces};
use frost::round2::SignatureShare;
use frost::{Identifier, SigningPackage, VerifyingKey};
use frost_secp256k1_tr as frost;
use k256::{ProjectivePoint, PublicKey, Scalar};

use crate::reshare::Sharing;
use crate::{Error, Result, SecretScalar, keys, shamir, taproot};

/// A party of a signing set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signer {
    /// The wallet's beneficiary (its key b).
    Beneficiary,
    /// Fiduciary j, 1-based (its share s_j, or k_j when additive).
    Fiduciary(u32),
}

/// Wire index of a signer: 0 for the beneficiary, j for fiduciary j.
impl From<Signer> for u32 {
    fn from(s: Signer) -> u32 {
        match s {
            Signer::Beneficiary => 0,
            Signer::Fiduciary(j) => j,
        }
    }
}

impl From<u32> for Signer {
    fn from(index: u32) -> Signer {
        match index {
            0 => Signer::Beneficiary,
            j => Signer::Fiduciary(j),
        }
    }
}

const BENEFICIARY_TAG: &[u8] = b"milagro/custody/frost/beneficiary/v1";

fn lib_error(e: frost::Error) -> Error {
    Error::Signing(e.to_string())
}

impl Signer {
    /// The signer's FROST identifier.
    pub fn identifier(self) -> Result<Identifier> {
        match self {
            Signer::Beneficiary => Identifier::derive(BENEFICIARY_TAG).map_err(lib_error),
            Signer::Fiduciary(j) => u16::try_from(j)
                .ok()
                .and_then(|j| Identifier::try_from(j).ok())
                .ok_or(Error::InvalidIndex { index: j }),
        }
    }

    /// The identifier as a scalar of our curve arithmetic.
    fn scalar(self) -> Result<Scalar> {
        let bytes: [u8; 32] = self
            .identifier()?
            .serialize()
            .try_into()
            .map_err(|_| Error::Signing("an identifier is not 32 bytes".into()))?;
        keys::decode_scalar(&bytes)
    }
}

/// A signer's one-time nonces (zeroized on drop; the library keeps them
/// from being copied).
pub type Nonces = SigningNonces;
/// The public commitments to a signer's nonces (round 1).
pub type Commitments = SigningCommitments;
/// One signer's share of a signature (round 2).
pub type Share = SignatureShare;
/// The message and every signer's commitments (round 2's input).
pub type Package = SigningPackage;

/// A fresh signing session ID: 16 bytes from the OS CSPRNG.
pub fn new_session_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| Error::Randomness)?;
    Ok(id)
}

/// Round 1: fresh nonces for a signer holding `secret` (b, or s_j), drawn
/// from the OS CSPRNG and hedged with the secret by the library.
pub fn commit(secret: &SecretScalar) -> Result<(Nonces, Commitments)> {
    let share = SigningShare::deserialize(secret.to_bytes().as_slice()).map_err(lib_error)?;
    Ok(frost::round1::commit(&share, &mut rand_core::OsRng))
}

/// Commitments from their two 33-byte compressed points (hiding, binding).
pub fn commitments_from_bytes(hiding: &[u8], binding: &[u8]) -> Result<Commitments> {
    let point = |b: &[u8]| {
        keys::decode_public_key(b)?;
        frost::round1::NonceCommitment::deserialize(b).map_err(|_| Error::InvalidPublicKey)
    };
    Ok(Commitments::new(point(hiding)?, point(binding)?))
}

/// The two 33-byte compressed points (hiding, binding) of commitments.
pub fn commitments_to_bytes(c: &Commitments) -> Result<([u8; 33], [u8; 33])> {
    let point = |p: Result<Vec<u8>, frost::Error>| -> Result<[u8; 33]> {
        p.map_err(lib_error)?
            .try_into()
            .map_err(|_| Error::InvalidPublicKey)
    };
    Ok((
        point(c.hiding().serialize())?,
        point(c.binding().serialize())?,
    ))
}

/// A signature share from its 32 bytes.
pub fn share_from_bytes(bytes: &[u8; 32]) -> Result<Share> {
    Share::deserialize(bytes).map_err(|_| Error::InvalidScalar)
}

/// The 32 bytes of a signature share.
pub fn share_to_bytes(share: &Share) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&share.serialize());
    out
}

/// A wallet's signing parameters: its key P and how k is shared among its
/// n fiduciaries (threshold t; t = n: additive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wallet {
    /// P = B + K, the internal key.
    pub wallet_key: PublicKey,
    /// n.
    pub fiduciaries: u32,
    /// t.
    pub threshold: u32,
}

impl Wallet {
    /// The wallet of `sharing` whose key is `wallet_key` = `beneficiary_key`
    /// + the sharing's group key; refused if they do not add up.
    pub fn of_sharing(
        beneficiary_key: &PublicKey,
        sharing: &Sharing,
        wallet_key: PublicKey,
    ) -> Result<Self> {
        let sum = beneficiary_key.to_projective() + sharing.group_key()?.to_projective();
        if keys::point_to_public_key(&sum)? != wallet_key {
            return Err(Error::KeyMismatch);
        }
        Ok(Wallet {
            wallet_key,
            fiduciaries: sharing.fiduciaries.len() as u32,
            threshold: sharing.threshold,
        })
    }

    /// The BIP86 output key that signatures verify under (x-only).
    pub fn output_key(&self) -> Result<taproot::XOnlyKey> {
        taproot::output_key(&self.wallet_key)
    }

    fn is_additive(&self) -> bool {
        self.threshold == self.fiduciaries
    }

    /// How many fiduciaries a signing set has: t (n when additive).
    pub fn fiduciaries_needed(&self) -> usize {
        self.threshold as usize
    }

    /// The session of a signing package: its signers must be the
    /// beneficiary and exactly t distinct fiduciaries of this wallet (all n
    /// when additive), and its message 32 bytes (a sighash).
    pub fn session(&self, package: Package) -> Result<Session> {
        if package.message().len() != 32 {
            return Err(Error::InvalidField {
                field: "message",
                reason: "must be 32 bytes",
            });
        }
        let beneficiary = Signer::Beneficiary.identifier()?;
        if !package.signing_commitments().contains_key(&beneficiary) {
            return Err(Error::InvalidField {
                field: "signers",
                reason: "the beneficiary must sign",
            });
        }
        let mut fiduciaries = Vec::new();
        for id in package.signing_commitments().keys() {
            if *id == beneficiary {
                continue;
            }
            let j = (1..=self.fiduciaries)
                .find(|&j| Signer::Fiduciary(j).identifier().ok() == Some(*id))
                .ok_or(Error::InvalidField {
                    field: "signers",
                    reason: "a signer is not a fiduciary of this wallet",
                })?;
            fiduciaries.push(j);
        }
        fiduciaries.sort_unstable();
        if fiduciaries.len() != self.fiduciaries_needed() {
            return Err(Error::InvalidField {
                field: "signers",
                reason: "the set must hold exactly t fiduciaries (all n when additive)",
            });
        }
        Ok(Session {
            wallet: *self,
            fiduciaries,
            package,
        })
    }
}

/// One signing session's set and package, as every signer sees it.
pub struct Session {
    wallet: Wallet,
    /// The fiduciaries of the set, strictly increasing.
    fiduciaries: Vec<u32>,
    package: Package,
}

/// The package of `message` with every signer's round-1 commitments.
pub fn package(message: &[u8; 32], commitments: &BTreeMap<Signer, Commitments>) -> Result<Package> {
    let mut by_id = BTreeMap::new();
    for (signer, c) in commitments {
        by_id.insert(signer.identifier()?, *c);
    }
    Ok(SigningPackage::new(by_id, message))
}

impl Session {
    /// The fiduciaries of the set (1-based, increasing).
    pub fn fiduciaries(&self) -> &[u32] {
        &self.fiduciaries
    }

    /// The signers: the beneficiary, then the fiduciaries.
    pub fn signers(&self) -> impl Iterator<Item = Signer> + '_ {
        std::iter::once(Signer::Beneficiary)
            .chain(self.fiduciaries.iter().map(|&j| Signer::Fiduciary(j)))
    }

    /// The message signed.
    pub fn message(&self) -> &[u8] {
        self.package.message()
    }

    /// λᴸ_i: the library's weight of `signer`, its Lagrange coefficient at
    /// 0 over the whole set's identifiers.
    fn library_weight(&self, signer: Signer) -> Result<Scalar> {
        let xi = signer.scalar()?;
        let (mut num, mut den) = (Scalar::ONE, Scalar::ONE);
        for other in self.signers().filter(|&s| s != signer) {
            let xm = other.scalar()?;
            num *= xm;
            den *= xm - xi;
        }
        let inv = Option::<Scalar>::from(den.invert())
            .ok_or(Error::Signing("two signers share an identifier".into()))?;
        Ok(num * inv)
    }

    /// μ_i / (secret of i): 1 for the beneficiary, λᵀ_j for fiduciary j
    /// (1 when additive).
    fn composition_weight(&self, signer: Signer) -> Result<Scalar> {
        match signer {
            Signer::Fiduciary(j) if !self.wallet.is_additive() => {
                shamir::lagrange_coefficient_at_zero(j, &self.fiduciaries)
            }
            _ => Ok(Scalar::ONE),
        }
    }

    /// σ_i / (secret of i) = μ_i / (λᴸ_i · secret of i).
    fn session_weight(&self, signer: Signer) -> Result<Scalar> {
        let lib = self.library_weight(signer)?;
        let inv = Option::<Scalar>::from(lib.invert())
            .ok_or(Error::Signing("a zero Lagrange coefficient".into()))?;
        Ok(self.composition_weight(signer)? * inv)
    }

    /// Y_i = σ_i·G from the public key of `signer`'s secret (B, or S_j).
    fn verifying_share(&self, signer: Signer, public: &PublicKey) -> Result<VerifyingShare> {
        let y = public.to_projective() * self.session_weight(signer)?;
        VerifyingShare::deserialize(&point_bytes(&y)?).map_err(lib_error)
    }

    fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::deserialize(&keys::encode_public_key(&self.wallet.wallet_key))
            .map_err(lib_error)
    }

    /// The session's public key package (untweaked) from every signer's
    /// public key.
    fn public_key_package(
        &self,
        publics: &BTreeMap<Signer, PublicKey>,
    ) -> Result<PublicKeyPackage> {
        let mut shares = BTreeMap::new();
        for signer in self.signers() {
            let public = publics
                .get(&signer)
                .ok_or(Error::Signing("a signer's public key is missing".into()))?;
            shares.insert(signer.identifier()?, self.verifying_share(signer, public)?);
        }
        Ok(PublicKeyPackage::new(
            shares,
            self.verifying_key()?,
            Some(self.min_signers()?),
        ))
    }

    fn min_signers(&self) -> Result<u16> {
        u16::try_from(self.fiduciaries.len() + 1)
            .map_err(|_| Error::Signing("too many signers".into()))
    }

    /// Round 2: `signer`'s share of the signature, with its `secret` (b, or
    /// s_j) and the `nonces` it committed to in round 1 (consumed: a nonce
    /// signs once).
    pub fn sign(&self, signer: Signer, secret: &SecretScalar, nonces: Nonces) -> Result<Share> {
        if !self.signers().any(|s| s == signer) {
            return Err(Error::Signing("not a signer of this session".into()));
        }
        let sigma = SecretScalar::from_scalar(*secret.as_scalar() * self.session_weight(signer)?)?;
        let signing_share =
            SigningShare::deserialize(sigma.to_bytes().as_slice()).map_err(lib_error)?;
        let key_package = KeyPackage::new(
            signer.identifier()?,
            signing_share,
            self.verifying_share(signer, &secret.public_key())?,
            self.verifying_key()?,
            self.min_signers()?,
        );
        let share = frost::round2::sign_with_tweak(&self.package, &nonces, &key_package, None);
        drop(nonces);
        share.map_err(lib_error)
    }

    /// Checks `signer`'s signature share against `public`, the public key
    /// of its secret (B, or S_j).
    pub fn verify_share(&self, signer: Signer, public: &PublicKey, share: &Share) -> Result<()> {
        let id = signer.identifier()?;
        let mut shares = BTreeMap::new();
        shares.insert(id, self.verifying_share(signer, public)?);
        let tweaked =
            PublicKeyPackage::new(shares, self.verifying_key()?, None).tweak::<&[u8]>(None);
        let verifying_share = tweaked
            .verifying_shares()
            .get(&id)
            .ok_or(Error::Signing("not a signer of this session".into()))?;
        frost_core::verify_signature_share(
            id,
            verifying_share,
            share,
            &self.package,
            tweaked.verifying_key(),
        )
        .map_err(|_| Error::InvalidSignatureShare {
            signer: signer.into(),
        })
    }

    /// The BIP340 signature (64 bytes, R_x ‖ s) from every signer's share,
    /// each checked first against its signer's public key in `publics` (B
    /// and the S_j); the signature is verified under the output key.
    pub fn aggregate(
        &self,
        publics: &BTreeMap<Signer, PublicKey>,
        shares: &BTreeMap<Signer, Share>,
    ) -> Result<[u8; 64]> {
        let mut by_id = BTreeMap::new();
        for signer in self.signers() {
            let share = shares.get(&signer).ok_or(Error::NotEnoughShares {
                have: shares.len(),
                need: self.fiduciaries.len() + 1,
            })?;
            let public = publics
                .get(&signer)
                .ok_or(Error::Signing("a signer's public key is missing".into()))?;
            self.verify_share(signer, public, share)?;
            by_id.insert(signer.identifier()?, *share);
        }
        // The library verifies the aggregate under the tweaked (output) key.
        let signature = frost::aggregate_with_tweak(
            &self.package,
            &by_id,
            &self.public_key_package(publics)?,
            None,
        )
        .map_err(lib_error)?;
        signature
            .serialize()
            .map_err(lib_error)?
            .try_into()
            .map_err(|_| Error::Signing("a signature is not 64 bytes".into()))
    }
}

/// Every signer's public key in a wallet: B, and S_j (K_j when additive)
/// for each fiduciary.
pub fn public_keys(beneficiary_key: &PublicKey, sharing: &Sharing) -> BTreeMap<Signer, PublicKey> {
    let mut out = BTreeMap::from([(Signer::Beneficiary, *beneficiary_key)]);
    for (pos, key) in sharing.share_public_keys.iter().enumerate() {
        out.insert(Signer::Fiduciary(pos as u32 + 1), *key);
    }
    out
}

fn point_bytes(p: &ProjectivePoint) -> Result<[u8; 33]> {
    Ok(keys::encode_public_key(&keys::point_to_public_key(p)?))
}

/// Checks a BIP340 signature of `message` under x-only key `output_key`.
pub fn verify(output_key: &taproot::XOnlyKey, message: &[u8], signature: &[u8; 64]) -> Result<()> {
    let mut key = [0x02; 33];
    key[1..].copy_from_slice(output_key);
    let key = VerifyingKey::deserialize(&key).map_err(|_| Error::InvalidPublicKey)?;
    let signature =
        frost::Signature::deserialize(signature).map_err(|_| Error::InvalidSignature)?;
    key.verify(message, &signature)
        .map_err(|_| Error::InvalidSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feldman;

    /// A wallet of t-of-n fiduciaries (t = n: additive) with its secrets:
    /// b and every fiduciary's share.
    struct Fixture {
        wallet: Wallet,
        publics: BTreeMap<Signer, PublicKey>,
    }

    fn wallet(n: usize, t: usize) -> (Fixture, SecretScalar, Vec<SecretScalar>, SecretScalar) {
        let b = SecretScalar::random().unwrap();
        let k = SecretScalar::random().unwrap();
        let ids: Vec<String> = (1..=n).map(|j| format!("fiduciary-{j}")).collect();
        let (sharing, shares) = if t == n {
            // Additive: k_1..k_{n-1} random, k_n = k - Σ.
            let mut ks: Vec<SecretScalar> =
                (1..n).map(|_| SecretScalar::random().unwrap()).collect();
            let last = ks.iter().fold(*k.as_scalar(), |acc, s| acc - s.as_scalar());
            ks.push(SecretScalar::from_scalar(last).unwrap());
            let sharing = Sharing {
                fiduciaries: ids,
                threshold: t as u32,
                share_public_keys: ks.iter().map(SecretScalar::public_key).collect(),
                commitments: None,
            };
            (sharing, ks)
        } else {
            let dealing = feldman::deal_secret(&k, t, n).unwrap();
            let ss: Vec<SecretScalar> = dealing
                .shares
                .iter()
                .map(|s| SecretScalar::from_scalar(*s.value()).unwrap())
                .collect();
            let sharing = Sharing {
                fiduciaries: ids,
                threshold: t as u32,
                share_public_keys: ss.iter().map(SecretScalar::public_key).collect(),
                commitments: Some(dealing.commitments),
            };
            (sharing, ss)
        };
        let x = SecretScalar::from_scalar(*b.as_scalar() + k.as_scalar()).unwrap();
        let wallet = Wallet::of_sharing(&b.public_key(), &sharing, x.public_key()).unwrap();
        let other = SecretScalar::random().unwrap().public_key();
        assert_eq!(
            Wallet::of_sharing(&other, &sharing, x.public_key()).err(),
            Some(Error::KeyMismatch)
        );
        let publics = public_keys(&b.public_key(), &sharing);
        (Fixture { wallet, publics }, b, shares, x)
    }

    /// Runs both rounds with the beneficiary and fiduciaries `set`.
    fn sign(
        w: &Fixture,
        b: &SecretScalar,
        shares: &[SecretScalar],
        set: &[u32],
        msg: &[u8; 32],
    ) -> Result<[u8; 64]> {
        let mut secrets = BTreeMap::from([(Signer::Beneficiary, b.clone())]);
        for &j in set {
            secrets.insert(Signer::Fiduciary(j), shares[j as usize - 1].clone());
        }
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for (signer, secret) in &secrets {
            let (n, c) = commit(secret)?;
            nonces.insert(*signer, n);
            commitments.insert(*signer, c);
        }
        let session = w.wallet.session(package(msg, &commitments)?)?;
        let mut out = BTreeMap::new();
        for (signer, n) in nonces {
            out.insert(signer, session.sign(signer, &secrets[&signer], n)?);
        }
        session.aggregate(&w.publics, &out)
    }

    #[test]
    fn any_t_fiduciaries_with_the_beneficiary_sign_under_the_output_key() {
        for (n, t) in [(3, 2), (3, 3), (1, 1), (5, 3)] {
            let (w, b, shares, x) = wallet(n, t);
            let q = w.wallet.output_key().unwrap();
            assert_eq!(q, taproot::output_key(&x.public_key()).unwrap());
            let sets: Vec<Vec<u32>> = if t == n {
                vec![(1..=n as u32).collect()]
            } else {
                vec![
                    (1..=t as u32).collect(),
                    ((n - t + 1) as u32..=n as u32).collect(),
                ]
            };
            for (i, set) in sets.iter().enumerate() {
                let msg = [i as u8 + 1; 32];
                let sig = sign(&w, &b, &shares, set, &msg).unwrap();
                verify(&q, &msg, &sig).unwrap();
                assert!(verify(&q, &[0u8; 32], &sig).is_err());
            }
        }
    }

    #[test]
    fn sets_without_the_beneficiary_or_with_too_few_fiduciaries_are_refused() {
        let (w, b, shares, _) = wallet(3, 2);
        let msg = [7u8; 32];
        // Too few fiduciaries (1 of t = 2).
        assert!(matches!(
            sign(&w, &b, &shares, &[1], &msg),
            Err(Error::InvalidField {
                field: "signers",
                ..
            })
        ));
        // t fiduciaries without the beneficiary.
        let mut commitments = BTreeMap::new();
        for j in [1u32, 2, 3] {
            commitments.insert(
                Signer::Fiduciary(j),
                commit(&shares[j as usize - 1]).unwrap().1,
            );
        }
        assert!(matches!(
            w.wallet.session(package(&msg, &commitments).unwrap()),
            Err(Error::InvalidField {
                field: "signers",
                ..
            })
        ));
    }

    #[test]
    fn a_wrong_share_is_named() {
        let (w, b, shares, _) = wallet(3, 2);
        let msg = [9u8; 32];
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for (signer, secret) in [
            (Signer::Beneficiary, &b),
            (Signer::Fiduciary(1), &shares[0]),
            (Signer::Fiduciary(3), &shares[2]),
        ] {
            let (n, c) = commit(secret).unwrap();
            nonces.insert(signer, (n, secret.clone()));
            commitments.insert(signer, c);
        }
        let session = w
            .wallet
            .session(package(&msg, &commitments).unwrap())
            .unwrap();
        let mut out = BTreeMap::new();
        for (signer, (n, secret)) in nonces {
            out.insert(signer, session.sign(signer, &secret, n).unwrap());
        }
        // Fiduciary 3 sends another scalar.
        out.insert(Signer::Fiduciary(3), share_from_bytes(&[1u8; 32]).unwrap());
        assert_eq!(
            session.aggregate(&w.publics, &out),
            Err(Error::InvalidSignatureShare { signer: 3 })
        );
        // A fiduciary outside the set cannot sign in it.
        let (n, _) = commit(&shares[1]).unwrap();
        assert!(session.sign(Signer::Fiduciary(2), &shares[1], n).is_err());
    }
}
