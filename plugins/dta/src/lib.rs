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

//! The D-TA plugin: a distributed trusted authority for M-Pin.
//!
//! Every node running it plays two roles (see `docs/dta.md`):
//!
//! - **D-TA** ([`authority`]). On first use it draws its master-secret share
//!   `s_i` and keeps it in the node's keystore (label [`MASTER_LABEL`], so an
//!   HSM backend can hold it). `GET /public-share` publishes its public key
//!   `P_i = s_i*g1` (G1) and a signed `dta/public-key` envelope of it. It
//!   answers `dta/request` envelopes with one `dta/share` envelope linked to
//!   the request, if its policy allows the requester: client shares
//!   `s_i*H(id)` for up to 256 IDs, each with a DLEQ proof bound to the
//!   request, or the server share `s_i*Q`, always sealed to the requester.
//!   No G2 multiple of `s_i` is ever published, logged or put in a clear
//!   body. Every decision is recorded (`GET /issuances`), never a secret.
//! - **Requester** ([`requester`]). `POST /secrets` asks every listed D-TA
//!   with one request carrying all the IDs, checks every client share's proof
//!   against the D-TA's public key (pinned on first sight) or every server
//!   share with a pairing, adds the shares and returns the combined secrets.
//!   A share that fails its check fails the call and names its D-TA.
//!
//! The arithmetic and the envelope bodies live in the `milagro-mpin` crate.
//! The plugin uses the host's facilities only: no runtime, sockets or timers
//! of its own.

#![forbid(unsafe_code)]

mod authority;
mod policy;
mod requester;

use std::{sync::Arc, time::Duration};

use futures::lock::Mutex;
use milagro_mpin::{MasterShare, wire};
use milagro_plugin_api::{Envelope, Error, Host, Plugin, Request, Response, Route};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use milagro_mpin::wire::SecretKind;
pub use policy::Policy;

/// Keystore label of this D-TA's master-secret share. Version 2: the share
/// under [`OLD_MASTER_LABEL`] was published as `s_i*Q` by the old design and
/// is never used again.
pub const MASTER_LABEL: &str = "dta/master-share-v2";
/// Keystore label of the old design's master-secret share (exposed).
pub const OLD_MASTER_LABEL: &str = "dta/master-share";
/// Envelope kind of a share request (requester -> D-TA).
pub const REQUEST_KIND: &str = wire::REQUEST_KIND;
/// Envelope kind of the answer (D-TA -> requester), linked to the request.
pub const SHARE_KIND: &str = wire::SHARE_KIND;
/// Most D-TAs one request may name.
pub const MAX_AUTHORITIES: usize = 32;

const ISSUANCE_PREFIX: &[u8] = b"issuance/";

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Node IDs that may get client-secret shares from this D-TA (`"self"`
    /// names this node).
    #[serde(default)]
    pub client_allow: Vec<String>,
    /// Node IDs that may get server-secret shares from this D-TA (`"self"`
    /// names this node).
    #[serde(default)]
    pub server_allow: Vec<String>,
    /// How long a requester waits for each D-TA's answer (and for an
    /// authority's identity to resolve).
    #[serde(default = "default_reply_timeout_ms")]
    pub reply_timeout_ms: u64,
    /// Test-only fault injection; exists only in builds with the
    /// `test-faults` feature. `"wrong-share"`: answer client shares of
    /// `s_i+1` (with the proof of the right one) and a server share of
    /// `s_i+1`; the public key stays right.
    #[cfg(feature = "test-faults")]
    #[serde(default)]
    pub test_fault: Option<String>,
}

fn default_reply_timeout_ms() -> u64 {
    15_000
}

/// One decision of this D-TA, as kept and served by `GET /issuances`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Issuance {
    /// The requester's node ID.
    pub requester: String,
    /// The kind asked for, when the request could be read.
    pub kind: Option<SecretKind>,
    /// The IDs asked for (client kind).
    #[serde(default)]
    pub mpin_ids: Vec<String>,
    /// When.
    pub time_unix_ms: u64,
    /// `issued` or `refused`.
    pub outcome: String,
    /// Why refused.
    pub reason: Option<String>,
    /// The request envelope.
    pub request_cid: String,
    /// The reply envelope.
    pub reply_cid: Option<String>,
}

/// A test-only fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    #[cfg(feature = "test-faults")]
    WrongShare,
}

/// The plugin.
pub struct Dta {
    host: Host,
    policy: Policy,
    reply_timeout: Duration,
    fault: Fault,
    master: Mutex<Option<Arc<MasterShare>>>,
}

