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

//! The fiduciary's part in signing for Taproot wallets (`docs/custody.md`
//! §12): round 1 answers a `custody/sign-request` with fresh nonce
//! commitments, round 2 answers the `custody/sign-package` of the same
//! session with a signature share. Both only for the wallet's beneficiary.
//!
//! Nonces never reach the disk: they wait for round 2 in memory and are
//! taken out before they are used, so a nonce signs at most once, and a
//! crash or restart between the rounds discards them (that session then
//! fails here, and the beneficiary starts another). What does reach the
//! disk, before each answer leaves, is the log (`GET /signatures`): every
//! session with its commitments, message, wallet key and outcome, never a
//! secret.

use std::collections::HashMap;
use std::sync::Mutex;

use milagro_custody::Coin;
use milagro_custody::messages::{
    ByteArray, NonceCommitments, SignCommitment, SignPackage, SignRequest, SignShare,
};
use milagro_custody::signing::{self, Nonces, Signer};
use milagro_custody::{keys, taproot};
use milagro_custody_common as common;
use milagro_plugin_api::{Envelope, Error, Request, Response, Write};
use serde::{Deserialize, Serialize};

use crate::{Fiduciary, HELD_PREFIX, Held, Outcome};

/// Store prefix of the signing log.
pub(crate) const SIGNATURE_PREFIX: &str = "signature/";
/// Most sessions waiting for round 2 at once (each holds two nonces).
const MAX_OPEN_SESSIONS: usize = 256;
/// How long a session waits for round 2.
const SESSION_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// A session waiting for round 2: its nonces (memory only) and what round
/// 2 must match.
struct Open {
    nonces: Nonces,
    message: [u8; 32],
    epoch: u32,
    opened_at_unix_ms: u64,
}

/// The sessions waiting for round 2, by (order CID, session).
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<(String, [u8; 16]), Open>>);

impl Sessions {
    /// Keeps `open` unless the session exists or too many are open (after
    /// dropping the expired ones).
    fn insert(&self, key: (String, [u8; 16]), open: Open, now: u64) -> Result<(), String> {
        let mut map = self.0.lock().expect("sessions lock");
        map.retain(|_, o| now.saturating_sub(o.opened_at_unix_ms) < SESSION_LIFETIME_MS);
        if map.contains_key(&key) {
            return Err("this signing session is already open".into());
        }
        if map.len() >= MAX_OPEN_SESSIONS {
            return Err(format!(
                "{MAX_OPEN_SESSIONS} signing sessions are open here: try again later"
            ));
        }
        map.insert(key, open);
        Ok(())
    }

    /// Takes a session's nonces out for good (so they sign at most once).
    fn take(&self, key: &(String, [u8; 16]), now: u64) -> Option<Open> {
        let open = self.0.lock().expect("sessions lock").remove(key)?;
        (now.saturating_sub(open.opened_at_unix_ms) < SESSION_LIFETIME_MS).then_some(open)
    }
}

/// The state of a logged session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Committed to nonces; round 2 not (yet) seen.
    Committed,
    /// Signed: the share left.
    Signed,
    /// Round 2 refused (the reason is in the refusals).
    Refused,
}

/// One signing session in the log (no secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Logged {
    order_cid: String,
    reference: String,
    coin: String,
    /// Hex.
    session: String,
    requester: String,
    epoch: u32,
    /// The message asked for in round 1, hex.
    message: String,
    /// This fiduciary's nonce commitments D ‖ E, hex.
    nonce_commitments: String,
    status: Status,
    request_cid: String,
    committed_at_unix_ms: u64,
    /// Round 2: the signing set (0: the beneficiary), the wallet key and
    /// output key signed for, the package and share envelopes.
    #[serde(default)]
    signers: Vec<u32>,
    #[serde(default)]
    wallet_key: Option<String>,
    #[serde(default)]
    output_key: Option<String>,
    #[serde(default)]
    package_cid: Option<String>,
    #[serde(default)]
    share_cid: Option<String>,
    #[serde(default)]
    signed_at_unix_ms: Option<u64>,
}

fn log_key(order_cid: &str, session: &[u8; 16]) -> String {
    format!("{SIGNATURE_PREFIX}{order_cid}/{}", hex::encode(session))
}

