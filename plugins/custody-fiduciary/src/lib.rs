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

//! The custody-fiduciary plugin: one of the independent parties that each
//! hold a share of a wallet key (see `docs/custody.md`).
//!
//! - On `custody/order` (from the order's principal, allowed by the
//!   optional `principals` allowlist) it draws k_i, stores it in the keystore
//!   **durably before answering**, and answers `custody/commitment`: K_i and
//!   a proof of knowledge of k_i bound to the order. A repeated order (same
//!   order CID) gets the same share and the same commitment; a reference
//!   reused by its principal for a different order is refused.
//! - On `custody/redeem` signed by the order's principal or beneficiary, it
//!   seals k_i to the beneficiary only (`custody/release`). Where the order
//!   lets the principal name a new beneficiary, the first release fixes it:
//!   a later redeem naming anyone else is refused.
//! - For a t-of-n order it runs its part of the joint-Feldman DKG with the
//!   other fiduciaries ([`dkg`]) and commits to its share s_j.
//! - It deals, takes and erases shares in refreshes and reshares of the
//!   wallet's sharing ([`reshare`]); a redeem names the sharing (epoch)
//!   whose share it wants.
//! - For a Taproot wallet it takes part in signing with the beneficiary
//!   ([`signing`]): nonce commitments, then a signature share, each only
//!   for the wallet's beneficiary, every session logged (`GET /signatures`).
//! - Every refusal is recorded (`GET /refusals`); `GET /shares` lists the
//!   orders held, never a secret.

#![forbid(unsafe_code)]

mod dkg;
mod fault;
mod reshare;
mod signing;

use fault::Fault;

use milagro_custody::messages::{
    self, Commitment, Deal, Limits, Order, Redeem, Release, Reshare, ReshareDeal, Reshared,
    SignPackage, SignRequest,
};
use milagro_custody::{SecretScalar, messages::Body};
use milagro_custody_common::{self as common, Locks};
use milagro_plugin_api::{Envelope, Error, Host, Plugin, Request, Response, Route, Write};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub(crate) const HELD_PREFIX: &str = "held/";
pub(crate) const REFERENCE_PREFIX: &str = "reference/";

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Principals (node IDs) this fiduciary takes orders from; absent: any.
    #[serde(default)]
    pub principals: Option<Vec<String>>,
    /// Test-only fault injection; exists only in builds with the
    /// `test-faults` feature: `"wrong-deal"` deals wrong DKG shares to the
    /// other fiduciaries, `"wrong-release"` releases a wrong share.
    #[cfg(feature = "test-faults")]
    #[serde(default)]
    pub test_fault: Option<String>,
}

/// What this fiduciary keeps about one order (no secret: the share is in
/// the keystore under [`share_label`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Held {
    order_cid: String,
    reference: String,
    coin: String,
    principal: String,
    beneficiary: String,
    fiduciaries: Vec<String>,
    threshold: u32,
    /// K_i, compressed, hex.
    share_public_key: String,
    /// The canonical commitment body, hex: re-sent as is to a repeated order.
    commitment: String,
    order_envelope_cids: Vec<String>,
    commitment_cids: Vec<String>,
    created_at_unix_ms: u64,
    /// Whom the share was released to (fixed by the first release).
    released_to: Option<String>,
    redeem_cids: Vec<String>,
    release_cids: Vec<String>,
    /// The sharing (epoch) whose share is held: 0 is the order's own, each
    /// completed reshare adds one. The fields above describe it.
    #[serde(default)]
    epoch: u32,
    /// The epoch this fiduciary joined the wallet in (0: from the order).
    #[serde(default)]
    joined_at_epoch: u32,
    /// Left the fiduciaries in a reshare: its share is erased.
    #[serde(default)]
    retired: bool,
    /// The reshare that made the held share (none: the order).
    #[serde(default)]
    reshare_cid: Option<String>,
    /// A new share stored and reported, waiting for `custody/reshared`.
    #[serde(default)]
    pending: Option<Pending>,
}

/// A new share of a reshare in progress (the share is in the keystore).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    epoch: u32,
    reshare_cid: String,
    /// K'_j or S'_j, compressed, hex.
    share_public_key: String,
    /// The canonical `custody/reshare-commitment` body, hex.
    report: String,
}

impl Held {
    /// A new record of `order` (no share committed to yet).
    fn new(order: &Order, order_cid: &str, now_unix_ms: u64) -> Held {
        Held {
            order_cid: order_cid.to_string(),
            reference: order.reference.clone(),
            coin: order.coin.to_string(),
            principal: order.principal.clone(),
            beneficiary: order.beneficiary.clone(),
            fiduciaries: order.fiduciaries.clone(),
            threshold: order.threshold,
            share_public_key: String::new(),
            commitment: String::new(),
            order_envelope_cids: Vec::new(),
            commitment_cids: Vec::new(),
            created_at_unix_ms: now_unix_ms,
            released_to: None,
            redeem_cids: Vec::new(),
            release_cids: Vec::new(),
            epoch: 0,
            joined_at_epoch: 0,
            retired: false,
            reshare_cid: None,
            pending: None,
        }
    }

