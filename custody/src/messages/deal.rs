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

//! The t-of-n joint-Feldman DKG between fiduciaries: `custody/deal` (a
//! share for one fiduciary), `custody/dealt` (what a fiduciary received) and
//! `custody/complaint` (a dealer whose share failed its commitments).

use super::*;

/// `custody/dkg-deal`: fiduciary i -> fiduciary j (t-of-n), sealed to j
/// only: dealer i's Feldman commitments and its share f_i(j). `Debug` does
/// not print the share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deal {
    /// The order.
    pub order_cid: Cid,
    /// C_i0..C_i,t-1, compressed points.
    pub commitments: Vec<ByteArray<PUBLIC_KEY_LEN>>,
    /// f_i(j): secret.
    #[serde(with = "secret_scalar_bytes")]
    pub share: SecretScalar,
}

impl std::fmt::Debug for Deal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deal")
            .field("order_cid", &self.order_cid.to_string())
            .field("t", &self.commitments.len())
            .finish_non_exhaustive()
    }
}

impl Deal {
    /// Dealer `commitments` and the share for party `index`.
    pub fn new(order_cid: &Cid, commitments: &Commitments, share: &Share) -> Result<Self> {
        Ok(Deal {
            order_cid: *order_cid,
            commitments: encode_points(commitments)?,
            share: SecretScalar::from_scalar(*share.value())?,
        })
    }

    /// The commitments, decoded.
    pub fn commitments(&self) -> Result<Commitments> {
        decode_points(&self.commitments)
    }
}

/// `custody/dkg-dealt`: fiduciary -> principal (t-of-n), as soon as it has
/// dealt: its Feldman commitments. Tells the principal who is taking part,
/// and lets it check that each dealer showed everyone the same commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dealt {
    /// The order.
    pub order_cid: Cid,
    /// C_i0..C_i,t-1, compressed points.
    pub commitments: Vec<ByteArray<PUBLIC_KEY_LEN>>,
}

impl Dealt {
    /// A dealer's announcement of its `commitments`.
    pub fn new(order_cid: &Cid, commitments: &Commitments) -> Result<Self> {
        Ok(Dealt {
            order_cid: *order_cid,
            commitments: encode_points(commitments)?,
        })
    }

    /// The commitments, decoded.
    pub fn commitments(&self) -> Result<Commitments> {
        decode_points(&self.commitments)
    }
}

/// `custody/dkg-complaint`: fiduciary -> the other fiduciaries and the
/// principal (t-of-n): the share `dealer` sent does not match its
/// commitments. The order fails naming the dealer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complaint {
    /// The order.
    pub order_cid: Cid,
    /// The faulty dealer's node ID.
    pub dealer: String,
}

impl Body for Deal {
    const KIND: &'static str = "custody/dkg-deal";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_points("commitments", &self.commitments)
    }
}

impl Body for Dealt {
    const KIND: &'static str = "custody/dkg-dealt";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_points("commitments", &self.commitments)
    }
}

impl Body for Complaint {
    const KIND: &'static str = "custody/dkg-complaint";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_node_id("dealer", &self.dealer).map(|_| ())
    }
}
