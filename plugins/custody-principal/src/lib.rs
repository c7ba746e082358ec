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

#![forbid(unsafe_code)]

use std::time::Duration;

use futures::future::join_all;
use milagro_custody::feldman::Commitments;
use milagro_custody::messages::{
    self, Commitment, Complaint, Dealt, Notice, NoticeFiduciary, Order, Redeem, Release,
    VerifiedCommitment,
};
use milagro_custody::{Coin, PublicKey, SecretScalar, keys, messages::Body};
use milagro_custody_common::{self as common, Locks};
use milagro_plugin_api::{Envelope, Error, ErrorCode, Host, Plugin, Request, Response, Route};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const ORDER_PREFIX: &str = "order/";
const BY_CID_PREFIX: &str = "by-cid/";
const COMMITMENT_PREFIX: &str = "commitment/";
const DEALT_PREFIX: &str = "dealt/";
const COMPLAINT_PREFIX: &str = "complaint/";
/// Why a custody message about an unknown order (or from a stranger) is refused.
const NOT_OURS: &str = "no such order from this node, or the sender is not one of its fiduciaries";
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

/// `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    fiduciaries: Vec<String>,
    #[serde(default)]
    beneficiary: Option<String>,
    coin: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    threshold: Option<u32>,
}

/// `POST /orders/{reference}/redeem` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    /// A new beneficiary: only for an order whose beneficiary is the principal.
    #[serde(default)]
    beneficiary: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
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
struct OrderRecord {
    order: Order,
    order_cid: String,
    created_at: u64,
    status: Status,
    /// B, compressed, hex.
    beneficiary_key: String,
    /// Whether B is a per-order key held here (the principal is the beneficiary).
    own_beneficiary_key: bool,
    /// The order envelopes sent, per fiduciary (in the order's order).
    order_envelopes: Vec<Vec<String>>,
    public_key: Option<String>,
    address: Option<String>,
    legacy_address: Option<String>,
    notice_cids: Vec<String>,
    error: Option<String>,
    redeemed_to: Option<String>,
    redeem_cids: Vec<String>,
    release_cids: Vec<String>,
}

/// One fiduciary's commitment as checked on arrival.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CommitmentState {
    commitment_cid: String,
    /// K_i, hex, when the commitment verified.
    share_public_key: Option<String>,
    /// Why it did not verify.
    error: Option<String>,
    /// t-of-n: every dealer's commitments as this fiduciary reported them (hex).
    #[serde(default)]
    dealers: Option<Vec<Vec<String>>>,
}

/// A fiduciary's complaint about a dealer (t-of-n): the order fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ComplaintRecord {
    by: String,
    dealer: String,
    complaint_cid: String,
}

/// Keystore label of the per-order beneficiary key.
fn own_key_label(order_cid: &str) -> String {
    format!("beneficiary-key/{order_cid}")
}

