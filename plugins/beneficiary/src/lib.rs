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

//! The beneficiary plugin: receives custody wallets and, at redemption,
//! rebuilds their keys (see `docs/custody.md`).
//!
//! - `custody/notice` (from the order's principal) announces a wallet: P,
//!   the address and every fiduciary's K_i. When the order names this node
//!   as beneficiary, B must be this node's published beneficiary key (read
//!   through the host, which lets only the instance named `beneficiary` see
//!   it); when the principal was its own beneficiary, B is a per-order key
//!   the principal releases along with the fiduciaries' shares.
//! - `custody/release` carries one share, sealed to this node. Each is
//!   checked against the notice before it is kept (encrypted, in the
//!   keystore); an invalid one is reported and not used. Releases that
//!   arrive before their notice wait for it.
//! - With every share in, x = b + Σk_i is rebuilt, checked against P, and
//!   only then stored and shown: `GET /wallets/{reference}` gives the secret
//!   key (hex) and, for Bitcoin, its WIF.
//! - A Taproot wallet signs without its key ever being assembled
//!   ([`signing`]): `POST /wallets/{reference}/signatures`.

#![forbid(unsafe_code)]

mod signing;

use std::time::Duration;

use futures::future::join_all;
use milagro_custody::messages::{
    self, Notice, Redeem, RefreshRequest, Release, Reshared, ResharedNotice,
};
use milagro_custody::reshare::Sharing;
use milagro_custody::{SecretScalar, messages::Body};
use milagro_custody_common::{self as common, Locks};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Envelope, Error, Host, Plugin, Request, Response, Route, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const WALLET_PREFIX: &str = "wallet/";
const REFERENCE_PREFIX: &str = "reference/";
const EARLY_PREFIX: &str = "early/";

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How long each signing round waits for the fiduciaries' answers, in
    /// milliseconds (default 8000; a request may take a few rounds, so keep
    /// the host's `[http] handler_timeout_ms` above three of them).
    #[serde(default = "default_signing_timeout_ms")]
    pub signing_timeout_ms: u64,
}

fn default_signing_timeout_ms() -> u64 {
    8_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pending,
    Complete,
}

/// A share that failed its check.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InvalidShare {
    from: String,
    release_cid: String,
    reason: String,
}

/// What this beneficiary keeps about one wallet (secrets are in the
/// keystore: the accepted shares and, once rebuilt, the wallet key).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wallet {
    /// The canonical notice body, hex.
    notice: String,
    notice_cid: String,
    order_cid: String,
    reference: String,
    status: Status,
    /// B is this node's published beneficiary key (else the principal's
    /// per-order key, released with the shares).
    node_key: bool,
    /// Fiduciary indices (1-based) whose valid share is kept.
    received: Vec<u32>,
    /// The principal's per-order key arrived (only when `node_key` is false).
    principal_part: bool,
    invalid: Vec<InvalidShare>,
    release_cids: Vec<String>,
    redeem_cids: Vec<String>,
    received_at: u64,
    completed_at: Option<u64>,
    error: Option<String>,
    /// The sharing in force: 0 is the order's own, each reshare adds one.
    #[serde(default)]
    epoch: u32,
    /// The canonical `custody/reshared` body of that sharing, hex.
    #[serde(default)]
    reshared: Option<String>,
}

impl Wallet {
    fn notice(&self) -> Result<Notice, Error> {
        common::decode_hex(&self.notice)
    }

    /// The sharing in force, checked again from what announced it.
    fn sharing(&self) -> Result<Sharing, Error> {
        match &self.reshared {
            Some(body) => common::decode_hex::<Reshared>(body)?
                .verify()
                .map_err(common::custody_error),
            None => self.notice()?.sharing().map_err(common::custody_error),
        }
    }
}

fn part_label(order_cid: &str, index: u32) -> String {
    format!("part/{order_cid}/{index}")
}

/// Where a release that came early waits (store key and keystore label).
fn kept_key(order_cid: &str, epoch: u32, release_cid: &str) -> String {
    format!("{EARLY_PREFIX}{order_cid}/{epoch}/{release_cid}")
}