    /// Keystore label of the share of `order_cid` in sharing `epoch`.
    fn label_of(order_cid: &str, epoch: u32) -> String {
        match epoch {
            0 => share_label(order_cid),
            e => format!("share/{order_cid}/{e}"),
        }
    }

    /// Keystore label of the share held now.
    fn share_label(&self) -> String {
        Self::label_of(&self.order_cid, self.epoch)
    }

    /// Whether the share of the held epoch is here (not erased, not yet to come).
    fn holds_current(&self) -> bool {
        !self.retired && self.joined_at_epoch <= self.epoch
    }

    /// The stored report of reshare `cid`, if this fiduciary made its share.
    fn reshare_report(&self, cid: &str) -> Option<&str> {
        match &self.pending {
            Some(p) if p.reshare_cid == cid => Some(&p.report),
            _ if self.reshare_cid.as_deref() == Some(cid) => Some(&self.commitment),
            _ => None,
        }
    }
}

/// Keystore label of the share of an order.
pub(crate) fn share_label(order_cid: &str) -> String {
    format!("share/{order_cid}")
}

pub struct Fiduciary {
    host: Host,
    principals: Option<Vec<String>>,
    locks: Locks,
    fault: Fault,
    sessions: signing::Sessions,
}

impl Plugin for Fiduciary {
    type Config = Config;
    const NAME: &'static str = "custody-fiduciary";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        for id in config.principals.iter().flatten() {
            common::check_node_id("principals", id)?;
        }
        host.info(match &config.principals {
            None => "custody-fiduciary ready: orders from any principal".to_string(),
            Some(p) => format!(
                "custody-fiduciary ready: orders from {} principal(s)",
                p.len()
            ),
        });
        Ok(Fiduciary {
            fault: Fault::from_config(&config, &host)?,
            host,
            principals: config.principals,
            locks: Locks::default(),
            sessions: signing::Sessions::default(),
        })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        #[cfg_attr(not(feature = "test-faults"), allow(unused_mut))]
        let mut routes = vec![
            Route::get("/shares", "shares", |p: &Self, r| Box::pin(p.shares(r)))
                    .summary("Orders this fiduciary holds a share of (never the share)")
.paged()
            .response(200, "A page of orders", Some(json!({"type": "object"}))),
            Route::get("/refusals", "refusals", |p: &Self, r| {
                Box::pin(common::refusals(&p.host, r))
            })
                    .summary("Orders and redemptions this fiduciary refused, and why")
.paged()
            .response(200, "A page of refusals", Some(json!({"type": "object"}))),
            Route::get("/signatures", "signatures", |p: &Self, r| Box::pin(p.signatures(r)))
                    .summary("Every signing session this fiduciary took part in (Taproot wallets): requester, message, commitments, signing set, outcome; never a secret")
.paged()
            .response(200, "A page of signing sessions", Some(json!({"type": "object"}))),
        ];
        #[cfg(feature = "test-faults")]
        routes.push(fault::export_route());
        routes
    }

    fn consumes(&self) -> Vec<String> {
        vec![
            Order::KIND.into(),
            Redeem::KIND.into(),
            Deal::KIND.into(),
            Reshare::KIND.into(),
            ReshareDeal::KIND.into(),
            Reshared::KIND.into(),
            SignRequest::KIND.into(),
            SignPackage::KIND.into(),
        ]
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), Error> {
        let outcome = match envelope.kind.as_str() {
            Order::KIND => self.on_order(&envelope).await?,
            Redeem::KIND => self.on_redeem(&envelope).await?,
            Deal::KIND => self.on_deal(&envelope).await?,
            Reshare::KIND => self.on_reshare(&envelope).await?,
            ReshareDeal::KIND => self.on_reshare_deal(&envelope).await?,
            Reshared::KIND => self.on_reshared(&envelope).await?,
            SignRequest::KIND => self.on_sign_request(&envelope).await?,
            SignPackage::KIND => self.on_sign_package(&envelope).await?,
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(reason) => common::refuse(&self.host, &envelope, &reason).await,
        }
    }
}

/// The outcome of handling an envelope: `Err(reason)` is a refusal to
/// record; the outer `Result` is a failure of the node itself (retried).
pub(crate) type Outcome = Result<Result<(), String>, Error>;

