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

//! The REST view of an order: status, address, each fiduciary's state and
//! every envelope CID.

use super::*;

impl Principal {
    /// `GET /orders`: a page of orders.
    pub(crate) async fn list_orders(&self, request: &Request) -> Result<Response, Error> {
        let page = self
            .host
            .store()
            .page(ORDER_PREFIX.as_bytes(), request)
            .await?;
        let records: Vec<OrderRecord> = page.records()?;
        let mut orders = Vec::with_capacity(records.len());
        for record in &records {
            orders.push(self.view(record).await?);
        }
        Response::json(
            200,
            &json!({"orders": orders, "next_cursor": page.next_cursor}),
        )
    }

    /// `GET /orders/{reference}`: one order.
    pub(crate) async fn get_order(&self, request: &Request) -> Result<Response, Error> {
        let record = self.record(reference_param(request)?).await?;
        Response::json(200, &self.view(&record).await?)
    }

    /// The REST view of an order.
    pub(crate) async fn view(&self, record: &OrderRecord) -> Result<Value, Error> {
        let states = self.commitment_states(record).await?;
        let store = self.host.store();
        let mut dealt = Vec::with_capacity(states.len());
        for index in 1..=states.len() {
            let key = format!("{DEALT_PREFIX}{}/{index:03}", record.order_cid);
            dealt.push(store.get(key.as_bytes()).await?.is_some());
        }
        let fiduciaries: Vec<Value> = record
            .order
            .fiduciaries
            .iter()
            .zip(&states)
            .zip(&dealt)
            .map(|((id, state), &dealt)| {
                let status = match state {
                    // t-of-n: dealt its shares, waiting for the others' deals.
                    None if dealt => "dealt",
                    None => "waiting",
                    Some(CommitmentState { error: Some(_), .. }) => "invalid",
                    Some(_) => "committed",
                };
                json!({
                    "id": id,
                    "status": status,
                    "share_public_key": state.as_ref().and_then(|s| s.share_public_key.clone()),
                    "commitment_cid": state.as_ref().map(|s| s.commitment_cid.clone()),
                    "error": state.as_ref().and_then(|s| s.error.clone()),
                })
            })
            .collect();
        let commitments: Vec<&String> =
            states.iter().flatten().map(|s| &s.commitment_cid).collect();
        Ok(json!({
            "reference": record.order.reference,
            "coin": record.order.coin.as_str(),
            "status": record.status,
            "address": record.address,
            "legacy_address": record.legacy_address,
            "public_key": record.public_key,
            "order_cid": record.order_cid,
            "principal": record.order.principal,
            "beneficiary": record.order.beneficiary,
            "threshold": record.order.threshold,
            "created_at": record.created_at,
            "fiduciaries": fiduciaries,
            "redeemed_to": record.redeemed_to,
            "error": record.error,
            "epoch": record.epoch,
            "sharing": record.sharing.as_ref().map(|s| json!({
                "fiduciaries": s.fiduciaries,
                "threshold": s.threshold,
                "share_public_keys": s.share_public_keys,
            })),
            "reshare": record.reshare.as_ref().map(|r| json!({
                "reshare_cid": r.reshare_cid,
                "envelopes": r.envelope_cids,
            })),
            "reshare_error": record.reshare_error,
            "envelopes": {
                "orders": record.order_envelopes.iter().flatten().collect::<Vec<_>>(),
                "commitments": commitments,
                "notices": record.notice_cids,
                "redeems": record.redeem_cids,
                "releases": record.release_cids,
                "reshared": record.sharing.as_ref().map(|s| &s.reshared_cids),
            },
        }))
    }
}