impl Fiduciary {
    /// The held wallet a signing message names, if this node may sign for
    /// it at `epoch` on a request from `sender`.
    async fn signing_wallet(
        &self,
        order_cid: &str,
        epoch: u32,
        sender: &str,
    ) -> Result<Result<Held, String>, Error> {
        let Some(held) = self
            .host
            .store()
            .get_json::<Held>(format!("{HELD_PREFIX}{order_cid}"))
            .await?
        else {
            return Ok(Err(format!("no order {order_cid} is held here")));
        };
        let coin: Coin = held.coin.parse().map_err(common::custody_error)?;
        if !coin.is_taproot() {
            return Ok(Err(format!(
                "a {coin} wallet does not sign (only btc-taproot and btc-testnet-taproot)"
            )));
        }
        if !self
            .host
            .identity()
            .same_party(sender, &held.beneficiary)
            .await?
        {
            return Ok(Err(
                "signing is asked by someone other than the wallet's beneficiary".into(),
            ));
        }
        if !held.holds_current() || held.share_public_key.is_empty() {
            return Ok(Err("this node holds no share of the wallet now".into()));
        }
        if epoch != held.epoch {
            return Ok(Err(format!(
                "the request is for sharing epoch {epoch}; the share held is of epoch {}",
                held.epoch
            )));
        }
        Ok(Ok(held))
    }

    /// Round 1: commits to fresh nonces for the session.
    pub(crate) async fn on_sign_request(&self, envelope: &Envelope) -> Outcome {
        let request: SignRequest = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let order_cid = request.order_cid.to_string();
        let epoch = request.epoch.unwrap_or(0);
        let held = match self
            .signing_wallet(&order_cid, epoch, &envelope.sender)
            .await?
        {
            Ok(h) => h,
            Err(why) => return Ok(Err(why)),
        };
        let session = *request.session;
        let key = log_key(&order_cid, &session);
        let store = self.host.store();
        if store.get(key.as_bytes()).await?.is_some() {
            return Ok(Err("this signing session was used before".into()));
        }
        let share = common::get_scalar(&self.host, &held.share_label())
            .await?
            .ok_or_else(|| Error::internal("the share of a held order is missing"))?;
        let (nonces, commitments) = signing::commit(&share).map_err(common::custody_error)?;
        drop(share);
        let commitments =
            NonceCommitments::from_signing(&commitments).map_err(common::custody_error)?;
        let now = self.host.now_unix_ms();
        let logged = Logged {
            order_cid: order_cid.clone(),
            reference: held.reference.clone(),
            coin: held.coin.clone(),
            session: hex::encode(session),
            requester: envelope.sender.clone(),
            epoch,
            message: hex::encode(*request.message),
            nonce_commitments: format!(
                "{}{}",
                hex::encode(*commitments.hiding),
                hex::encode(*commitments.binding)
            ),
            status: Status::Committed,
            request_cid: envelope.cid.clone(),
            committed_at_unix_ms: now,
            signers: Vec::new(),
            wallet_key: None,
            output_key: None,
            package_cid: None,
            share_cid: None,
            signed_at_unix_ms: None,
        };
        let open = Open {
            nonces,
            message: *request.message,
            epoch,
            opened_at_unix_ms: now,
        };
        if let Err(why) = self
            .sessions
            .insert((order_cid.clone(), session), open, now)
        {
            return Ok(Err(why));
        }
        // The commitments are logged durably before they leave.
        store.put_json(&key, &logged).await?;
        let answer = SignCommitment {
            order_cid: request.order_cid,
            session: ByteArray::new(session),
            commitments,
        };
        common::send(
            &self.host,
            &answer,
            vec![held.beneficiary.clone()],
            vec![envelope.cid.clone()],
        )
        .await?;
        Ok(Ok(()))
    }

