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

//! `custody/commitment`: fiduciary -> principal, the share's public key
//! with its proof of knowledge (and, t-of-n, the dealers' commitments).

use super::*;

/// `custody/commitment`: fiduciary -> principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// The order this answers.
    pub order_cid: Cid,
    /// K_i = k_i*G (n-of-n), or the public share S_j = s_j*G (t-of-n).
    #[serde(with = "serde_bytes")]
    pub share_public_key: [u8; PUBLIC_KEY_LEN],
    /// Proof of knowledge of the share's discrete log, bound to the order
    /// and to this fiduciary (R || s, see [`crate::pok`]).
    #[serde(with = "serde_bytes")]
    pub proof: [u8; PROOF_LEN],
    /// t-of-n only: every dealer's Feldman commitments, in the order's
    /// fiduciary order (n lists of t compressed points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealer_commitments: Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
}

impl Body for Commitment {
    const KIND: &'static str = "custody/commitment";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        keys::decode_public_key(&self.share_public_key)?;
        pok::Proof::from_bytes(&self.proof)?;
        let parties = self.dealer_commitments.as_ref().map_or(0, Vec::len);
        if parties > limits.max_fiduciaries.min(MAX_PARTIES) {
            return Err(Error::Oversize {
                what: "dealer_commitments",
                limit: limits.max_fiduciaries.min(MAX_PARTIES),
                actual: parties,
            });
        }
        check_dealer_commitments(
            "dealer_commitments",
            &self.dealer_commitments,
            parties,
            None,
        )
    }
}

impl Commitment {
    /// A fiduciary's commitment to `share` for the order `order_cid`, with a
    /// proof of knowledge bound to the order and to `fiduciary` (its node ID).
    pub fn new(order_cid: &Cid, fiduciary: &str, share: &SecretScalar) -> Result<Self> {
        let cid_bytes = order_cid.to_bytes();
        let proof = pok::prove(
            share,
            &PokContext {
                order_cid: &cid_bytes,
                fiduciary,
            },
        )?;
        Ok(Commitment {
            order_cid: *order_cid,
            share_public_key: keys::encode_public_key(&share.public_key()),
            proof: proof.to_bytes(),
            dealer_commitments: None,
        })
    }

    /// The principal's check: the commitment answers `order_cid` and its
    /// proof verifies for `fiduciary`. Returns the share public key.
    pub fn verify(&self, order_cid: &Cid, fiduciary: &str) -> Result<PublicKey> {
        if self.order_cid != *order_cid {
            return Err(Error::InvalidField {
                field: "order_cid",
                reason: "commitment answers another order",
            });
        }
        let cid_bytes = order_cid.to_bytes();
        let public = keys::decode_public_key(&self.share_public_key)?;
        let proof = pok::Proof::from_bytes(&self.proof)?;
        pok::verify(
            &public,
            &proof,
            &PokContext {
                order_cid: &cid_bytes,
                fiduciary,
            },
        )?;
        Ok(public)
    }
}

impl Commitment {
    /// t-of-n: fiduciary `fiduciary`'s report after the DKG: its public
    /// share S_j, a proof of knowledge of s_j, and every dealer's commitments
    /// (in the order's fiduciary order).
    pub fn new_threshold(
        order_cid: &Cid,
        fiduciary: &str,
        share: &Share,
        dealers: &[Commitments],
    ) -> Result<Self> {
        let secret = SecretScalar::from_scalar(*share.value())?;
        let mut c = Self::new(order_cid, fiduciary, &secret)?;
        c.dealer_commitments = Some(encode_dealers(dealers)?);
        Ok(c)
    }

    /// The dealers' commitments, decoded (`None` in the n-of-n mode).
    pub fn dealers(&self) -> Result<Option<Vec<Commitments>>> {
        decode_dealers(&self.dealer_commitments)
    }
}

pub(crate) fn encode_dealers(
    dealers: &[Commitments],
) -> Result<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>> {
    dealers
        .iter()
        .map(|d| Ok(d.to_bytes()?.into_iter().map(ByteArray::new).collect()))
        .collect()
}

pub(crate) fn decode_dealers(
    dealers: &Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
) -> Result<Option<Vec<Commitments>>> {
    dealers
        .as_ref()
        .map(|all| {
            all.iter()
                .map(|list| {
                    let raw: Vec<[u8; PUBLIC_KEY_LEN]> = list.iter().map(|b| **b).collect();
                    Commitments::from_bytes(&raw)
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()
}