fn wallet_label(order_cid: &str) -> String {
    format!("wallet/{order_cid}")
}

fn scalar(bytes: &Zeroizing<Vec<u8>>) -> Result<SecretScalar, Error> {
    let bytes: &[u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::internal("a stored key has the wrong length"))?;
    SecretScalar::from_bytes(bytes).map_err(common::custody_error)
}

pub struct Beneficiary {
    host: Host,
    locks: Locks,
    signing_timeout: Duration,
}

type Outcome = Result<Result<(), String>, Error>;

impl Plugin for Beneficiary {
    type Config = Config;
    const NAME: &'static str = "beneficiary";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        if config.signing_timeout_ms == 0 || config.signing_timeout_ms > 600_000 {
            return Err(Error::bad_request(
                "signing_timeout_ms must be between 1 and 600000",
            ));
        }
        Ok(Beneficiary {
            host,
            locks: Locks::default(),
            signing_timeout: Duration::from_millis(config.signing_timeout_ms),
        })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        let text = json!({"type": "string"});
        let wallet = json!({"type": "object", "properties": {
            "reference": text, "coin": text, "address": text, "public_key": text,
            "status": {"type": "string", "enum": ["pending", "complete"]},
            "shares_received": {"type": "integer"}, "shares_needed": {"type": "integer"},
            "order_cid": text, "principal": text, "secret_key": text, "wif": text}});
        vec![
            Route::get("/wallets", "list_wallets", |p: &Self, r| Box::pin(p.list_wallets(r)))
                    .summary("Wallets announced to this beneficiary")
.paged()
            .response(
                200,
                "A page of wallets",
                Some(json!({"type": "object", "properties": {
                    "wallets": {"type": "array", "items": wallet.clone()},
                    "next_cursor": {"type": "string", "nullable": true}}})),
            ),
            Route::get("/wallets/{reference}", "get_wallet", |p: &Self, r| Box::pin(p.get_wallet(r)))
                .summary("One wallet (by reference or order CID); its key once complete")
                .response(200, "The wallet", Some(wallet))
                .response(400, "Bad reference", None)
                .response(404, "No such wallet", None)
                .response(
                    409,
                    "Several principals used this reference: ask by order CID",
                    None,
                ),
            Route::post("/wallets/{reference}/redeem", "redeem", |p: &Self, r| Box::pin(p.redeem(r)))
                .summary("Ask the wallet's fiduciaries to release their shares to this beneficiary")
                .response(202, "Redemption sent", Some(json!({"type": "object"})))
                .response(404, "No such wallet", None)
                .response(
                    409,
                    "Several principals used this reference: ask by order CID",
                    None,
                ),
            Route::post("/wallets/{reference}/refresh", "refresh", |p: &Self, r| Box::pin(p.refresh(r)))
                .summary("Ask the wallet's principal to refresh the fiduciaries' shares (same key and address; old shares become useless)")
                .response(202, "Request sent to the principal", Some(json!({"type": "object"})))
                .response(404, "No such wallet", None)
                .response(
                    409,
                    "Several principals used this reference: ask by order CID",
                    None,
                ),
            Route::post("/wallets/{reference}/signatures", "sign", |p: &Self, r| Box::pin(p.sign(r)))
                .summary("Sign a 32-byte message (a BIP341 sighash) with a Taproot wallet: this beneficiary and any t fiduciaries, the key never assembled")
                .json_body(json!({"type": "object", "required": ["message"],
                    "properties": {"message": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}},
                    "additionalProperties": false}))
                .response(201, "The BIP340 signature, verified under the wallet's output key", Some(json!({"type": "object", "properties": {
                    "signature": text, "message": text, "output_key": text, "address": text,
                    "fiduciaries": {"type": "array", "items": text},
                    "envelope_cids": {"type": "array", "items": text}}})))
                .response(400, "Bad message", None)
                .response(404, "No such wallet", None)
                .response(409, "Not a Taproot wallet, or its beneficiary key is the principal's", None)
                .response(422, "A fiduciary sent a wrong signature share (named)", None)
                .response(504, "Fewer than t fiduciaries took part", None),
            Route::get("/signatures", "signatures", |p: &Self, r| Box::pin(p.signatures(r)))
                    .summary("Signatures this beneficiary made with its Taproot wallets")