    /// Round 2: signs the package with the session's nonces, once.
    pub(crate) async fn on_sign_package(&self, envelope: &Envelope) -> Outcome {
        let package: SignPackage = match common::open(envelope) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let order_cid = package.order_cid.to_string();
        let epoch = package.epoch.unwrap_or(0);
        let held = match self
            .signing_wallet(&order_cid, epoch, &envelope.sender)
            .await?
        {
            Ok(h) => h,
            Err(why) => return Ok(Err(why)),
        };
        let session = *package.session;
        let key = log_key(&order_cid, &session);
        let store = self.host.store();
        let Some(mut logged) = store.get_json::<Logged>(&key).await? else {
            return Ok(Err("no such signing session here".into()));
        };
        // Out of memory first: whatever happens next, these nonces are spent.
        let Some(open) = self
            .sessions
            .take(&(order_cid.clone(), session), self.host.now_unix_ms())
        else {
            return Ok(Err(
                "the session's nonces are gone (used, expired, or this node restarted since round 1)"
                    .into(),
            ));
        };
        let outcome = self.check_package(&held, &package, &open, &logged).await?;
        let (session_keys, me) = match outcome {
            Ok(x) => x,
            Err(why) => {
                logged.status = Status::Refused;
                store.put_json(&key, &logged).await?;
                return Ok(Err(why));
            }
        };
        let share = common::get_scalar(&self.host, &held.share_label())
            .await?
            .ok_or_else(|| Error::internal("the share of a held order is missing"))?;
        let signature_share = session_keys
            .sign(Signer::Fiduciary(me), &share, open.nonces)
            .map_err(common::custody_error)?;
        drop(share);
        let share_bytes = self
            .fault
            .signature_share(signing::share_to_bytes(&signature_share));
        logged.status = Status::Signed;
        logged.signers = package.signers.iter().map(|s| s.index).collect();
        logged.wallet_key = Some(hex::encode(*package.wallet_key));
        logged.output_key = taproot::output_key(
            &keys::decode_public_key(&package.wallet_key[..]).map_err(common::custody_error)?,
        )
        .ok()
        .map(hex::encode);
        logged.package_cid = Some(envelope.cid.clone());
        logged.signed_at_unix_ms = Some(self.host.now_unix_ms());
        // Logged durably before the share leaves.
        store.put_json(&key, &logged).await?;
        self.fault.before_share(&self.host).await?;
        let answer = SignShare {
            order_cid: package.order_cid,
            session: ByteArray::new(session),
            share: ByteArray::new(share_bytes),
        };
        let cid = common::send(
            &self.host,
            &answer,
            vec![held.beneficiary.clone()],
            vec![envelope.cid.clone()],
        )
        .await?;
        logged.share_cid = Some(cid);
        store
            .write_volatile(vec![Write::put_json(&key, &logged)?])
            .await?;
        self.host.info(format!(
            "signed for wallet {} (order {order_cid}), session {}",
            held.reference, logged.session
        ));
        Ok(Ok(()))
    }

    /// Round 2's checks: the message and epoch of round 1, this node in the
    /// set with the commitments it sent, a valid set. Returns the session
    /// and this fiduciary's index.
    async fn check_package(
        &self,
        held: &Held,
        package: &SignPackage,
        open: &Open,
        logged: &Logged,
    ) -> Result<Result<(signing::Session, u32), String>, Error> {
        if *package.message != open.message || epoch_of(package) != open.epoch {
            return Ok(Err(
                "the package's message or epoch is not the one of round 1".into(),
            ));
        }
        let Some(me) = self.host.identity().self_among(&held.fiduciaries).await? else {
            return Ok(Err("this node is not a fiduciary of the wallet".into()));
        };
        let me = held.fiduciaries.iter().position(|f| f == me).unwrap_or(0) as u32 + 1;
        let sent = package_commitments(package, me)
            .map(|c| format!("{}{}", hex::encode(*c.hiding), hex::encode(*c.binding)));
        if sent.as_deref() != Some(logged.nonce_commitments.as_str()) {
            return Ok(Err(
                "the package does not carry this fiduciary's commitments of round 1".into(),
            ));
        }
        let wallet = signing::Wallet {
            wallet_key: match keys::decode_public_key(&package.wallet_key[..]) {
                Ok(k) => k,
                Err(e) => return Ok(Err(format!("bad wallet key: {e}"))),
            },
            fiduciaries: held.fiduciaries.len() as u32,
            threshold: held.threshold,
        };
        let session = match package.to_signing().and_then(|p| wallet.session(p)) {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("unusable package: {e}"))),
        };
        Ok(Ok((session, me)))
    }

    /// `GET /signatures`: the signing log, a page at a time.
    pub(crate) async fn signatures(&self, request: &Request) -> Result<Response, Error> {
        common::listing::<Logged>(&self.host, SIGNATURE_PREFIX, "signatures", request).await
    }
}

fn epoch_of(package: &SignPackage) -> u32 {
    package.epoch.unwrap_or(0)
}

fn package_commitments(package: &SignPackage, index: u32) -> Option<&NonceCommitments> {
    package
        .signers
        .iter()
        .find(|s| s.index == index)
        .map(|s| &s.commitments)
}