impl Fiduciary {
    /// `GET /shares`: the orders held here, never a share.
    async fn shares(&self, request: &Request) -> Result<Response, Error> {
        let page = self
            .host
            .store()
            .page(HELD_PREFIX.as_bytes(), request)
            .await?;
        let held: Vec<Held> = page.records()?;
        let shares: Vec<_> = held.iter().map(public_view).collect();
        Response::json(
            200,
            &json!({"shares": shares, "next_cursor": page.next_cursor}),
        )
    }

    async fn on_order(&self, envelope: &Envelope) -> Outcome {
        let order: Order = match common::open(envelope) {
            Ok(o) => o,
            Err(why) => return Ok(Err(why)),
        };
        let identity = self.host.identity();
        if !identity
            .same_party(&envelope.sender, &order.principal)
            .await?
        {
            return Ok(Err("the order is not signed by its principal".into()));
        }
        let Some(me) = identity
            .self_among(&order.fiduciaries)
            .await?
            .map(str::to_string)
        else {
            return Ok(Err("this node is not a fiduciary of the order".into()));
        };
        if let Some(allowed) = &self.principals
            && !allowed.contains(&order.principal)
        {
            return Ok(Err(
                "the principal is not in this fiduciary's allowlist".into()
            ));
        }
        let cid = order.cid().map_err(common::custody_error)?.to_string();
        let _guard = self.locks.lock(&cid).await;
        let store = self.host.store();
        let reference_key = format!("{REFERENCE_PREFIX}{}/{}", order.principal, order.reference);
        if let Some(existing) = store.get_json::<String>(&reference_key).await?
            && existing != cid
        {
            return Ok(Err(format!(
                "reference {:?} is already used by this principal for order {existing}",
                order.reference
            )));
        }
        let held_key = format!("{HELD_PREFIX}{cid}");
        if order.is_threshold() {
            return self.deal(envelope, &order, &cid, &me).await;
        }
        let mut held = match store.get_json::<Held>(&held_key).await? {
            Some(held) => held,
            None => {
                let held = self.draw_share(&order, &cid, &me).await?;
                store
                    .write(vec![
                        Write::put_json(&reference_key, &cid)?,
                        Write::put_json(&held_key, &held)?,
                    ])
                    .await?;
                held
            }
        };
        held.order_envelope_cids.push(envelope.cid.clone());
        self.send_commitment(&mut held, &envelope.cid).await?;
        Ok(Ok(()))
    }

    /// Sends (again) the kept commitment of `held` to its principal, linked
    /// to order envelope `order_envelope`, and records it.
    async fn send_commitment(&self, held: &mut Held, order_envelope: &str) -> Result<(), Error> {
        let commitment: Commitment = messages::decode(
            &hex::decode(&held.commitment).map_err(|e| Error::internal(e.to_string()))?,
            &Limits::default(),
        )
        .map_err(common::custody_error)?;
        let commitment_cid = common::send(
            &self.host,
            &commitment,
            vec![held.principal.clone()],
            vec![order_envelope.to_string()],
        )
        .await?;
        held.commitment_cids.push(commitment_cid);
        // Volatile: the share and the commitment were stored durably before
        // it left; this only logs its CID (a crash may lose that line).
        let key = format!("{HELD_PREFIX}{}", held.order_cid);
        self.host
            .store()
            .write_volatile(vec![Write::put_json(&key, held)?])
            .await
    }

    /// Draws the share of a new order (or finds the one drawn before a
    /// crash) and stores it durably; returns the record to keep.
    async fn draw_share(&self, order: &Order, cid: &str, me: &str) -> Result<Held, Error> {
        let keystore = self.host.keystore();
        let label = share_label(cid);
        let share = match common::get_scalar(&self.host, &label).await? {
            Some(share) => share,
            None => {
                let share = SecretScalar::random().map_err(common::custody_error)?;
                keystore
                    .put_secret(&label, share.to_bytes().as_slice())
                    .await?;
                share
            }
        };
        let order_cid = order.cid().map_err(common::custody_error)?;
        let commitment = Commitment::new(&order_cid, me, &share).map_err(common::custody_error)?;
        self.held_record(order, cid, &commitment)
    }

    /// The record of an order whose share is stored and committed to.
    fn held_record(
        &self,
        order: &Order,
        cid: &str,
        commitment: &Commitment,
    ) -> Result<Held, Error> {
        Ok(Held {
            share_public_key: hex::encode(commitment.share_public_key),
            commitment: hex::encode(messages::encode(commitment).map_err(common::custody_error)?),
            ..Held::new(order, cid, self.host.now_unix_ms())
        })
    }

