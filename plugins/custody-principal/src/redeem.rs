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

//! `POST /orders/{reference}/redeem`: ask every fiduciary to release its
//! share to the beneficiary (or, for an order whose beneficiary key the
//! principal holds, to a new beneficiary, with that key released too).

use super::*;

/// `POST /orders/{reference}/redeem` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    /// A new beneficiary: only for an order whose beneficiary is the principal.
    #[serde(default)]
    beneficiary: Option<String>,
}

impl Principal {
    pub(crate) async fn redeem(&self, request: &Request) -> Result<Response, Error> {
        let reference = reference_param(request)?.to_string();
        let body: RedeemBody = if request.body.is_empty() {
            RedeemBody::default()
        } else {
            request.json()?
        };
        if let Some(b) = &body.beneficiary {
            common::check_node_id("beneficiary", b)?;
        }
        let _guard = self.locks.lock(&reference).await;
        let mut record = self.record(&reference).await?;
        if !matches!(record.status, Status::Ready | Status::Redeeming) {
            return Err(Error::conflict(format!(
                "order {reference:?} is not ready (status {}); POST /orders again to complete it",
                serde_json::to_value(record.status).unwrap_or_default()
            )));
        }
        let target = match (&body.beneficiary, &record.redeemed_to) {
            (Some(b), _) if !record.own_beneficiary_key && *b != record.order.beneficiary => {
                return Err(Error::conflict(format!(
                    "order {reference:?} names its beneficiary {}: it cannot be changed",
                    record.order.beneficiary
                )));
            }
            (Some(b), Some(before)) if b != before => {
                return Err(Error::conflict(format!(
                    "order {reference:?} was already redeemed to {before}: it cannot go to anyone else"
                )));
            }
            (Some(b), _) => b.clone(),
            (None, Some(before)) => before.clone(),
            (None, None) => record.order.beneficiary.clone(),
        };
        if target != record.order.beneficiary {
            self.resolve("beneficiary", &target).await?;
        }
        if record.redeemed_to.is_none() {
            record.redeemed_to = Some(target.clone());
            self.save(&record).await?;
        }
        let states = self.commitment_states(&record).await?;
        let mut links = record.notice_cids.clone();
        if target != record.order.beneficiary {
            let notice_cid = self.notify(&record, &states, &target).await?;
            record.notice_cids.push(notice_cid.clone());
            links = vec![notice_cid];
            if let Some(sharing) = &record.sharing {
                // The new beneficiary learns the sharing in force too.
                let reshared = milagro_custody::messages::ResharedNotice(common::decode_hex(
                    &sharing.reshared,
                )?);
                common::send(&self.host, &reshared, vec![target.clone()], links.clone()).await?;
            }
        }
        let fiduciaries = match &record.sharing {
            Some(sharing) => sharing.fiduciaries.clone(),
            None => record.order.fiduciaries.clone(),
        };
        let order_cid = parse_cid(&record.order_cid)?;
        let redeem = Redeem {
            order_cid,
            reference: reference.clone(),
            new_beneficiary: (target != record.order.beneficiary).then(|| target.clone()),
            epoch: (record.epoch > 0).then_some(record.epoch),
        };
        let sends = fiduciaries
            .iter()
            .map(|f| common::send(&self.host, &redeem, vec![f.clone()], links.clone()));
        let mut undelivered = Vec::new();
        let mut first_error = None;
        for (f, sent) in fiduciaries.iter().zip(join_all(sends).await) {
            match sent {
                Ok(cid) => record.redeem_cids.push(cid),
                Err(e) => {
                    undelivered.push(json!({"id": f, "error": e.message}));
                    first_error.get_or_insert(e);
                }
            }
        }
        // Not one redeem left this node (e.g. its IPFS node is down): that is
        // no 202. The target stays fixed; POSTing again retries.
        let none_sent = undelivered.len() == fiduciaries.len();
        if let (true, Some(e)) = (none_sent, first_error) {
            return Err(e);
        }
        if record.own_beneficiary_key {
            let release = Release {
                order_cid,
                share: self
                    .own_beneficiary_secret(&record.order_cid, false)
                    .await?,
                // Not a share of any sharing, but sent with the epoch its
                // beneficiary takes releases of now.
                epoch: (record.epoch > 0).then_some(record.epoch),
            };
            let cid = common::send(&self.host, &release, vec![target.clone()], links).await?;
            record.release_cids.push(cid);
        }
        record.status = Status::Redeeming;
        self.save(&record).await?;
        let mut view = self.view(&record).await?;
        view["undelivered"] = Value::Array(undelivered);
        Response::json(202, &view)
    }
}
