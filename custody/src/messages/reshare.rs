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

//! Share refresh and resharing (`docs/custody.md` §9): `custody/reshare`
//! (principal -> old and new fiduciaries), `custody/reshare-deal` (dealer ->
//! new fiduciary, sealed), `custody/reshare-commitment` (new fiduciary ->
//! principal) and `custody/reshared` (principal -> every fiduciary, old and
//! new; to the beneficiary as `custody/reshared-notice`: the new sharing,
//! checkable by each).

use super::*;
use crate::reshare::{self, Sharing};

/// The public side of a sharing on the wire (in [`Reshare::previous`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicShares {
    /// The fiduciaries' node IDs, fiduciary j at position j-1.
    pub fiduciaries: Vec<String>,
    /// t (t = n: additive).
    pub threshold: u32,
    /// K_i or S_j, one per fiduciary.
    pub share_public_keys: Vec<ByteArray<PUBLIC_KEY_LEN>>,
}

impl PublicShares {
    /// The wire form of `sharing` (its commitments are not carried: the
    /// dealers' constants are checked against the public shares).
    pub fn of(sharing: &Sharing) -> Self {
        PublicShares {
            fiduciaries: sharing.fiduciaries.clone(),
            threshold: sharing.threshold,
            share_public_keys: sharing
                .share_public_keys
                .iter()
                .map(|k| ByteArray::new(keys::encode_public_key(k)))
                .collect(),
        }
    }

    /// The sharing these public shares describe (without commitments).
    pub fn sharing(&self) -> Result<Sharing> {
        Ok(Sharing {
            fiduciaries: self.fiduciaries.clone(),
            threshold: self.threshold,
            share_public_keys: self
                .share_public_keys
                .iter()
                .map(|k| keys::decode_public_key(&k[..]))
                .collect::<Result<_>>()?,
            commitments: None,
        })
    }

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_fiduciaries(&self.fiduciaries, self.threshold, limits)?;
        if self.share_public_keys.len() != self.fiduciaries.len() {
            return Err(Error::InvalidField {
                field: "previous.share_public_keys",
                reason: "one per fiduciary expected",
            });
        }
        check_points("previous.share_public_keys", &self.share_public_keys)
    }
}

/// `custody/reshare`: principal -> every dealer and every new fiduciary.
/// Moves the wallet's sharing from epoch `epoch - 1` (`previous`) to
/// `epoch` (`fiduciaries`, `threshold`); a refresh keeps both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reshare {
    /// The order (its principal signs this; new fiduciaries learn it here).
    pub order: Order,
    /// The new sharing's number, 1 for the first reshare of an order.
    pub epoch: u32,
    /// The sharing being replaced.
    pub previous: PublicShares,
    /// The old fiduciaries that deal (1-based indices into `previous`):
    /// all of them when additive, at least t otherwise.
    pub dealers: Vec<u32>,
    /// The new fiduciaries' node IDs, fiduciary j at position j-1.
    pub fiduciaries: Vec<String>,
    /// The new t (t = n: additive).
    pub threshold: u32,
}

impl Reshare {
    /// The reshare's CID: what deals, commitments and proofs are bound to.
    pub fn cid(&self) -> Result<Cid> {
        Ok(cid_of(&encode(self)?))
    }

    /// The 1-based index of `id` among the dealers' old positions, if it deals.
    pub fn dealer_index(&self, id: &str) -> Option<u32> {
        let index = self.previous.fiduciaries.iter().position(|f| f == id)? as u32 + 1;
        self.dealers.contains(&index).then_some(index)
    }

    /// The 1-based index of `id` in the new sharing.
    pub fn new_index(&self, id: &str) -> Option<u32> {
        self.fiduciaries
            .iter()
            .position(|f| f == id)
            .map(|p| p as u32 + 1)
    }

    /// The node IDs of the dealers, in dealer order.
    pub fn dealer_ids(&self) -> Vec<&str> {
        self.dealers
            .iter()
            .map(|&i| self.previous.fiduciaries[i as usize - 1].as_str())
            .collect()
    }

    /// What each dealer's committed constant must be, in dealer order.
    pub fn expected_constants(&self) -> Result<Vec<k256::ProjectivePoint>> {
        self.previous.sharing()?.expected_constants(&self.dealers)
    }
}

impl Body for Reshare {
    const KIND: &'static str = "custody/reshare";

    fn validate(&self, limits: &Limits) -> Result<()> {
        self.order.validate(limits)?;
        if self.epoch == 0 {
            return Err(Error::InvalidField {
                field: "epoch",
                reason: "the first reshare makes epoch 1",
            });
        }
        self.previous.validate(limits)?;
        reshare::check_dealers(
            self.previous.fiduciaries.len(),
            self.previous.threshold as usize,
            &self.dealers,
        )?;
        check_fiduciaries(&self.fiduciaries, self.threshold, limits)
    }
}

