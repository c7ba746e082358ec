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

//! The custody-principal plugin: orders a wallet from independent
//! fiduciaries for a beneficiary, and later asks them to release it (see
//! `docs/custody.md`).
//!
//! `POST /orders` sends `custody/order` to every fiduciary, waits for their
//! commitments (checked as they arrive by [`Principal::on_commitment`]),
//! computes P = B + ΣK_i and the address, and tells the beneficiary
//! (`custody/notice`). The order is recorded before anything is sent, so a
//! timeout or a crash leaves it retryable under the same reference; a
//! repeated reference returns the same order, never a second wallet.
//!
//! When the principal is its own beneficiary, B is a fresh key drawn for the
//! order and kept in this node's keystore: at redemption it is released
//! (sealed) to whoever receives the wallet, which reveals nothing about any
//! other wallet.
//!
//! Layout, along the fiduciary's lines: this file holds the plugin (config,
//! routes, dispatch) and the imports its modules share (`use super::*`);
//! - `record`: the order record, its store keys and lookups
//! - `order`: `POST /orders`, from recording the order to the notice
//! - `dkg`: the fiduciaries' commitments, and t-of-n deals and complaints
//! - `redeem`: `POST /orders/{reference}/redeem`
//! - `reshare`: `POST /orders/{reference}/refresh` and `/reshare`
//! - `view`: the REST view of an order

#![forbid(unsafe_code)]

use std::time::Duration;

use futures::future::join_all;
use milagro_custody::feldman::Commitments;
use milagro_custody::messages::{
    Commitment, Complaint, Dealt, Notice, NoticeFiduciary, Order, Redeem, RefreshRequest, Release,
    ReshareCommitment,
};
use milagro_custody::verify::VerifiedCommitment;
use milagro_custody::{Coin, PublicKey, SecretScalar, keys, messages::Body};
use milagro_custody_common::{self as common, Locks};
use milagro_plugin_api::{
    Envelope, Error, ErrorCode, Host, Plugin, Request, Response, Route, Write,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod dkg;
mod order;
mod record;
mod redeem;
mod reshare;
mod view;

use record::*;

/// Most fiduciaries in one order.
pub const MAX_FIDUCIARIES: usize = 32;

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How long `POST /orders` waits for the fiduciaries' commitments (and
    /// for identities to resolve) before answering 504.
    #[serde(default = "default_reply_timeout_ms")]
    pub reply_timeout_ms: u64,
}

fn default_reply_timeout_ms() -> u64 {
    20_000
}

pub struct Principal {
    host: Host,
    reply_timeout: Duration,
    locks: Locks,
}