fn commitment_key(order_cid: &str, index: u32) -> String {
    format!("{COMMITMENT_PREFIX}{order_cid}/{index:03}")
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

    fn routes(&self) -> Vec<Route> {
        let text = json!({"type": "string"});
        let order = json!({"type": "object", "properties": {
            "reference": text, "coin": text, "status": text, "address": {"type": "string", "nullable": true},
            "legacy_address": {"type": "string", "nullable": true},
            "public_key": {"type": "string", "nullable": true}, "order_cid": text,
            "beneficiary": text, "created_at": {"type": "integer"},
            "fiduciaries": {"type": "array", "items": {"type": "object"}},
            "envelopes": {"type": "object"}, "error": {"type": "string", "nullable": true}}});
        vec![
            Route::post("/orders", "create_order")
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
            Route::get("/orders", "list_orders")
                .summary("Orders, by reference")
                .query("limit", "Page size (1-1000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000}))
                .query("cursor", "next_cursor of the previous page", text.clone())
                .response(200, "A page of orders", Some(json!({"type": "object", "properties": {
                    "orders": {"type": "array", "items": order.clone()},
                    "next_cursor": {"type": "string", "nullable": true}}})))
                .response(400, "Bad paging parameters", None),
            Route::get("/orders/{reference}", "get_order")
                .summary("One order: status and every envelope CID")
                .response(200, "The order", Some(order.clone()))
                .response(404, "No such order", None),
            Route::post("/orders/{reference}/redeem", "redeem")
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
        ]
    }

    async fn handle(&self, request: Request) -> Result<Response, Error> {
        match request.operation.as_str() {
            "create_order" => self.create_order(&request).await,
            "list_orders" => {
                let page = self
                    .host
                    .store()
                    .page(ORDER_PREFIX.as_bytes(), &request)
                    .await?;
                let records: Vec<OrderRecord> = common::records(&page.entries)?;
                let mut orders = Vec::with_capacity(records.len());
                for record in &records {
                    orders.push(self.view(record).await?);
                }
                Response::json(
                    200,
                    &json!({"orders": orders, "next_cursor": page.next_cursor}),
                )
            }
            "get_order" => {
                let record = self.record(reference_param(&request)?).await?;
                Response::json(200, &self.view(&record).await?)
            }
            "redeem" => self.redeem(&request).await,
            other => Err(Error::not_found(format!("no operation {other}"))),
        }
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), Error> {
        let outcome = match envelope.kind.as_str() {
            Commitment::KIND => self.on_commitment(&envelope).await?,
            Dealt::KIND => self.on_dealt(&envelope).await?,
            Complaint::KIND => self.on_complaint(&envelope).await?,
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(reason) => common::refuse(&self.host, &envelope, &reason).await,
        }
    }
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

impl Principal {
    async fn record(&self, reference: &str) -> Result<OrderRecord, Error> {
        common::get_json(&self.host.store(), &format!("{ORDER_PREFIX}{reference}"))
            .await?
            .ok_or_else(|| Error::not_found(format!("no order with reference {reference:?}")))
    }

    async fn save(&self, record: &OrderRecord) -> Result<(), Error> {
        self.host.store().write(vec![record_write(record)?]).await
    }

    async fn create_order(&self, request: &Request) -> Result<Response, Error> {
        let body: NewOrder = request.json()?;
        let coin: Coin = body.coin.parse().map_err(|_| {
            Error::bad_request(format!(
                "unknown coin {:?}: expected \"btc\", \"btc-testnet\" or \"eth\"",
                body.coin
            ))
        })?;
        let n = body.fiduciaries.len();
        if n == 0 || n > MAX_FIDUCIARIES {
            return Err(Error::bad_request(format!(
                "fiduciaries must list 1 to {MAX_FIDUCIARIES} node IDs"
            )));
        }
        for (i, id) in body.fiduciaries.iter().enumerate() {
            common::check_node_id("fiduciaries", id)?;
            if body.fiduciaries[..i].contains(id) {
                return Err(Error::bad_request(format!(
                    "fiduciary {id} is listed twice"
                )));
            }
        }
        if let Some(b) = &body.beneficiary {
            common::check_node_id("beneficiary", b)?;
        }
        let threshold = body.threshold.unwrap_or(n as u32);
        if threshold == 0 || threshold as usize > n {
            return Err(Error::bad_request(format!(
                "threshold must be from 1 to the number of fiduciaries ({n})"
            )));
        }
        let reference = match &body.reference {
            Some(r) => {
                common::check_reference(r)?;
                r.clone()
            }
            None => new_reference()?,
        };
        let me = self.host.identity().this_node().await?.id;
        let _guard = self.locks.lock(&reference).await;
        let order = Order {
            reference: reference.clone(),
            coin,
            principal: me.clone(),
            beneficiary: body.beneficiary.clone().unwrap_or_else(|| me.clone()),
            fiduciaries: body.fiduciaries.clone(),
            threshold,
        };
        let existing: Option<OrderRecord> =
            common::get_json(&self.host.store(), &format!("{ORDER_PREFIX}{reference}")).await?;
        let (mut record, created) = match existing {
            Some(record) if record.order != order => {
                return Err(Error::conflict(format!(
                    "reference {reference:?} is already used by order {} with other fiduciaries, beneficiary or coin",
                    record.order_cid
                )));
            }
            Some(record) => (record, false),
            None => (self.new_record(order).await?, true),
        };
        match record.status {
            Status::Failed => Err(Error::unprocessable(
                record
                    .error
                    .clone()
                    .unwrap_or_else(|| "the order failed".into()),
            )),
            Status::Ready | Status::Redeeming => Response::json(200, &self.view(&record).await?),
            Status::Pending => {
                self.complete(&mut record).await?;
                Response::json(if created { 201 } else { 200 }, &self.view(&record).await?)
            }
        }
    }

    /// Checks the parties and records a new order (durably, before any
    /// message leaves).
    async fn new_record(&self, order: Order) -> Result<OrderRecord, Error> {
        let resolutions = join_all(
            order
                .fiduciaries
                .iter()
                .map(|id| self.resolve("fiduciary", id)),
        )
        .await;
        for resolution in resolutions {
            resolution?;
        }
        let order_cid = order.cid().map_err(common::custody_error)?.to_string();
        let own_beneficiary_key = order.beneficiary == order.principal;
        let beneficiary_key = if own_beneficiary_key {
            self.own_beneficiary_key(&order_cid).await?
        } else {
            let identity = self.resolve("beneficiary", &order.beneficiary).await?;
            let key = identity.beneficiary_key.ok_or_else(|| {
                Error::unprocessable(format!(
                    "beneficiary {} publishes no beneficiary key: its node needs [identity] beneficiary = true",
                    order.beneficiary
                ))
            })?;
            keys::decode_public_key(&key).map_err(|_| {
                Error::unprocessable(format!(
                    "beneficiary {} publishes an invalid beneficiary key",
                    order.beneficiary
                ))
            })?
        };
        let record = OrderRecord {
            order_envelopes: vec![Vec::new(); order.fiduciaries.len()],
            order,
            order_cid: order_cid.clone(),
            created_at: self.host.now_unix_ms(),
            status: Status::Pending,
            beneficiary_key: hex::encode(keys::encode_public_key(&beneficiary_key)),
            own_beneficiary_key,
            public_key: None,
            address: None,
            legacy_address: None,
            notice_cids: Vec::new(),
            error: None,
            redeemed_to: None,
            redeem_cids: Vec::new(),
            release_cids: Vec::new(),
        };
        self.host
            .store()
            .write(vec![
                record_write(&record)?,
                common::put_json(
                    &format!("{BY_CID_PREFIX}{order_cid}"),
                    &record.order.reference,
                )?,
            ])
            .await?;
        Ok(record)
    }

    /// The per-order beneficiary key B (drawn and kept on first use).
    async fn own_beneficiary_key(&self, order_cid: &str) -> Result<PublicKey, Error> {
        Ok(self
            .own_beneficiary_secret(order_cid, true)
            .await?
            .public_key())
    }

    async fn own_beneficiary_secret(
        &self,
        order_cid: &str,
        create: bool,
    ) -> Result<SecretScalar, Error> {
        let keystore = self.host.keystore();
        let label = own_key_label(order_cid);
        match keystore.get_secret(&label).await? {
            Some(bytes) => {
                let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    Error::internal("a stored beneficiary key has the wrong length")
                })?;
                SecretScalar::from_bytes(bytes).map_err(common::custody_error)
            }
            None if create => {
                let key = SecretScalar::random().map_err(common::custody_error)?;
                keystore
                    .put_secret(&label, key.to_bytes().as_slice())
                    .await?;
                Ok(key)
            }
            None => Err(Error::internal(format!(
                "the beneficiary key of order {order_cid} is missing"
            ))),
        }
    }

    /// Resolves a party's identity within the reply timeout.
    async fn resolve(&self, role: &str, id: &str) -> Result<milagro_plugin_api::Identity, Error> {
        match self
            .host
            .within(self.reply_timeout, self.host.identity().resolve(id))
            .await
        {
            Some(Ok(identity)) => Ok(identity),
            Some(Err(e)) => Err(match e.code {
                ErrorCode::NotFound | ErrorCode::Unavailable | ErrorCode::Timeout => {
                    Error::not_found(format!("{role} {id} does not resolve: {}", e.message))
                }
                code => Error::new(code, format!("{role} {id}: {}", e.message)),
            }),
            None => Err(Error::not_found(format!(
                "{role} {id} does not resolve: no identity document found within {} ms",
                self.reply_timeout.as_millis()
            ))),
        }
    }

    /// Gets every missing commitment, then the wallet, then tells the
    /// beneficiary. Leaves the record pending (and retryable) on a timeout.
    async fn complete(&self, record: &mut OrderRecord) -> Result<(), Error> {
        let states = self.commitment_states(record).await?;
        let missing: Vec<usize> = (0..states.len()).filter(|&i| states[i].is_none()).collect();
        if !missing.is_empty() {
            // t-of-n: every fiduciary is asked again, since one that already
            // committed deals again to those that may have missed its deal.
            let ask: Vec<usize> = if record.order.is_threshold() {
                (0..states.len()).collect()
            } else {
                missing
            };
            self.ask_commitments(record, &ask).await?;
        }
        if let Some(c) = self.complaint(record).await? {
            return self
                .fail(
                    record,
                    format!(
                        "fiduciary {} reports that fiduciary {} dealt a DKG share that does not match its commitments; the order failed",
                        c.by, c.dealer
                    ),
                )
                .await;
        }
        let states = self.commitment_states(record).await?;
        let mut verified = Vec::new();
        let mut silent = Vec::new();
        for (i, state) in states.iter().enumerate() {
            let id = &record.order.fiduciaries[i];
            match state {
                None => silent.push(id.clone()),
                Some(CommitmentState {
                    error: Some(why), ..
                }) => {
                    return self
                        .fail(
                            record,
                            format!("fiduciary {id} sent an invalid commitment ({why}); the order failed"),
                        )
                        .await;
                }
                Some(CommitmentState {
                    share_public_key: Some(k),
                    dealers,
                    ..
                }) => verified.push(VerifiedCommitment {
                    index: i as u32 + 1,
                    share_public_key: decode_key(k)?,
                    dealers: dealers.as_deref().map(decode_dealers).transpose()?,
                }),
                Some(_) => return Err(Error::internal("a commitment record is inconsistent")),
            }
        }
        if !silent.is_empty() {
            return Err(self.silent_error(record, &silent).await?);
        }
        if let Some(dealer) = self.equivocating_dealer(record, &verified).await? {
            return self
                .fail(
                    record,
                    format!(
                        "fiduciary {dealer} showed the principal other DKG commitments than the fiduciaries; the order failed"
                    ),
                )
                .await;
        }
        let b = decode_key(&record.beneficiary_key)?;
        let p = match messages::wallet_key(&record.order, &b, &verified) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .fail(record, format!("the fiduciaries' commitments do not fit together ({e}); the order failed"))
                    .await;
            }
        };
        record.public_key = Some(hex::encode(keys::encode_public_key(&p)));
        record.address = Some(record.order.coin.address(&p));
        record.legacy_address = record.order.coin.legacy_address(&p);
        let notice_cid = self
            .notify(record, &states, &record.order.beneficiary)
            .await?;
        record.notice_cids.push(notice_cid);
        record.status = Status::Ready;
        self.save(record).await?;
        self.host.info(format!(
            "order {} ({}) ready: wallet {}",
            record.order.reference,
            record.order_cid,
            record.address.as_deref().unwrap_or_default()
        ));
        Ok(())
    }

    async fn commitment_states(
        &self,
        record: &OrderRecord,
    ) -> Result<Vec<Option<CommitmentState>>, Error> {
        let store = self.host.store();
        let mut states = Vec::with_capacity(record.order.fiduciaries.len());
        for index in 1..=record.order.fiduciaries.len() as u32 {
            states.push(common::get_json(&store, &commitment_key(&record.order_cid, index)).await?);
        }
        Ok(states)
    }

    /// Sends the order to the fiduciaries at `positions` and waits (bounded)
    /// for their answers; what arrives is checked by `on_commitment`.
    async fn ask_commitments(
        &self,
        record: &mut OrderRecord,
        positions: &[usize],
    ) -> Result<(), Error> {
        let sends = positions.iter().map(|&i| {
            common::send(
                &self.host,
                &record.order,
                vec![record.order.fiduciaries[i].clone()],
                Vec::new(),
            )
        });
        let mut sent = Vec::new();
        let mut undelivered = None;
        for (&i, result) in positions.iter().zip(join_all(sends).await) {
            match result {
                Ok(cid) => {
                    record.order_envelopes[i].push(cid.clone());
                    sent.push((cid, record.order.fiduciaries[i].clone()));
                }
                Err(e) => {
                    self.host.warn(format!(
                        "order {}: not delivered to fiduciary {}: {}",
                        record.order.reference, record.order.fiduciaries[i], e.message
                    ));
                    undelivered.get_or_insert(e);
                }
            }
        }
        // Volatile: this only logs the envelopes sent (the order itself was
        // recorded durably before they left), and the order's next durable
        // save, or any durable write of this node, keeps it. A crash before
        // that loses only their CIDs: the order stays pending and a retry
        // asks again.
        self.host
            .store()
            .write_volatile(vec![record_write(record)?])
            .await?;
        // Nothing left this node (e.g. its IPFS node is down): say why now
        // (a 503 from the transport) rather than wait for answers that
        // cannot come. The order stays pending; POSTing it again retries.
        if let (true, Some(e)) = (sent.is_empty(), undelivered) {
            return Err(e);
        }
        // The answers are checked and recorded by on_commitment (and
        // on_complaint); only the wait matters here. A complaint ends it.
        let transport = self.host.transport();
        let commitments = join_all(sent.iter().map(|(cid, f)| {
            transport.await_reply_cid(cid, Commitment::KIND, &[f.as_str()], self.reply_timeout)
        }));
        if sent.is_empty() || !record.order.is_threshold() {
            commitments.await;
            return Ok(());
        }
        let complaints = sent.iter().map(|(cid, f)| {
            let transport = &transport;
            Box::pin(async move {
                if transport
                    .await_reply_cid(cid, Complaint::KIND, &[f.as_str()], self.reply_timeout)
                    .await
                    .is_err()
                {
                    futures::future::pending::<()>().await;
                }
            })
        });
        futures::future::select(
            Box::pin(commitments),
            futures::future::select_all(complaints),
        )
        .await;
        Ok(())
    }

    /// Records the failure of an order and answers 422 with `why`.
    async fn fail(&self, record: &mut OrderRecord, why: String) -> Result<(), Error> {
        record.status = Status::Failed;
        record.error = Some(why.clone());
        self.save(record).await?;
        Err(Error::unprocessable(why))
    }

    /// The first complaint about this order's DKG, if any.
    async fn complaint(&self, record: &OrderRecord) -> Result<Option<ComplaintRecord>, Error> {
        common::get_json(
            &self.host.store(),
            &format!("{COMPLAINT_PREFIX}{}", record.order_cid),
        )
        .await
    }

    /// A t-of-n dealer whose commitments sent to the principal differ from
    /// those the fiduciaries report having received from it.
    async fn equivocating_dealer(
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
            if let Some(points) = common::get_json::<Vec<String>>(&store, &key).await?
                && common::points_from_hex(&points)? != reported[i]
            {
                return Ok(Some(dealer.clone()));
            }
        }
        Ok(None)
    }

    /// The 504 for fiduciaries that have not committed, telling those that
    /// never answered from those (t-of-n) that dealt and wait for the DKG.
    async fn silent_error(&self, record: &OrderRecord, silent: &[String]) -> Result<Error, Error> {
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
    async fn on_dealt(&self, envelope: &Envelope) -> Result<Result<(), String>, Error> {
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
                .write(vec![common::put_json(
                    &key,
                    &common::hex_points(&commitments)?,
                )?])
                .await?;
        }
        Ok(Ok(()))
    }

    /// Records a fiduciary's complaint about a dealer (t-of-n).
    async fn on_complaint(&self, envelope: &Envelope) -> Result<Result<(), String>, Error> {
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
            store.write(vec![common::put_json(&key, &c)?]).await?;
        }
        Ok(Ok(()))
    }

    /// The order with CID `order_cid` and the 1-based index of fiduciary
    /// `sender` in it, if both exist.
    async fn order_of(
        &self,
        order_cid: &str,
        sender: &str,
    ) -> Result<Option<(OrderRecord, u32)>, Error> {
        let store = self.host.store();
        let Some(reference) =
            common::get_json::<String>(&store, &format!("{BY_CID_PREFIX}{order_cid}")).await?
        else {
            return Ok(None);
        };
        let record = self.record(&reference).await?;
        Ok(record
            .order
            .fiduciary_index(sender)
            .map(|index| (record, index)))
    }

    /// Sends `custody/notice` to `beneficiary`, linked to the order and
    /// commitment envelopes.
    async fn notify(
        &self,
        record: &OrderRecord,
        states: &[Option<CommitmentState>],
        beneficiary: &str,
    ) -> Result<String, Error> {
        let mut fiduciaries = Vec::new();
        let mut links: Vec<String> = record.order_envelopes.iter().flatten().cloned().collect();
        for (id, state) in record.order.fiduciaries.iter().zip(states) {
            let state = state
                .as_ref()
                .ok_or_else(|| Error::internal("notice without every commitment"))?;
            let key = decode_key(state.share_public_key.as_deref().unwrap_or_default())?;
            fiduciaries.push(NoticeFiduciary {
                id: id.clone(),
                share_public_key: keys::encode_public_key(&key),
                commitment_cid: parse_cid(&state.commitment_cid)?,
            });
            links.push(state.commitment_cid.clone());
        }
        let p = decode_key(record.public_key.as_deref().unwrap_or_default())?;
        let notice = Notice {
            order: record.order.clone(),
            order_cid: parse_cid(&record.order_cid)?,
            reference: record.order.reference.clone(),
            coin: record.order.coin,
            public_key: keys::encode_public_key(&p),
            address: record.address.clone().unwrap_or_default(),
            threshold: record.order.threshold,
            fiduciaries,
            dealer_commitments: None,
        };
        let dealers = states
            .iter()
            .flatten()
            .find_map(|s| s.dealers.as_deref())
            .map(decode_dealers)
            .transpose()?;
        let notice = match dealers {
            None => notice,
            Some(d) => notice.with_dealers(&d).map_err(common::custody_error)?,
        };
        common::send(&self.host, &notice, vec![beneficiary.to_string()], links).await
    }

    /// Checks a fiduciary's commitment as it arrives and records the result.
    async fn on_commitment(&self, envelope: &Envelope) -> Result<Result<(), String>, Error> {
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
        }) = common::get_json::<CommitmentState>(&store, &key).await?
        {
            return Ok(Ok(()));
        }
        let state = match messages::verify_commitment(&record.order, &envelope.sender, &commitment)
        {
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
            .write_volatile(vec![common::put_json(&key, &state)?])
            .await?;
        Ok(match state.error {
            None => Ok(()),
            Some(e) => Err(format!("invalid commitment: {e}")),
        })
    }

    async fn redeem(&self, request: &Request) -> Result<Response, Error> {
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
        }
        let order_cid = parse_cid(&record.order_cid)?;
        let redeem = Redeem {
            order_cid,
            reference: reference.clone(),
            new_beneficiary: (target != record.order.beneficiary).then(|| target.clone()),
        };
        let sends = record
            .order
            .fiduciaries
            .iter()
            .map(|f| common::send(&self.host, &redeem, vec![f.clone()], links.clone()));
        let mut undelivered = Vec::new();
        let mut first_error = None;
        for (f, sent) in record.order.fiduciaries.iter().zip(join_all(sends).await) {
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
        let none_sent = undelivered.len() == record.order.fiduciaries.len();
        if let (true, Some(e)) = (none_sent, first_error) {
            return Err(e);
        }
        if record.own_beneficiary_key {
            let release = Release {
                order_cid,
                share: self
                    .own_beneficiary_secret(&record.order_cid, false)
                    .await?,
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

    /// The REST view of an order.
    async fn view(&self, record: &OrderRecord) -> Result<Value, Error> {
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
            "envelopes": {
                "orders": record.order_envelopes.iter().flatten().collect::<Vec<_>>(),
                "commitments": commitments,
                "notices": record.notice_cids,
                "redeems": record.redeem_cids,
                "releases": record.release_cids,
            },
        }))
    }
}

/// The write that stores `record`.
fn record_write(record: &OrderRecord) -> Result<milagro_plugin_api::Write, Error> {
    common::put_json(&format!("{ORDER_PREFIX}{}", record.order.reference), record)
}

fn decode_dealers(dealers: &[Vec<String>]) -> Result<Vec<Commitments>, Error> {
    dealers.iter().map(|d| common::points_from_hex(d)).collect()
}

fn decode_key(hex_key: &str) -> Result<PublicKey, Error> {
    let bytes = hex::decode(hex_key).map_err(|_| Error::internal("a stored key is not hex"))?;
    keys::decode_public_key(&bytes).map_err(common::custody_error)
}

fn parse_cid(text: &str) -> Result<milagro_custody::messages::Cid, Error> {
    milagro_custody::messages::Cid::try_from(text)
        .map_err(|e| Error::internal(format!("a stored CID is invalid: {e}")))
}

milagro_plugin_api::export_plugin!(Principal);