.paged()
            .response(200, "A page of signatures", Some(json!({"type": "object"}))),
            Route::get("/refusals", "refusals", |p: &Self, r| Box::pin(common::refusals(&p.host, r)))
                    .summary("Notices and releases refused, and why")
.paged()
            .response(200, "A page of refusals", Some(json!({"type": "object"}))),
        ]
    }

    fn awaits(&self) -> Vec<String> {
        vec![
            messages::SignCommitment::KIND.into(),
            messages::SignShare::KIND.into(),
        ]
    }

    fn consumes(&self) -> Vec<String> {
        vec![
            Notice::KIND.into(),
            Release::KIND.into(),
            ResharedNotice::KIND.into(),
        ]
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), Error> {
        let outcome = match envelope.kind.as_str() {
            Notice::KIND => self.on_notice(&envelope).await?,
            Release::KIND => self.on_release(&envelope).await?,
            ResharedNotice::KIND => self.on_reshared(&envelope).await?,
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(reason) => common::refuse(&self.host, &envelope, &reason).await,
        }
    }
}

impl Beneficiary {
    /// `GET /wallets`: a page of wallets.
    async fn list_wallets(&self, request: &Request) -> Result<Response, Error> {
        let page = self
            .host
            .store()
            .page(WALLET_PREFIX.as_bytes(), request)
            .await?;
        let wallets: Vec<Wallet> = page.records()?;
        let mut views = Vec::with_capacity(wallets.len());
        for w in &wallets {
            views.push(self.view(w, false).await?);
        }
        Response::json(
            200,
            &json!({"wallets": views, "next_cursor": page.next_cursor}),
        )
    }

    /// `GET /wallets/{reference}`: one wallet.
    async fn get_wallet(&self, request: &Request) -> Result<Response, Error> {
        let wallet = self.find(request).await?;
        Response::json(200, &self.view(&wallet, true).await?)
    }

    /// `POST /wallets/{reference}/refresh`: asks the wallet's principal for
    /// a refresh of the fiduciaries' shares.
    async fn refresh(&self, request: &Request) -> Result<Response, Error> {
        let wallet = self.find(request).await?;
        let notice = wallet.notice()?;
        let refresh = RefreshRequest {
            order_cid: notice.order_cid,
        };
        let cid = common::send(
            &self.host,
            &refresh,
            vec![notice.order.principal.clone()],
            vec![wallet.notice_cid.clone()],
        )
        .await?;
        Response::json(
            202,
            &json!({"order_cid": wallet.order_cid, "epoch": wallet.epoch, "request_cid": cid}),
        )
    }