    async fn on_redeem(&self, envelope: &Envelope) -> Outcome {
        let redeem: Redeem = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let cid = redeem.order_cid.to_string();
        let _guard = self.locks.lock(&cid).await;
        let store = self.host.store();
        let held_key = format!("{HELD_PREFIX}{cid}");
        let Some(mut held) = store.get_json::<Held>(&held_key).await? else {
            return Ok(Err(format!("no order {cid} is held here")));
        };
        if redeem.reference != held.reference {
            return Ok(Err("the reference does not match the order".into()));
        }
        let identity = self.host.identity();
        let by_principal = identity
            .same_party(&envelope.sender, &held.principal)
            .await?;
        if !by_principal
            && !identity
                .same_party(&envelope.sender, &held.beneficiary)
                .await?
        {
            return Ok(Err(
                "the redeem is signed by neither the order's principal nor its beneficiary".into(),
            ));
        }
        let coin: milagro_custody::Coin = held.coin.parse().map_err(common::custody_error)?;
        let movable =
            messages::principal_holds_beneficiary_key(&held.principal, &held.beneficiary, coin);
        let target = match &redeem.new_beneficiary {
            Some(_) if !movable => {
                return Ok(Err(
                    "the order names its beneficiary: nobody can change it".into()
                ));
            }
            Some(_) if !by_principal => {
                return Ok(Err("only the principal may name a new beneficiary".into()));
            }
            Some(new) => new.clone(),
            None => held
                .released_to
                .clone()
                .unwrap_or_else(|| held.beneficiary.clone()),
        };
        if let Some(before) = &held.released_to
            && *before != target
        {
            return Ok(Err(format!(
                "the share was already released to {before}; it goes to nobody else"
            )));
        }
        if held.released_to.is_none() {
            // Fixed before anything leaves: a crash after this point can only
            // lead to a release to the same beneficiary.
            held.released_to = Some(target.clone());
            store.put_json(&held_key, &held).await?;
        }
        let label = match redeem.epoch.unwrap_or(0) {
            e if e == held.epoch && held.holds_current() => held.share_label(),
            e if held.pending.as_ref().is_some_and(|p| p.epoch == e) => Held::label_of(&cid, e),
            e => {
                return Ok(Err(format!(
                    "no share of sharing epoch {e} is held here (this fiduciary is at epoch {}{})",
                    held.epoch,
                    if held.retired { ", retired" } else { "" }
                )));
            }
        };
        let share = common::get_scalar(&self.host, &label)
            .await?
            .ok_or_else(|| Error::internal(format!("the share of order {cid} is missing")))?;
        let release = Release {
            order_cid: redeem.order_cid,
            share: self.fault.released(share)?,
            epoch: redeem.epoch.filter(|&e| e > 0),
        };
        let mut links = vec![envelope.cid.clone()];
        links.extend(held.commitment_cids.last().cloned());
        let release_cid = common::send(&self.host, &release, vec![target.clone()], links).await?;
        self.host.info(format!(
            "released the share of order {cid} to beneficiary {target} (release {release_cid})"
        ));
        held.redeem_cids.push(envelope.cid.clone());
        held.release_cids.push(release_cid);
        // Volatile: whom the share goes to was fixed durably before it left;
        // this only logs the envelopes (a crash may lose that line).
        store
            .write_volatile(vec![Write::put_json(&held_key, &held)?])
            .await?;
        Ok(Ok(()))
    }
}

impl Fiduciary {
    /// Sends each deal sealed to its fiduciary, linked to `link`, all at
    /// once: a fiduciary that is down costs one delivery timeout, not one
    /// per fiduciary down (sent one after the other, three down in a 3-of-5
    /// held what follows past the principal's wait). An undelivered deal is
    /// logged; the next copy of the request deals again.
    pub(crate) async fn send_deals<T: Body>(&self, what: &str, deals: &[(&String, T)], link: &str) {
        let sent = futures::future::join_all(deals.iter().map(|(fiduciary, deal)| {
            common::send(
                &self.host,
                deal,
                vec![(*fiduciary).clone()],
                vec![link.to_string()],
            )
        }))
        .await;
        for ((fiduciary, _), result) in deals.iter().zip(sent) {
            if let Err(e) = result {
                self.host.warn(format!(
                    "{what}: deal not delivered to fiduciary {fiduciary}: {}",
                    e.message
                ));
            }
        }
    }
}

/// What `GET /shares` shows of a held order.
fn public_view(held: &Held) -> serde_json::Value {
    json!({
        "order_cid": held.order_cid,
        "reference": held.reference,
        "coin": held.coin,
        "principal": held.principal,
        "beneficiary": held.beneficiary,
        "share_public_key": held.share_public_key,
        "commitment_cids": held.commitment_cids,
        "created_at_unix_ms": held.created_at_unix_ms,
        "released_to": held.released_to,
        "release_cids": held.release_cids,
        "epoch": held.epoch,
        "retired": held.retired,
        "fiduciaries": held.fiduciaries,
        "threshold": held.threshold,
        "reshare_pending": held.pending.as_ref().map(|p| p.epoch),
    })
}

milagro_plugin_api::export_plugin!(Fiduciary);
