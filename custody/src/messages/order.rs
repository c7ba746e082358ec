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

//! `custody/order`: principal -> each fiduciary.

use super::*;

/// `custody/order`: principal -> each fiduciary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The principal's reference for this order (unique per principal).
    pub reference: String,
    /// The wallet's coin.
    pub coin: Coin,
    /// The principal's node ID.
    pub principal: String,
    /// The beneficiary's node ID (the principal's own when none was named).
    pub beneficiary: String,
    /// The fiduciaries' node IDs, distinct; position j-1 is fiduciary j.
    pub fiduciaries: Vec<String>,
    /// t: how many fiduciaries' releases rebuild the key (t = n: additive n-of-n).
    pub threshold: u32,
}

pub(crate) fn check_dealer_commitments(
    field: &'static str,
    dealers: &Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
    parties: usize,
    threshold: Option<usize>,
) -> Result<()> {
    let Some(dealers) = dealers else {
        return Ok(());
    };
    if dealers.len() != parties {
        return Err(Error::InvalidField {
            field,
            reason: "one commitment list per fiduciary expected",
        });
    }
    let t = dealers.first().map(Vec::len).unwrap_or(0);
    if t == 0 || t > parties || threshold.is_some_and(|want| want != t) {
        return Err(Error::InvalidField {
            field,
            reason: "commitment lists must have t entries",
        });
    }
    for list in dealers {
        if list.len() != t {
            return Err(Error::InvalidField {
                field,
                reason: "commitment lists must have t entries",
            });
        }
        for point in list {
            keys::decode_public_key(&point[..])?;
        }
    }
    Ok(())
}

impl Body for Order {
    const KIND: &'static str = "custody/order";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_text("reference", &self.reference, limits)?;
        check_node_id("principal", &self.principal)?;
        check_node_id("beneficiary", &self.beneficiary)?;
        check_fiduciaries(&self.fiduciaries, self.threshold, limits)
    }
}

/// [`Order::principal_holds_beneficiary_key`] from an order's parts.
pub fn principal_holds_beneficiary_key(principal: &str, beneficiary: &str, coin: Coin) -> bool {
    beneficiary == principal && !coin.is_taproot()
}

impl Order {
    /// Whether B is a per-order key the principal draws and keeps (and
    /// releases at redemption, possibly to a new beneficiary): when the
    /// order names no other beneficiary, except for Taproot wallets, whose
    /// beneficiary signs with its published key and so is fixed for good
    /// (`docs/custody.md` §10, §12).
    pub fn principal_holds_beneficiary_key(&self) -> bool {
        principal_holds_beneficiary_key(&self.principal, &self.beneficiary, self.coin)
    }

    /// The order's CID ([`order_cid`]).
    pub fn cid(&self) -> Result<Cid> {
        order_cid(self)
    }

    /// Is this a t-of-n (DKG) order, i.e. t < n?
    pub fn is_threshold(&self) -> bool {
        (self.threshold as usize) < self.fiduciaries.len()
    }

    /// The 1-based index of a fiduciary in this order.
    pub fn fiduciary_index(&self, id: &str) -> Option<u32> {
        self.fiduciaries
            .iter()
            .position(|f| f == id)
            .map(|p| p as u32 + 1)
    }
}
