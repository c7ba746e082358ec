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

//! The fiduciaries' answers: commitments (checked on arrival), and for
//! t-of-n orders the joint-Feldman DKG's `dealt` reports and complaints,
//! which name an equivocating or silent dealer and fail the order.

use super::*;

impl Principal {
    /// The first complaint about this order's DKG, if any.
    pub(crate) async fn complaint(
        &self,
        record: &OrderRecord,
    ) -> Result<Option<ComplaintRecord>, Error> {
        self.host
            .store()
            .get_json(format!("{COMPLAINT_PREFIX}{}", record.order_cid))
            .await
    }

    /// A t-of-n dealer whose commitments sent to the principal differ from
    /// those the fiduciaries report having received from it.
    pub(crate) async fn equivocating_dealer(
        &self,
        record: &OrderRecord,
        verified: &[VerifiedCommitment],
    ) -> Result<Option<String>, Error> {
        let Some(reported) = verified.first().and_then(|v| v.dealers.as_ref()) else {
            return Ok(None);
        };
        let store = self.host.store();
        for (i, dealer) in record.order.fiduciaries.iter().enumerate() {
            let key = format!("{DEALT_PREFIX}{}/{:03}", record.order_cid, i + 1);
            if let Some(points) = store.get_json::<Vec<String>>(&key).await?
                && common::points_from_hex(&points)? != reported[i]
            {
                return Ok(Some(dealer.clone()));
            }
        }
        Ok(None)
    }

    /// The 504 for fiduciaries that have not committed, telling those that
    /// never answered from those (t-of-n) that dealt and wait for the DKG.
    pub(crate) async fn silent_error(
        &self,
        record: &OrderRecord,
        silent: &[String],
    ) -> Result<Error, Error> {
        let store = self.host.store();
        let mut mute = Vec::new();
        let mut dealt = Vec::new();
        for id in silent {
            let index = record.order.fiduciary_index(id).unwrap_or_default();
            let key = format!("{DEALT_PREFIX}{}/{index:03}", record.order_cid);
            match store.get(key.as_bytes()).await? {
                Some(_) => dealt.push(id.clone()),
                None => mute.push(id.clone()),
            }
        }
        let mut parts = Vec::new();
        if !mute.is_empty() {
            parts.push(format!("fiduciaries {} did not answer", mute.join(", ")));
        }
        if !dealt.is_empty() {
            parts.push(format!(
                "fiduciaries {} dealt but are still waiting for the other fiduciaries' DKG deals",
                dealt.join(", ")
            ));
        }
        Ok(Error::timeout(format!(
            "{} within {} ms; POST the same order again to retry",
            parts.join("; "),
            self.reply_timeout.as_millis()
        )))
    }

    /// Records a dealer's commitments as it announced them (t-of-n).
    pub(crate) async fn on_dealt(&self, envelope: &Envelope) -> Result<Result<(), String>, Error> {
        let dealt: Dealt = match common::open(envelope) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        let order_cid = dealt.order_cid.to_string();
        let Some((_, index)) = self.order_of(&order_cid, &envelope.sender).await? else {
            return Ok(Err(NOT_OURS.into()));
        };
        let key = format!("{DEALT_PREFIX}{order_cid}/{index:03}");
        let store = self.host.store();
        if store.get(key.as_bytes()).await?.is_none() {
            let commitments = dealt.commitments().map_err(common::custody_error)?;
            store
                .put_json(&key, &common::hex_points(&commitments)?)
                .await?;
        }
        Ok(Ok(()))
    }

    /// Records a fiduciary's complaint about a dealer (t-of-n).
    pub(crate) async fn on_complaint(
        &self,
        envelope: &Envelope,
    ) -> Result<Result<(), String>, Error> {
        let complaint: Complaint = match common::open(envelope) {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let order_cid = complaint.order_cid.to_string();
        let Some((record, _)) = self.order_of(&order_cid, &envelope.sender).await? else {
            return Ok(Err(NOT_OURS.into()));
        };
        if record.order.fiduciary_index(&complaint.dealer).is_none() {
            return Ok(Err(
                "the accused dealer is not a fiduciary of the order".into()
            ));
        }
        let key = format!("{COMPLAINT_PREFIX}{order_cid}");
        let store = self.host.store();
        if store.get(key.as_bytes()).await?.is_none() {
            self.host.warn(format!(
                "order {}: fiduciary {} complains that fiduciary {} dealt a bad share",
                record.order.reference, envelope.sender, complaint.dealer
            ));
            let c = ComplaintRecord {
                by: envelope.sender.clone(),
                dealer: complaint.dealer,
                complaint_cid: envelope.cid.clone(),
            };
            store.put_json(&key, &c).await?;
        }
        Ok(Ok(()))
    }

    /// Checks a fiduciary's commitment as it arrives and records the result.
    pub(crate) async fn on_commitment(
        &self,
        envelope: &Envelope,
    ) -> Result<Result<(), String>, Error> {
        let commitment: Commitment = match common::open(envelope) {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let order_cid = commitment.order_cid.to_string();
        let store = self.host.store();
        let Some((record, index)) = self.order_of(&order_cid, &envelope.sender).await? else {
            return Ok(Err(NOT_OURS.into()));
        };
        let key = commitment_key(&order_cid, index);
        if let Some(CommitmentState {
            share_public_key: Some(_),
            ..
        }) = store.get_json::<CommitmentState>(&key).await?
        {
            return Ok(Ok(()));
        }
        let state = match milagro_custody::verify::verify_commitment(
            &record.order,
            &envelope.sender,
            &commitment,
        ) {
            Ok(v) => CommitmentState {
                commitment_cid: envelope.cid.clone(),
                share_public_key: Some(hex::encode(keys::encode_public_key(&v.share_public_key))),
                error: None,
                dealers: v
                    .dealers
                    .as_ref()
                    .map(|d| {
                        d.iter()
                            .map(common::hex_points)
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?,
            },
            Err(e) => CommitmentState {
                commitment_cid: envelope.cid.clone(),
                share_public_key: None,
                error: Some(e.to_string()),
                dealers: None,
            },
        };
        // Volatile: the commitment envelope itself is durable in the inbox
        // and, should a crash lose this record, it loses the inbox's later
        // "processed" mark too (volatile writes keep a prefix), so the
        // envelope is processed again. The order's durable `ready` save
        // comes after this and keeps it.
        store
            .write_volatile(vec![Write::put_json(&key, &state)?])
            .await?;
        Ok(match state.error {
            None => Ok(()),
            Some(e) => Err(format!("invalid commitment: {e}")),
        })
    }
}