/// `custody/reshare-deal`: dealer i -> new fiduciary j, sealed to j only:
/// dealer i's commitments to g_i and g_i(j). `Debug` omits the share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshareDeal {
    /// The reshare ([`Reshare::cid`]).
    pub reshare_cid: Cid,
    /// C_i0..C_i,t'-1, compressed points.
    pub commitments: Vec<ByteArray<PUBLIC_KEY_LEN>>,
    /// g_i(j): secret.
    #[serde(with = "secret_scalar_bytes")]
    pub share: SecretScalar,
}

impl std::fmt::Debug for ReshareDeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReshareDeal")
            .field("reshare_cid", &self.reshare_cid.to_string())
            .field("t", &self.commitments.len())
            .finish_non_exhaustive()
    }
}

impl ReshareDeal {
    /// Dealer `commitments` and the share for new fiduciary `share.index()`.
    pub fn new(reshare_cid: &Cid, commitments: &Commitments, share: &Share) -> Result<Self> {
        Ok(ReshareDeal {
            reshare_cid: *reshare_cid,
            commitments: encode_points(commitments)?,
            share: SecretScalar::from_scalar(*share.value())?,
        })
    }

    /// The commitments, decoded.
    pub fn commitments(&self) -> Result<Commitments> {
        decode_points(&self.commitments)
    }
}

impl Body for ReshareDeal {
    const KIND: &'static str = "custody/reshare-deal";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("reshare_cid", &self.reshare_cid)?;
        check_points("commitments", &self.commitments)
    }
}

/// `custody/reshare-commitment`: new fiduciary -> principal, once its new
/// share is stored: the public share, a proof of knowledge bound to the
/// reshare and to itself, and every dealer's commitments as it got them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshareCommitment {
    /// The reshare answered.
    pub reshare_cid: Cid,
    /// K'_j or S'_j.
    #[serde(with = "serde_bytes")]
    pub share_public_key: [u8; PUBLIC_KEY_LEN],
    /// Proof of knowledge of its discrete log ([`crate::pok`], with the
    /// reshare CID in place of the order CID).
    #[serde(with = "serde_bytes")]
    pub proof: [u8; PROOF_LEN],
    /// The dealers' commitments, in dealer order (t' points each).
    pub dealer_commitments: Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>,
}

impl ReshareCommitment {
    /// New fiduciary `fiduciary`'s report of `share` for reshare `reshare_cid`.
    pub fn new(
        reshare_cid: &Cid,
        fiduciary: &str,
        share: &SecretScalar,
        dealers: &[Commitments],
    ) -> Result<Self> {
        let c = Commitment::new(reshare_cid, fiduciary, share)?;
        Ok(ReshareCommitment {
            reshare_cid: *reshare_cid,
            share_public_key: c.share_public_key,
            proof: c.proof,
            dealer_commitments: encode_dealers(dealers)?,
        })
    }
}

impl ReshareCommitment {
    /// The principal's check on arrival: it answers `reshare`, `fiduciary`
    /// is one of its new fiduciaries, the proof verifies, and there is one
    /// list of t' commitments per dealer with the expected constants.
    /// Returns the fiduciary's new index. (The public share is checked
    /// against everyone's commitments by [`Reshared::verify`].)
    pub fn verify(&self, reshare: &Reshare, fiduciary: &str) -> Result<u32> {
        let cid = reshare.cid()?;
        if self.reshare_cid != cid {
            return Err(Error::InvalidField {
                field: "reshare_cid",
                reason: "answers another reshare",
            });
        }
        let index = reshare.new_index(fiduciary).ok_or(Error::InvalidField {
            field: "fiduciary",
            reason: "not a new fiduciary of this reshare",
        })?;
        Commitment {
            order_cid: cid,
            share_public_key: self.share_public_key,
            proof: self.proof,
            dealer_commitments: None,
        }
        .verify(&cid, fiduciary)?;
        let dealers = decode_dealers(&Some(self.dealer_commitments.clone()))?.unwrap_or_default();
        reshare::check_dealer_constants(
            &dealers,
            &reshare.expected_constants()?,
            reshare.threshold as usize,
        )?;
        Ok(index)
    }
}

impl Body for ReshareCommitment {
    const KIND: &'static str = "custody/reshare-commitment";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("reshare_cid", &self.reshare_cid)?;
        keys::decode_public_key(&self.share_public_key)?;
        pok::Proof::from_bytes(&self.proof)?;
        check_dealer_lists(&self.dealer_commitments, limits)
    }
}

/// `custody/reshared`: principal -> every old and new fiduciary and the
/// beneficiary, once every new fiduciary's commitment verified: the new
/// sharing with everything needed to check it (the reshare, the dealers'
/// commitments, each new fiduciary's public share and proof). Old
/// fiduciaries erase their shares only on a `reshared` that checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reshared {
    /// The reshare completed.
    pub reshare: Reshare,
    /// The dealers' commitments, in dealer order (t' points each).
    pub dealer_commitments: Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>,
    /// K'_j or S'_j, in the new fiduciaries' order.
    pub share_public_keys: Vec<ByteArray<PUBLIC_KEY_LEN>>,
    /// Each new fiduciary's proof of knowledge of its share.
    pub proofs: Vec<ByteArray<PROOF_LEN>>,
}