    /// This node's beneficiary key b, if it publishes one.
    async fn node_key(&self) -> Result<Option<SecretScalar>, Error> {
        match self.host.keystore().beneficiary_secret().await? {
            Some(bytes) => scalar(&bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn on_notice(&self, envelope: &Envelope) -> Outcome {
        let notice: Notice = match common::open(envelope) {
            Ok(n) => n,
            Err(why) => return Ok(Err(why)),
        };
        let order = &notice.order;
        let identity = self.host.identity();
        if !identity
            .same_party(&envelope.sender, &order.principal)
            .await?
        {
            return Ok(Err(
                "the notice is not signed by the order's principal".into()
            ));
        }
        let principal_holds_key = order.principal_holds_beneficiary_key();
        if order.beneficiary != order.principal && !identity.is_self(&order.beneficiary).await? {
            return Ok(Err("the order names another beneficiary".into()));
        }
        let b = match notice.beneficiary_public_key() {
            Ok(b) => b,
            Err(e) => return Ok(Err(format!("unusable wallet key: {e}"))),
        };
        let node_key = !principal_holds_key;
        if node_key {
            let mine = self.node_key().await?.map(|k| k.public_key());
            if mine != Some(b) {
                return Ok(Err(
                    "the wallet key does not include this node's beneficiary key".into(),
                ));
            }
        }
        let order_cid = notice.order_cid.to_string();
        let _guard = self.locks.lock(&order_cid).await;
        let store = self.host.store();
        let key = format!("{WALLET_PREFIX}{order_cid}");
        if store.get_json::<Wallet>(&key).await?.is_some() {
            return Ok(Ok(()));
        }
        let mut wallet = Wallet {
            notice: hex::encode(messages::encode(&notice).map_err(common::custody_error)?),
            notice_cid: envelope.cid.clone(),
            order_cid: order_cid.clone(),
            reference: order.reference.clone(),
            status: Status::Pending,
            node_key,
            received: Vec::new(),
            principal_part: false,
            invalid: Vec::new(),
            release_cids: Vec::new(),
            redeem_cids: Vec::new(),
            received_at: self.host.now_unix_ms(),
            completed_at: None,
            error: None,
            epoch: 0,
            reshared: None,
        };
        let sharing = notice.sharing().map_err(common::custody_error)?;
        let taken = self.take_kept(&mut wallet, &notice, &sharing).await?;
        self.try_complete(&mut wallet, &notice, &sharing).await?;
        let writes = vec![
            Write::put_json(&key, &wallet)?,
            Write::put_json(
                format!("{REFERENCE_PREFIX}{}/{order_cid}", order.reference),
                &order_cid,
            )?,
        ];
        self.write_taking(writes, &taken).await?;
        self.host.info(format!(
            "wallet {} of order {order_cid} announced by {}",
            notice.address, order.principal
        ));
        Ok(Ok(()))
    }

    async fn on_release(&self, envelope: &Envelope) -> Outcome {
        let release: Release = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let order_cid = release.order_cid.to_string();
        let _guard = self.locks.lock(&order_cid).await;
        let store = self.host.store();
        let key = format!("{WALLET_PREFIX}{order_cid}");
        let epoch = release.epoch.unwrap_or(0);
        let Some(mut wallet) = store.get_json::<Wallet>(&key).await? else {
            // The notice has not arrived (yet): keep the share for it.
            self.keep_release(&order_cid, epoch, envelope, &release.share)
                .await?;
            return Ok(Ok(()));
        };
        if epoch > wallet.epoch {
            // The reshare of its epoch has not arrived (yet): keep it.
            self.keep_release(&order_cid, epoch, envelope, &release.share)
                .await?;
            return Ok(Ok(()));
        }
        if epoch != wallet.epoch {
            return Ok(Err(format!(
                "the share is of sharing epoch {epoch}; this wallet is at epoch {}",
                wallet.epoch
            )));
        }
        // Checked even once complete: a late invalid share is still reported.
        let notice = wallet.notice()?;
        // The sender as the sharing names it (it may have rotated since).
        let sharing = wallet.sharing()?;
        let named: Vec<String> = sharing
            .fiduciaries
            .iter()
            .chain([&notice.order.principal])
            .cloned()
            .collect();
        let sender = self
            .host
            .identity()
            .party_among(&named, &envelope.sender)
            .await?
            .unwrap_or(&envelope.sender)
            .to_string();
        let accepted = self
            .accept(
                &mut wallet,
                &notice,
                &sharing,
                &sender,
                &envelope.cid,
                release.share,
            )
            .await?;
        self.try_complete(&mut wallet, &notice, &sharing).await?;
        store.put_json(&key, &wallet).await?;
        Ok(accepted)
    }

    /// A reshare of a wallet completed: the new sharing, checked in full
    /// and against the wallet's key, is the one releases are taken from.
    /// Shares of the old sharing kept for a pending wallet are dropped.
    async fn on_reshared(&self, envelope: &Envelope) -> Outcome {
        let reshared: Reshared = match common::open::<ResharedNotice>(envelope) {
            Ok(r) => r.0,
            Err(why) => return Ok(Err(why)),
        };
        let order = &reshared.reshare.order;
        if !self
            .host
            .identity()
            .same_party(&envelope.sender, &order.principal)
            .await?
        {
            return Ok(Err(
                "the reshared notice is not signed by the order's principal".into(),
            ));
        }
        let order_cid = order.cid().map_err(common::custody_error)?.to_string();
        let _guard = self.locks.lock(&order_cid).await;
        let store = self.host.store();
        let key = format!("{WALLET_PREFIX}{order_cid}");
        let Some(mut wallet) = store.get_json::<Wallet>(&key).await? else {
            return Ok(Err(format!("no wallet of order {order_cid} is known here")));
        };
        if reshared.reshare.epoch <= wallet.epoch {
            return Ok(Ok(()));
        }
        let sharing = match reshared.verify() {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("the new sharing does not verify: {e}"))),
        };
        if sharing.group_key().ok() != wallet.sharing()?.group_key().ok() {
            return Ok(Err(
                "the new sharing is of another key than the wallet's".into()
            ));
        }
        let stale = match wallet.status {
            Status::Pending => std::mem::take(&mut wallet.received),
            Status::Complete => Vec::new(),
        };
        wallet.epoch = reshared.reshare.epoch;
        wallet.reshared = Some(common::encode_hex(&reshared)?);
        let notice = wallet.notice()?;
        let taken = self.take_kept(&mut wallet, &notice, &sharing).await?;
        self.try_complete(&mut wallet, &notice, &sharing).await?;
        // The wallet first: a crash before the erasures leaves only secrets
        // nothing refers to.
        self.write_taking(vec![Write::put_json(&key, &wallet)?], &taken)
            .await?;
        for index in stale {
            if !wallet.received.contains(&index) {
                self.host
                    .keystore()
                    .delete_secret(&part_label(&wallet.order_cid, index))
                    .await?;
            }
        }
        self.host.info(format!(
            "wallet of order {order_cid}: sharing epoch {} ({} of {})",
            wallet.epoch,
            sharing.threshold,
            sharing.fiduciaries.len()
        ));
        Ok(Ok(()))
    }

    /// Keeps a release that came before what it needs (the notice, or the
    /// reshare of its epoch): the share in the keystore, its sender in the
    /// store, both under [`kept_key`].
    async fn keep_release(
        &self,
        order_cid: &str,
        epoch: u32,
        envelope: &Envelope,
        share: &SecretScalar,
    ) -> Result<(), Error> {
        let key = kept_key(order_cid, epoch, &envelope.cid);
        self.host
            .keystore()
            .put_secret(&key, share.to_bytes().as_slice())
            .await?;
        self.host
            .store()
            .write(vec![milagro_plugin_api::Write::Put(
                key.into_bytes(),
                envelope.sender.clone().into_bytes(),
            )])
            .await
    }

    /// Takes the kept releases of the wallet's epoch (accepted, or recorded
    /// as invalid like a late one); returns their keys and those of older
    /// epochs, to delete. Later epochs' stay kept.
    async fn take_kept(
        &self,
        wallet: &mut Wallet,
        notice: &Notice,
        sharing: &Sharing,
    ) -> Result<Vec<String>, Error> {
        let prefix = format!("{EARLY_PREFIX}{}/", wallet.order_cid);
        let kept = self
            .host
            .store()
            .scan(prefix.as_bytes(), None, 1000)
            .await?;
        let mut taken = Vec::new();
        for (k, sender) in kept {
            let key = String::from_utf8_lossy(&k).into_owned();
            let rest = &key[prefix.len()..];
            // Before epochs, the key had no epoch part: epoch 0.
            let (epoch, release_cid) = match rest.split_once('/') {
                Some((e, cid)) => (e.parse::<u32>().unwrap_or(u32::MAX), cid.to_string()),
                None => (0, rest.to_string()),
            };
            if epoch > wallet.epoch {
                continue;
            }
            if epoch == wallet.epoch
                && let Some(share) = common::get_scalar(&self.host, &key).await?
            {
                let sender = String::from_utf8_lossy(&sender).into_owned();
                let _ = self
                    .accept(wallet, notice, sharing, &sender, &release_cid, share)
                    .await?;
            }
            taken.push(key);
        }
        Ok(taken)
    }

    /// Writes `writes` with the deletion of the kept releases `taken`,
    /// then erases their shares (a crash in between leaves only secrets
    /// nothing refers to).
    async fn write_taking(
        &self,
        mut writes: Vec<milagro_plugin_api::Write>,
        taken: &[String],
    ) -> Result<(), Error> {
        writes.extend(
            taken
                .iter()
                .map(|k| milagro_plugin_api::Write::Delete(k.clone().into_bytes())),
        );
        self.host.store().write(writes).await?;
        for key in taken {
            self.host.keystore().delete_secret(key).await?;
        }
        Ok(())
    }

    /// Checks one released share against `sharing` (the wallet's, in
    /// force) and keeps it if valid (or records why not).
    async fn accept(
        &self,
        wallet: &mut Wallet,
        notice: &Notice,
        sharing: &Sharing,
        sender: &str,
        release_cid: &str,
        share: SecretScalar,
    ) -> Outcome {
        let index = match sharing.check_release(sender, &share) {
            Ok(index) => index,
            Err(_)
                if !wallet.node_key
                    && sender == notice.order.principal
                    && notice.beneficiary_public_key().ok() == Some(share.public_key()) =>
            {
                0
            }
            Err(e) => {
                let reason = format!("invalid share: {e}");
                wallet.invalid.push(InvalidShare {
                    from: sender.to_string(),
                    release_cid: release_cid.to_string(),
                    reason: reason.clone(),
                });
                return Ok(Err(reason));
            }
        };
        let have = if index == 0 {
            wallet.principal_part
        } else {
            wallet.received.contains(&index)
        };
        if !have {
            self.host
                .keystore()
                .put_secret(
                    &part_label(&wallet.order_cid, index),
                    share.to_bytes().as_slice(),
                )
                .await?;
            if index == 0 {
                wallet.principal_part = true;
            } else {
                wallet.received.push(index);
            }
        }
        wallet.release_cids.push(release_cid.to_string());
        Ok(Ok(()))
    }

    /// Rebuilds x once enough shares are in, checks x*G == P, stores it.
    async fn try_complete(
        &self,
        wallet: &mut Wallet,
        notice: &Notice,
        sharing: &Sharing,
    ) -> Result<(), Error> {
        let enough = wallet.received.len() >= sharing.threshold as usize
            && (wallet.node_key || wallet.principal_part);
        if wallet.status == Status::Complete || !enough {
            return Ok(());
        }
        let keystore = self.host.keystore();
        let b = if wallet.node_key {
            self.node_key()
                .await?
                .ok_or_else(|| Error::internal("this node's beneficiary key is missing"))?
        } else {
            let bytes = keystore
                .get_secret(&part_label(&wallet.order_cid, 0))
                .await?
                .ok_or_else(|| Error::internal("a kept share is missing"))?;
            scalar(&bytes)?
        };
        let mut releases = Vec::new();
        for &index in &wallet.received {
            let bytes = keystore
                .get_secret(&part_label(&wallet.order_cid, index))
                .await?
                .ok_or_else(|| Error::internal("a kept share is missing"))?;
            releases.push((index, scalar(&bytes)?));
        }
        let wallet_key = notice.wallet_key().map_err(common::custody_error)?;
        match sharing.rebuild_secret(&wallet_key, &b, &releases) {
            Ok(x) => {
                keystore
                    .put_secret(&wallet_label(&wallet.order_cid), x.to_bytes().as_slice())
                    .await?;
                wallet.status = Status::Complete;
                wallet.completed_at = Some(self.host.now_unix_ms());
                wallet.error = None;
                self.host.info(format!(
                    "wallet {} of order {} is complete",
                    notice.address, wallet.order_cid
                ));
            }
            Err(e) => {
                wallet.error = Some(format!("the shares do not rebuild the wallet key: {e}"));
                self.host.warn(format!(
                    "wallet of order {}: {}",
                    wallet.order_cid,
                    wallet.error.as_deref().unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    /// The wallet a `{reference}` path names: a reference (unique among
    /// this beneficiary's principals) or an order CID.
    async fn find(&self, request: &Request) -> Result<Wallet, Error> {
        let reference = request.param("reference").unwrap_or_default();
        let store = self.host.store();
        if messages::check_node_id("order_cid", reference).is_ok()
            && let Some(w) = store
                .get_json::<Wallet>(format!("{WALLET_PREFIX}{reference}"))
                .await?
        {
            return Ok(w);
        }
        common::check_reference(reference)?;
        let prefix = format!("{REFERENCE_PREFIX}{reference}/");
        let found = store.scan(prefix.as_bytes(), None, 2).await?;
        match found.as_slice() {
            [] => Err(Error::not_found(format!(
                "no wallet with reference {reference:?}"
            ))),
            [(k, _)] => {
                let order_cid = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                store
                    .get_json(format!("{WALLET_PREFIX}{order_cid}"))
                    .await?
                    .ok_or_else(|| Error::internal("a wallet index entry has no wallet"))
            }
            _ => Err(Error::conflict(format!(
                "several principals used reference {reference:?}: ask by order CID"
            ))),
        }
    }

    /// Asks every fiduciary of the wallet to release its share here.
    async fn redeem(&self, request: &Request) -> Result<Response, Error> {
        let found = self.find(request).await?;
        let _guard = self.locks.lock(&found.order_cid).await;
        let key = format!("{WALLET_PREFIX}{}", found.order_cid);
        let mut wallet: Wallet = self
            .host
            .store()
            .get_json(&key)
            .await?
            .ok_or_else(|| Error::internal("the wallet vanished"))?;
        let notice = wallet.notice()?;
        let fiduciaries = wallet.sharing()?.fiduciaries;
        let redeem = Redeem {
            order_cid: notice.order_cid,
            reference: notice.reference.clone(),
            new_beneficiary: None,
            epoch: (wallet.epoch > 0).then_some(wallet.epoch),
        };
        let sends = fiduciaries.iter().map(|f| {
            common::send(
                &self.host,
                &redeem,
                vec![f.clone()],
                vec![wallet.notice_cid.clone()],
            )
        });
        let mut undelivered = Vec::new();
        for (f, sent) in fiduciaries.iter().zip(join_all(sends).await) {
            match sent {
                Ok(cid) => wallet.redeem_cids.push(cid),
                Err(e) => undelivered.push(json!({"id": f, "error": e.message})),
            }
        }
        self.host.store().put_json(&key, &wallet).await?;
        let mut view = self.view(&wallet, false).await?;
        view["undelivered"] = Value::Array(undelivered);
        Response::json(202, &view)
    }

    /// The REST view; with `secret` and once complete, the wallet key.
    async fn view(&self, wallet: &Wallet, secret: bool) -> Result<Value, Error> {
        let notice = wallet.notice()?;
        let sharing = wallet.sharing()?;
        let mut view = json!({
            "reference": wallet.reference,
            "order_cid": wallet.order_cid,
            "coin": notice.coin.as_str(),
            "address": notice.address,
            "public_key": hex::encode(notice.public_key),
            "principal": notice.order.principal,
            "status": wallet.status,
            "shares_received": wallet.received.len(),
            "shares_needed": sharing.threshold,
            "shares_missing": (sharing.threshold as usize).saturating_sub(wallet.received.len()),
            "epoch": wallet.epoch,
            "fiduciaries": sharing.fiduciaries,
            "beneficiary_key": if wallet.node_key { "node" } else if wallet.principal_part { "received" } else { "waiting" },
            "invalid_shares": wallet.invalid,
            "error": wallet.error,
            "received_at": wallet.received_at,
            "completed_at": wallet.completed_at,
            "envelopes": {
                "notice": wallet.notice_cid,
                "releases": wallet.release_cids,
                "redeems": wallet.redeem_cids,
            },
        });
        if secret && wallet.status == Status::Complete {
            let bytes = self
                .host
                .keystore()
                .get_secret(&wallet_label(&wallet.order_cid))
                .await?
                .ok_or_else(|| Error::internal("the wallet key is missing"))?;
            let x = scalar(&bytes)?;
            view["secret_key"] = Value::String(hex::encode(x.to_bytes().as_slice()));
            if let Some(wif) = notice.coin.wif(&x) {
                view["wif"] = Value::String(wif.to_string());
            }
        }
        Ok(view)
    }
}

milagro_plugin_api::export_plugin!(Beneficiary);
