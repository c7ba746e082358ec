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

//! `custody/notice`: principal -> beneficiary, the wallet and its
//! fiduciaries.

use super::*;

/// One fiduciary in a [`Notice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeFiduciary {
    /// The fiduciary's node ID.
    pub id: String,
    /// Its K_i (or S_j): the beneficiary checks the released share against it.
    #[serde(with = "serde_bytes")]
    pub share_public_key: [u8; PUBLIC_KEY_LEN],
    /// The CID of the envelope carrying its commitment.
    pub commitment_cid: Cid,
}

/// `custody/notice`: principal -> beneficiary, when the wallet exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// The order itself: lets the beneficiary check that the notice comes
    /// from the order's principal and names it (its CID is `order_cid`).
    pub order: Order,
    /// The order's CID.
    pub order_cid: Cid,
    /// The order's reference.
    pub reference: String,
    /// The wallet's coin.
    pub coin: Coin,
    /// The wallet public key P (compressed).
    #[serde(with = "serde_bytes")]
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// The wallet address derived from P for the coin.
    pub address: String,
    /// t.
    pub threshold: u32,
    /// The fiduciaries, in the order's order.
    pub fiduciaries: Vec<NoticeFiduciary>,
    /// t-of-n only: the dealers' Feldman commitments (as in [`Commitment`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealer_commitments: Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
}

impl Notice {
    /// The notice of a t-of-n order, carrying the dealers' commitments.
    pub fn with_dealers(mut self, dealers: &[Commitments]) -> Result<Self> {
        self.dealer_commitments = Some(encode_dealers(dealers)?);
        Ok(self)
    }

    /// The beneficiary's part of the wallet key: B = P - ΣK_i (n-of-n) or
    /// B = P - K (t-of-n, K the DKG group key).
    pub fn beneficiary_public_key(&self) -> Result<PublicKey> {
        let p = keys::decode_public_key(&self.public_key)?;
        let fiduciaries = match decode_dealers(&self.dealer_commitments)? {
            Some(dealers) => feldman::group_key(&dealers)?,
            None => wallet::sum_public_keys(
                &self
                    .fiduciaries
                    .iter()
                    .map(|f| keys::decode_public_key(&f.share_public_key))
                    .collect::<Result<Vec<_>>>()?,
            )?,
        };
        keys::point_to_public_key(&(p.to_projective() - fiduciaries.to_projective()))
    }

    /// The sharing this notice announces (epoch 0: the order's own).
    pub fn sharing(&self) -> Result<Sharing> {
        Ok(Sharing {
            fiduciaries: self.fiduciaries.iter().map(|f| f.id.clone()).collect(),
            threshold: self.threshold,
            share_public_keys: self
                .fiduciaries
                .iter()
                .map(|f| keys::decode_public_key(&f.share_public_key))
                .collect::<Result<_>>()?,
            commitments: decode_dealers(&self.dealer_commitments)?
                .map(|d| Commitments::sum(&d))
                .transpose()?,
        })
    }

    /// The wallet key P.
    pub fn wallet_key(&self) -> Result<PublicKey> {
        keys::decode_public_key(&self.public_key)
    }

    /// The beneficiary's check of a released share from `fiduciary`
    /// ([`Sharing::check_release`] of the order's own sharing).
    pub fn check_release(&self, fiduciary: &str, share: &SecretScalar) -> Result<u32> {
        self.sharing()?.check_release(fiduciary, share)
    }

    /// The beneficiary's rebuild from releases of the order's own sharing
    /// ([`Sharing::rebuild_secret`]).
    pub fn rebuild_secret(
        &self,
        beneficiary: &SecretScalar,
        releases: &[(u32, SecretScalar)],
    ) -> Result<SecretScalar> {
        self.sharing()?
            .rebuild_secret(&self.wallet_key()?, beneficiary, releases)
    }
}

impl Body for Notice {
    const KIND: &'static str = "custody/notice";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_text("reference", &self.reference, limits)?;
        self.order.validate(limits)?;
        let names_order = self.order.cid()? == self.order_cid
            && self.order.reference == self.reference
            && self.order.coin == self.coin
            && self.order.threshold == self.threshold
            && self.order.fiduciaries.len() == self.fiduciaries.len()
            && self
                .order
                .fiduciaries
                .iter()
                .zip(&self.fiduciaries)
                .all(|(o, f)| *o == f.id);
        if !names_order {
            return Err(Error::InvalidField {
                field: "order",
                reason: "does not match the notice (CID, reference, coin, threshold or fiduciaries)",
            });
        }
        let wallet_key = keys::decode_public_key(&self.public_key)?;
        check_text("address", &self.address, limits)?;
        // A wrong address would have the beneficiary (and its operator)
        // receive funds to a key nobody holds shares of.
        if self.coin.address(&wallet_key)? != self.address {
            return Err(Error::InvalidField {
                field: "address",
                reason: "is not the coin's address of the wallet key",
            });
        }
        let n = self.fiduciaries.len();
        check_fiduciary_count(n, limits)?;
        for (pos, f) in self.fiduciaries.iter().enumerate() {
            check_node_id("fiduciaries.id", &f.id)?;
            keys::decode_public_key(&f.share_public_key)?;
            check_order_cid("fiduciaries.commitment_cid", &f.commitment_cid)?;
            if self.fiduciaries[..pos].iter().any(|g| g.id == f.id) {
                return Err(Error::InvalidField {
                    field: "fiduciaries",
                    reason: "duplicate fiduciary",
                });
            }
        }
        if self.threshold == 0 || self.threshold as usize > n {
            return Err(Error::InvalidThreshold {
                threshold: self.threshold as usize,
                parties: n,
            });
        }
        let t = self.threshold as usize;
        match (&self.dealer_commitments, t < n) {
            (None, false) => Ok(()),
            (Some(_), true) => {
                check_dealer_commitments("dealer_commitments", &self.dealer_commitments, n, Some(t))
            }
            _ => Err(Error::InvalidField {
                field: "dealer_commitments",
                reason: "present exactly when t < n",
            }),
        }
    }
}