impl Plugin for Dta {
    type Config = Config;
    const NAME: &'static str = "dta";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        if config.reply_timeout_ms == 0 {
            return Err(Error::bad_request("reply_timeout_ms must be positive"));
        }
        #[cfg(feature = "test-faults")]
        let fault = match config.test_fault.as_deref() {
            None => Fault::None,
            Some("wrong-share") => {
                host.warn("dta: TEST FAULT INJECTION ACTIVE: this D-TA answers wrong shares");
                Fault::WrongShare
            }
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "unknown test_fault {other:?} (known: \"wrong-share\")"
                )));
            }
        };
        #[cfg(not(feature = "test-faults"))]
        let fault = Fault::None;
        let policy = Policy::new(config.client_allow, config.server_allow)?;
        host.info(format!(
            "dta plugin ready: {} client and {} server requester(s) allowed",
            policy.client_count(),
            policy.server_count()
        ));
        Ok(Dta {
            host,
            policy,
            reply_timeout: Duration::from_millis(config.reply_timeout_ms),
            fault,
            master: Mutex::new(None),
        })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        let hex = json!({"type": "string"});
        let ids = json!({"type": "array", "minItems": 1, "maxItems": wire::MAX_MPIN_IDS,
                         "items": {"type": "string", "minLength": 1}});
        vec![
            Route::get("/public-share", "public_share", |p: &Self, _| Box::pin(p.public_share()))
                .summary("This D-TA's public key P_i = s_i*g1 (compressed G1, hex) and its signed dta/public-key envelope")
                .response(
                    200,
                    "The public key",
                    Some(json!({"type": "object", "properties": {
                        "node_id": {"type": "string"}, "public_key": hex,
                        "curve": {"type": "string"}, "hash_to_g1_dst": {"type": "string"},
                        "dleq_dst": {"type": "string"}, "envelope_cid": {"type": "string"}}})),
                ),
            Route::post("/secrets", "secrets", |p: &Self, r| Box::pin(p.secrets(r)))
                .summary("Obtain client secrets (for 1 to 256 M-Pin IDs) or the server secret from several D-TAs, check every share and combine them")
                .json_body(json!({"type": "object", "required": ["kind", "authorities"],
                    "properties": {"kind": {"type": "string", "enum": ["client", "server"]},
                                   "mpin_id": {"type": "string", "minLength": 1},
                                   "mpin_ids": ids,
                                   "authorities": {"type": "array", "items": {"type": "string"}}}}))
                .response(
                    200,
                    "The combined secret(s)",
                    Some(json!({"type": "object", "properties": {
                        "kind": {"type": "string"}, "mpin_id": {"type": "string"},
                        "secret": hex,
                        "secrets": {"type": "array", "items": {"type": "object", "properties": {
                            "mpin_id": {"type": "string"}, "secret": hex}}},
                        "authorities": {"type": "array", "items": {"type": "string"}},
                        "envelope_cids": {"type": "array", "items": {"type": "string"}}}})),
                )
                .response(400, "Bad input", None)
                .response(403, "A D-TA refused (its policy); the message names it", None)
                .response(404, "An authority could not be resolved", None)
                .response(409, "A D-TA's public key differs from the one pinned at first contact", None)
                .response(422, "A D-TA's share failed its proof or pairing check; the message names it", None)
                .response(504, "A D-TA did not answer in time", None),
            Route::get("/issuances", "issuances", |p: &Self, r| Box::pin(p.issuances(r)))
                .summary("This D-TA's decisions: who, kind, mpin_ids, when, outcome (never a secret)")
                .paged()
                .response(
                    200,
                    "A page of decisions",
                    Some(json!({"type": "object", "required": ["issuances", "next_cursor"], "properties": {
                        "issuances": {"type": "array", "items": {"type": "object"}},
                        "next_cursor": {"type": "string", "nullable": true}}})),
                ),
        ]
    }

    fn consumes(&self) -> Vec<String> {
        vec![REQUEST_KIND.into(), SHARE_KIND.into()]
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), Error> {
        match envelope.kind.as_str() {
            REQUEST_KIND => self.answer(envelope).await,
            // Replies are picked up by `await_reply`; nothing else to do.
            _ => Ok(()),
        }
    }
}

impl Dta {
    /// The master-secret share: from the keystore, drawn and stored on first use.
    async fn master(&self) -> Result<Arc<MasterShare>, Error> {
        let mut cached = self.master.lock().await;
        if let Some(m) = cached.as_ref() {
            return Ok(Arc::clone(m));
        }
        let keystore = self.host.keystore();
        let share = match keystore.get_secret(MASTER_LABEL).await? {
            Some(bytes) => MasterShare::from_bytes(&bytes).map_err(|e| {
                Error::internal(format!("the stored master-secret share is unusable: {e}"))
            })?,
            None => {
                if keystore.get_secret(OLD_MASTER_LABEL).await?.is_some() {
                    self.host.warn(format!(
                        "dta: the keystore holds a master-secret share of the old design \
                         ({OLD_MASTER_LABEL}); it was published as s*Q and is exposed, so it \
                         is not used: drawing a new one (see docs/dta.md, \"Upgrade\")"
                    ));
                }
                let share = MasterShare::generate().map_err(|e| {
                    Error::internal(format!("no randomness for a master-secret share: {e}"))
                })?;
                keystore
                    .put_secret(MASTER_LABEL, share.to_bytes().as_slice())
                    .await?;
                self.host.info("dta: drew a new master-secret share");
                share
            }
        };
        let share = Arc::new(share);
        *cached = Some(Arc::clone(&share));
        Ok(share)
    }

    async fn issuances(&self, request: &Request) -> Result<Response, Error> {
        let page = self.host.store().page(ISSUANCE_PREFIX, request).await?;
        let records: Vec<Issuance> = page.records()?;
        Response::json(
            200,
            &json!({ "issuances": records, "next_cursor": page.next_cursor }),
        )
    }
}

milagro_plugin_api::export_plugin!(Dta);