impl Reshared {
    /// The announcement of `reshare` from the new fiduciaries' `reports`
    /// (in their order), which must all carry the same dealer commitments.
    pub fn assemble(reshare: Reshare, reports: &[ReshareCommitment]) -> Result<Self> {
        let first = reports
            .first()
            .ok_or(Error::NotEnoughShares { have: 0, need: 1 })?;
        if reports
            .iter()
            .any(|r| r.dealer_commitments != first.dealer_commitments)
        {
            return Err(Error::InconsistentDealings);
        }
        Ok(Reshared {
            dealer_commitments: first.dealer_commitments.clone(),
            share_public_keys: reports
                .iter()
                .map(|r| ByteArray::new(r.share_public_key))
                .collect(),
            proofs: reports.iter().map(|r| ByteArray::new(r.proof)).collect(),
            reshare,
        })
    }

    /// The new sharing, after every check: each proof (bound to the reshare
    /// and to its fiduciary), each dealer's constant, each public share.
    pub fn verify(&self) -> Result<Sharing> {
        let reshare_cid = self.reshare.cid()?.to_bytes();
        if self.share_public_keys.len() != self.reshare.fiduciaries.len()
            || self.proofs.len() != self.reshare.fiduciaries.len()
        {
            return Err(Error::InvalidField {
                field: "share_public_keys",
                reason: "one public share and one proof per new fiduciary expected",
            });
        }
        let mut publics = Vec::with_capacity(self.proofs.len());
        for ((fiduciary, public), proof) in self
            .reshare
            .fiduciaries
            .iter()
            .zip(&self.share_public_keys)
            .zip(&self.proofs)
        {
            let public = keys::decode_public_key(&public[..])?;
            pok::verify(
                &public,
                &pok::Proof::from_bytes(&proof[..])?,
                &PokContext {
                    order_cid: &reshare_cid,
                    fiduciary,
                },
            )?;
            publics.push(public);
        }
        let dealers = decode_dealers(&Some(self.dealer_commitments.clone()))?.unwrap_or_default();
        reshare::new_sharing(
            self.reshare.fiduciaries.clone(),
            self.reshare.threshold,
            &self.reshare.expected_constants()?,
            &dealers,
            publics,
        )
    }
}

impl Body for Reshared {
    const KIND: &'static str = "custody/reshared";

    fn validate(&self, limits: &Limits) -> Result<()> {
        self.reshare.validate(limits)?;
        check_dealer_lists(&self.dealer_commitments, limits)?;
        check_points("share_public_keys", &self.share_public_keys)
    }
}

/// `custody/reshared-notice`: the same announcement, to the beneficiary.
/// A kind of its own because one plugin consumes each kind, and a node may
/// be a fiduciary and the beneficiary of one wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResharedNotice(pub Reshared);

impl Body for ResharedNotice {
    const KIND: &'static str = "custody/reshared-notice";

    fn validate(&self, limits: &Limits) -> Result<()> {
        self.0.validate(limits)
    }
}

/// `custody/refresh-request`: beneficiary -> the order's principal: asks
/// for a refresh of the wallet's shares (the principal runs it as if its
/// operator had asked; only the order's beneficiary may ask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The order whose wallet is to be refreshed.
    pub order_cid: Cid,
}

impl Body for RefreshRequest {
    const KIND: &'static str = "custody/refresh-request";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)
    }
}

/// 1 to the fiduciary limit lists of equally many (1..=255) valid points
/// (t' may exceed the number of dealers).
fn check_dealer_lists(lists: &[Vec<ByteArray<PUBLIC_KEY_LEN>>], limits: &Limits) -> Result<()> {
    let max = limits.max_fiduciaries.min(MAX_PARTIES);
    if lists.is_empty() || lists.len() > max {
        return Err(Error::InvalidField {
            field: "dealer_commitments",
            reason: "one commitment list per dealer expected",
        });
    }
    for list in lists {
        if list.len() != lists[0].len() {
            return Err(Error::InvalidField {
                field: "dealer_commitments",
                reason: "commitment lists must have t entries",
            });
        }
        check_points("dealer_commitments", list)?;
    }
    Ok(())
}

pub(crate) fn encode_points(commitments: &Commitments) -> Result<Vec<ByteArray<PUBLIC_KEY_LEN>>> {
    Ok(commitments
        .to_bytes()?
        .into_iter()
        .map(ByteArray::new)
        .collect())
}

pub(crate) fn decode_points(points: &[ByteArray<PUBLIC_KEY_LEN>]) -> Result<Commitments> {
    let raw: Vec<[u8; PUBLIC_KEY_LEN]> = points.iter().map(|b| **b).collect();
    Commitments::from_bytes(&raw)
}