impl Plugin for Principal {
    type Config = Config;
    const NAME: &'static str = "custody-principal";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        if config.reply_timeout_ms == 0 {
            return Err(Error::bad_request("reply_timeout_ms must be positive"));
        }
        Ok(Principal {
            host,
            reply_timeout: Duration::from_millis(config.reply_timeout_ms),
            locks: Locks::default(),
        })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        let text = json!({"type": "string"});
        let order = json!({"type": "object", "properties": {
            "reference": text, "coin": text, "status": text, "address": {"type": "string", "nullable": true},
            "legacy_address": {"type": "string", "nullable": true},
            "public_key": {"type": "string", "nullable": true}, "order_cid": text,
            "beneficiary": text, "created_at": {"type": "integer"},
            "fiduciaries": {"type": "array", "items": {"type": "object"}},
            "envelopes": {"type": "object"}, "error": {"type": "string", "nullable": true}}});
        vec![
            Route::post("/orders", "create_order", |p: &Self, r| Box::pin(p.create_order(r)))
                .summary("Order a wallet from fiduciaries for a beneficiary")
                .json_body(json!({"type": "object", "required": ["fiduciaries", "coin"],
                    "properties": {
                        "fiduciaries": {"type": "array", "items": text, "minItems": 1, "maxItems": MAX_FIDUCIARIES},
                        "beneficiary": text,
                        "coin": {"type": "string", "enum": ["btc", "btc-testnet", "eth"]},
                        "reference": text,
                        "threshold": {"type": "integer", "minimum": 1}}}))
                .response(201, "The wallet", Some(order.clone()))
                .response(200, "The existing order with this reference", Some(order.clone()))
                .response(400, "Bad input", None)
                .response(404, "A fiduciary or the beneficiary does not resolve", None)
                .response(409, "The reference is used by a different order", None)
                .response(422, "Unusable input, or a fiduciary's commitment does not verify (named)", None)
                .response(504, "Fiduciaries (named) did not answer in time; POST again to retry", None),
            Route::get("/orders", "list_orders", |p: &Self, r| Box::pin(p.list_orders(r)))
                .summary("Orders, by reference")
                .paged()
                .response(200, "A page of orders", Some(json!({"type": "object", "properties": {
                    "orders": {"type": "array", "items": order.clone()},
                    "next_cursor": {"type": "string", "nullable": true}}})))
                ,
            Route::get("/refusals", "refusals", |p: &Self, r| Box::pin(common::refusals(&p.host, r)))
                .summary("Commitments and reshare reports refused, and why")
                .paged()
                .response(200, "A page of refusals", Some(json!({"type": "object"})))
                ,
            Route::get("/orders/{reference}", "get_order", |p: &Self, r| Box::pin(p.get_order(r)))
                .summary("One order: status and every envelope CID")
                .response(200, "The order", Some(order.clone()))
                .response(404, "No such order", None),
            Route::post("/orders/{reference}/refresh", "refresh", |p: &Self, r| Box::pin(p.refresh(r)))
                .summary("Refresh the fiduciaries' shares: same fiduciaries, threshold, key and address; the old shares become useless")
                .json_body(json!({"type": "object", "properties": {
                    "dealers": {"type": "array", "items": text, "description": "The fiduciaries that deal (default: all; at least t)"}}}))
                .response(200, "The order with its new sharing", Some(order.clone()))
                .response(400, "Bad input", None)
                .response(404, "No such order", None)
                .response(409, "The order is not ready, or another reshare is in progress", None)
                .response(422, "A fiduciary's report does not verify (named): the reshare is abandoned, the old sharing stays", None)
                .response(504, "Fiduciaries (named) did not report in time; POST again to finish", None),
            Route::post("/orders/{reference}/reshare", "reshare", |p: &Self, r| Box::pin(p.reshare(r)))
                .summary("Move the wallet to another set of fiduciaries and threshold, same key and address; departing fiduciaries' shares become useless")
                .json_body(json!({"type": "object", "required": ["fiduciaries"], "properties": {
                    "fiduciaries": {"type": "array", "items": text, "minItems": 1, "maxItems": MAX_FIDUCIARIES},
                    "threshold": {"type": "integer", "minimum": 1},
                    "dealers": {"type": "array", "items": text, "description": "The current fiduciaries that deal (default: all; at least t)"}}}))
                .response(200, "The order with its new sharing", Some(order.clone()))
                .response(400, "Bad input", None)
                .response(404, "No such order, or a new fiduciary does not resolve", None)
                .response(409, "The order is not ready, or another reshare is in progress", None)
                .response(422, "A fiduciary's report does not verify (named): the reshare is abandoned, the old sharing stays", None)
                .response(504, "Fiduciaries (named) did not report in time; POST again to finish", None),
            Route::post("/orders/{reference}/redeem", "redeem", |p: &Self, r| Box::pin(p.redeem(r)))
                .summary("Ask the fiduciaries to release the wallet to the beneficiary")
                .json_body(json!({"type": "object", "properties": {"beneficiary": text}}))
                .response(202, "Redemption sent", Some(order))
                .response(400, "Bad input", None)
                .response(404, "No such order, or the new beneficiary does not resolve", None)
                .response(409, "The order is not ready, or its beneficiary cannot change", None),
        ]
    }

    fn consumes(&self) -> Vec<String> {
        vec![
            Commitment::KIND.into(),
            Dealt::KIND.into(),
            Complaint::KIND.into(),
            ReshareCommitment::KIND.into(),
            RefreshRequest::KIND.into(),
        ]
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), Error> {
        let outcome = match envelope.kind.as_str() {
            Commitment::KIND => self.on_commitment(&envelope).await?,
            Dealt::KIND => self.on_dealt(&envelope).await?,
            Complaint::KIND => self.on_complaint(&envelope).await?,
            ReshareCommitment::KIND => self.on_reshare_commitment(&envelope).await?,
            RefreshRequest::KIND => self.on_refresh_request(&envelope).await?,
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(reason) => common::refuse(&self.host, &envelope, &reason).await,
        }
    }
}

/// The fiduciaries a request names (1 to [`MAX_FIDUCIARIES`] distinct node
/// IDs) and its threshold (default: all of them); returns the threshold.
fn check_fiduciaries(fiduciaries: &[String], threshold: Option<u32>) -> Result<u32, Error> {
    let n = fiduciaries.len();
    if n == 0 || n > MAX_FIDUCIARIES {
        return Err(Error::bad_request(format!(
            "fiduciaries must list 1 to {MAX_FIDUCIARIES} node IDs"
        )));
    }
    for (i, id) in fiduciaries.iter().enumerate() {
        common::check_node_id("fiduciaries", id)?;
        if fiduciaries[..i].contains(id) {
            return Err(Error::bad_request(format!(
                "fiduciary {id} is listed twice"
            )));
        }
    }
    let threshold = threshold.unwrap_or(n as u32);
    if threshold == 0 || threshold as usize > n {
        return Err(Error::bad_request(format!(
            "threshold must be from 1 to the number of fiduciaries ({n})"
        )));
    }
    Ok(threshold)
}

fn reference_param(request: &Request) -> Result<&str, Error> {
    let reference = request.param("reference").unwrap_or_default();
    common::check_reference(reference)?;
    Ok(reference)
}

fn new_reference() -> Result<String, Error> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(raw))
}

milagro_plugin_api::export_plugin!(Principal);
