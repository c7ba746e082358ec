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

//! What the principal keeps about an order: the record and its store keys,
//! the commitments and complaints as they arrived, and the lookups by
//! reference and by order CID. Nothing here is secret.

use super::*;

pub(crate) const ORDER_PREFIX: &str = "order/";
pub(crate) const BY_CID_PREFIX: &str = "by-cid/";
pub(crate) const COMMITMENT_PREFIX: &str = "commitment/";
pub(crate) const DEALT_PREFIX: &str = "dealt/";
pub(crate) const COMPLAINT_PREFIX: &str = "complaint/";
pub(crate) const RESHARE_BY_CID_PREFIX: &str = "reshare-by-cid/";
pub(crate) const RESHARE_COMMITMENT_PREFIX: &str = "reshare-commitment/";
/// Why a custody message about an unknown order (or from a stranger) is refused.
pub(crate) const NOT_OURS: &str =
    "no such order from this node, or the sender is not one of its fiduciaries";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Recorded; waiting for commitments (or the notice): POST again to retry.
    Pending,
    /// A fiduciary's commitment did not verify: the order is dead.
    Failed,
    /// The wallet exists and the beneficiary was told.
    Ready,
    /// Redemption asked of the fiduciaries.
    Redeeming,
}

/// What the principal keeps about one order (nothing secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrderRecord {
    pub(crate) order: Order,
    pub(crate) order_cid: String,
    pub(crate) created_at: u64,
    pub(crate) status: Status,
    /// B, compressed, hex.
    pub(crate) beneficiary_key: String,
    /// Whether B is a per-order key held here (the principal is the beneficiary).
    pub(crate) own_beneficiary_key: bool,
    /// The order envelopes sent, per fiduciary (in the order's order).
    pub(crate) order_envelopes: Vec<Vec<String>>,
    pub(crate) public_key: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) legacy_address: Option<String>,
    pub(crate) notice_cids: Vec<String>,
    pub(crate) error: Option<String>,
    pub(crate) redeemed_to: Option<String>,
    pub(crate) redeem_cids: Vec<String>,
    pub(crate) release_cids: Vec<String>,
    /// The sharing in force: 0 is the order's own, each reshare adds one.
    #[serde(default)]
    pub(crate) epoch: u32,
    /// The sharing in force after a reshare (none: the order's own).
    #[serde(default)]
    pub(crate) sharing: Option<SharingRecord>,
    /// A reshare in progress.
    #[serde(default)]
    pub(crate) reshare: Option<ReshareState>,
    /// Why the last reshare failed (the sharing in force is unchanged).
    #[serde(default)]
    pub(crate) reshare_error: Option<String>,
}

/// The public side of a sharing taken in a reshare.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SharingRecord {
    pub(crate) fiduciaries: Vec<String>,
    pub(crate) threshold: u32,
    /// K_i or S_j, hex.
    pub(crate) share_public_keys: Vec<String>,
    /// Shamir only: the sharing polynomial's commitments, hex.
    pub(crate) commitments: Option<Vec<String>>,
    /// The canonical `custody/reshared` body that announced it, hex.
    pub(crate) reshared: String,
    /// Its envelopes.
    pub(crate) reshared_cids: Vec<String>,
}

/// A reshare sent and waiting for the new fiduciaries' reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReshareState {
    /// The canonical `custody/reshare` body, hex.
    pub(crate) body: String,
    pub(crate) reshare_cid: String,
    pub(crate) envelope_cids: Vec<String>,
}

/// One fiduciary's commitment as checked on arrival.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CommitmentState {
    pub(crate) commitment_cid: String,
    /// K_i, hex, when the commitment verified.
    pub(crate) share_public_key: Option<String>,
    /// Why it did not verify.
    pub(crate) error: Option<String>,
    /// t-of-n: every dealer's commitments as this fiduciary reported them (hex).
    #[serde(default)]
    pub(crate) dealers: Option<Vec<Vec<String>>>,
}

/// A fiduciary's complaint about a dealer (t-of-n): the order fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ComplaintRecord {
    pub(crate) by: String,
    pub(crate) dealer: String,
    pub(crate) complaint_cid: String,
}

/// Keystore label of the per-order beneficiary key.
pub(crate) fn own_key_label(order_cid: &str) -> String {
    format!("beneficiary-key/{order_cid}")
}

pub(crate) fn commitment_key(order_cid: &str, index: u32) -> String {
    format!("{COMMITMENT_PREFIX}{order_cid}/{index:03}")
}

/// The write that stores `record`.
pub(crate) fn record_write(record: &OrderRecord) -> Result<Write, Error> {
    Ok(Write::put_json(
        format!("{ORDER_PREFIX}{}", record.order.reference),
        record,
    )?)
}

pub(crate) fn decode_dealers(dealers: &[Vec<String>]) -> Result<Vec<Commitments>, Error> {
    dealers.iter().map(|d| common::points_from_hex(d)).collect()
}

pub(crate) fn decode_key(hex_key: &str) -> Result<PublicKey, Error> {
    let bytes = hex::decode(hex_key).map_err(|_| Error::internal("a stored key is not hex"))?;
    keys::decode_public_key(&bytes).map_err(common::custody_error)
}

pub(crate) fn parse_cid(text: &str) -> Result<milagro_custody::messages::Cid, Error> {
    milagro_custody::messages::Cid::try_from(text)
        .map_err(|e| Error::internal(format!("a stored CID is invalid: {e}")))
}

impl Principal {
    pub(crate) async fn record(&self, reference: &str) -> Result<OrderRecord, Error> {
        self.host
            .store()
            .get_json(format!("{ORDER_PREFIX}{reference}"))
            .await?
            .ok_or_else(|| Error::not_found(format!("no order with reference {reference:?}")))
    }

    pub(crate) async fn save(&self, record: &OrderRecord) -> Result<(), Error> {
        self.host.store().write(vec![record_write(record)?]).await
    }

    /// The order with CID `order_cid` and the 1-based index of fiduciary
    /// `sender` in it, if both exist.
    pub(crate) async fn order_of(
        &self,
        order_cid: &str,
        sender: &str,
    ) -> Result<Option<(OrderRecord, u32)>, Error> {
        let store = self.host.store();
        let Some(reference) = store
            .get_json::<String>(format!("{BY_CID_PREFIX}{order_cid}"))
            .await?
        else {
            return Ok(None);
        };
        let record = self.record(&reference).await?;
        // The sender as the order names it (it may have rotated since).
        let named = self
            .host
            .identity()
            .party_among(&record.order.fiduciaries, sender)
            .await?;
        let index = named.and_then(|named| record.order.fiduciary_index(named));
        Ok(index.map(|index| (record, index)))
    }
}
