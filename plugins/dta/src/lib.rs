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
//! - **D-TA.** On first use it draws its master-secret share `s` and keeps
//!   it in the node's keystore (label [`MASTER_LABEL`], so an HSM backend can
//!   hold it). `GET /public-share` publishes `s*Q`. It answers `dta/request`
//!   envelopes with a `dta/share` envelope linked to the request: a client
//!   share `s*H(mpin_id)` or a server share `s*Q`, sealed to the requester,
//!   if its policy (`client_allow` / `server_allow`, deny by default) allows
//!   the requester's node ID; otherwise a refusal. Every decision is recorded
//!   (`GET /issuances`: who, kind, mpin_id, when, outcome), never a secret.
//! - **Requester.** `POST /secrets` asks every listed D-TA, checks each
//!   share with a pairing against the public share that came with it (pinned
//!   on first sight per D-TA), adds the shares and returns the combined
//!   secret. A share that fails its check fails the call and names its D-TA.
//!
//! The arithmetic lives in [`mpin`]. The plugin uses the host's facilities
//! only: no runtime, sockets or timers of its own.

#![forbid(unsafe_code)]

pub mod mpin;

use std::{sync::Arc, time::Duration};

use futures::{future::join_all, lock::Mutex};
use milagro_plugin_api::{
    Envelope, Error, ErrorCode, Host, NewEnvelope, Plugin, Request, Response, Route, Write,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use mpin::MasterShare;

/// Keystore label of this D-TA's master-secret share.
pub const MASTER_LABEL: &str = "dta/master-share";
/// Envelope kind of a share request (requester -> D-TA).
pub const REQUEST_KIND: &str = "dta/request";
/// Envelope kind of the answer (D-TA -> requester), linked to the request.
pub const SHARE_KIND: &str = "dta/share";

/// Longest accepted M-Pin ID, in bytes.
pub const MAX_MPIN_ID_LEN: usize = 1024;
/// Most D-TAs one request may name.
pub const MAX_AUTHORITIES: usize = 32;

const ISSUANCE_PREFIX: &[u8] = b"issuance/";
const PIN_PREFIX: &str = "pin/";

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Node IDs that may get client-secret shares from this D-TA.
    #[serde(default)]
    pub client_allow: Vec<String>,
    /// Node IDs that may get server-secret shares from this D-TA.
    #[serde(default)]
    pub server_allow: Vec<String>,
    /// How long a requester waits for each D-TA's answer (and for an
    /// authority's identity to resolve).
    #[serde(default = "default_reply_timeout_ms")]
    pub reply_timeout_ms: u64,
    /// Test-only fault injection; exists only in builds with the
    /// `test-faults` feature. `"wrong-share"`: answer with a share of the
    /// wrong secret (the public share stays right).
    #[cfg(feature = "test-faults")]
    #[serde(default)]
    pub test_fault: Option<String>,
}

fn default_reply_timeout_ms() -> u64 {
    15_000
}

/// Which secret a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    Client,
    Server,
}

impl SecretKind {
    fn parse(s: &str) -> Option<SecretKind> {
        match s {
            "client" => Some(SecretKind::Client),
            "server" => Some(SecretKind::Server),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SecretKind::Client => "client",
            SecretKind::Server => "server",
        }
    }
}

/// The sealed part of a `dta/request` envelope.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareRequest {
    v: u32,
    kind: SecretKind,
    mpin_id: String,
}

/// Kind of the signed envelope announcing a D-TA's public share.
const PUBLIC_SHARE_KIND: &str = "dta/public-share";
/// Store key of that envelope's CID.
const PUBLIC_SHARE_ENVELOPE: &[u8] = b"public-share-envelope";

/// The clear body of a `dta/share` envelope; the share itself is sealed.
#[derive(Debug, Serialize, Deserialize)]
struct ShareReply {
    v: u32,
    status: ReplyStatus,
    kind: Option<SecretKind>,
    /// The D-TA's public share `s*Q`, hex.
    public_share: Option<String>,
    /// Why the request was refused.
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ReplyStatus {
    Issued,
    Refused,
}

/// One decision of this D-TA, as kept and served by `GET /issuances`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Issuance {
    pub requester: String,
    pub kind: Option<SecretKind>,
    pub mpin_id: Option<String>,
    pub time_unix_ms: u64,
    /// `issued` or `refused`.
    pub outcome: String,
    pub reason: Option<String>,
    pub request_cid: String,
    pub reply_cid: Option<String>,
}

/// `POST /secrets` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsBody {
    kind: String,
    mpin_id: String,
    authorities: Vec<String>,
}

/// A test-only fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    #[cfg(feature = "test-faults")]
    WrongShare,
}

pub struct Dta {
    host: Host,
    client_allow: Vec<String>,
    server_allow: Vec<String>,
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
        host.info(format!(
            "dta plugin ready: {} client and {} server requester(s) allowed",
            config.client_allow.len(),
            config.server_allow.len()
        ));
        Ok(Dta {
            host,
            client_allow: config.client_allow,
            server_allow: config.server_allow,
            reply_timeout: Duration::from_millis(config.reply_timeout_ms),
            fault,
            master: Mutex::new(None),
        })
    }

    fn routes(&self) -> Vec<Route> {
        let hex = json!({"type": "string"});
        vec![
            Route::get("/public-share", "public_share")
                .summary("This D-TA's public share s*Q (compressed G2, hex)")
                .response(
                    200,
                    "The public share",
                    Some(json!({"type": "object", "properties": {
                        "node_id": {"type": "string"}, "public_share": hex,
                        "curve": {"type": "string"}, "hash_to_g1_dst": {"type": "string"}}})),
                ),
            Route::post("/secrets", "secrets")
                .summary("Obtain a client or server secret from several D-TAs and combine it")
                .json_body(json!({"type": "object", "required": ["kind", "mpin_id", "authorities"],
                    "properties": {"kind": {"type": "string", "enum": ["client", "server"]},
                                   "mpin_id": {"type": "string"},
                                   "authorities": {"type": "array", "items": {"type": "string"}}}}))
                .response(
                    200,
                    "The combined secret",
                    Some(json!({"type": "object", "properties": {
                        "kind": {"type": "string"}, "mpin_id": {"type": "string"},
                        "secret": hex, "authorities": {"type": "array", "items": {"type": "string"}},
                        "envelope_cids": {"type": "array", "items": {"type": "string"}}}})),
                )
                .response(400, "Bad input", None)
                .response(403, "A D-TA refused (its policy); the message names it", None)
                .response(404, "An authority could not be resolved", None)
                .response(422, "A D-TA's share failed its check; the message names it", None)
                .response(504, "A D-TA did not answer in time", None),
            Route::post("/check", "check")
                .summary("Check a combined client secret against a combined server secret: e(C, Q) == e(H(mpin_id), S)")
                .json_body(json!({"type": "object", "required": ["mpin_id", "client_secret", "server_secret"],
                    "properties": {"mpin_id": {"type": "string"}, "client_secret": hex,
                                   "server_secret": hex}}))
                .response(200, "Whether the pair matches", Some(json!({"type": "object",
                    "properties": {"match": {"type": "boolean"}}})))
                .response(400, "Bad input", None),
            Route::get("/issuances", "issuances")
                .summary("This D-TA's decisions: who, kind, mpin_id, when, outcome (never a secret)")
                .query("limit", "Page size (1-1000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000}))
                .query("cursor", "Key after which to continue", json!({"type": "string"})),
        ]
    }

    fn consumes(&self) -> Vec<String> {
        vec![REQUEST_KIND.into(), SHARE_KIND.into()]
    }

    async fn handle(&self, request: Request) -> Result<Response, Error> {
        match request.operation.as_str() {
            "public_share" => self.public_share().await,
            "secrets" => self.secrets(&request).await,
            "issuances" => self.issuances(&request).await,
            "check" => check(&request),
            other => Err(Error::not_found(format!("no operation {other}"))),
        }
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

    async fn public_share(&self) -> Result<Response, Error> {
        let master = self.master().await?;
        let me = self.host.identity().this_node().await?;
        let public_share = mpin::g2_to_hex(&master.public_share());
        let envelope_cid = self.public_share_envelope(&public_share).await?;
        Response::json(
            200,
            &json!({
                "node_id": me.id,
                "public_share": public_share,
                "curve": "BLS12-381",
                "hash_to_g1_dst": String::from_utf8_lossy(mpin::MPIN_DST),
                "envelope_cid": envelope_cid,
            }),
        )
    }

    /// The CID of a signed `dta/public-share` envelope announcing this
    /// D-TA's public share, published on IPFS once (addressed to no one:
    /// it is a signed public record anyone can fetch and audit).
    async fn public_share_envelope(&self, public_share: &str) -> Result<String, Error> {
        let store = self.host.store();
        if let Some(cid) = store.get(PUBLIC_SHARE_ENVELOPE).await? {
            return String::from_utf8(cid).map_err(|e| Error::internal(e.to_string()));
        }
        let body = json!({
            "v": 1,
            "public_share": public_share,
            "curve": "BLS12-381",
            "hash_to_g1_dst": String::from_utf8_lossy(mpin::MPIN_DST),
        });
        let cid = self
            .host
            .transport()
            .send(NewEnvelope {
                kind: PUBLIC_SHARE_KIND.into(),
                body: body.to_string().into_bytes(),
                ..NewEnvelope::default()
            })
            .await?;
        store.put(PUBLIC_SHARE_ENVELOPE, cid.as_bytes()).await?;
        Ok(cid)
    }

    fn allowed(&self, kind: SecretKind, requester: &str) -> bool {
        let list = match kind {
            SecretKind::Client => &self.client_allow,
            SecretKind::Server => &self.server_allow,
        };
        list.iter().any(|id| id == requester)
    }

    /// D-TA role: answers one `dta/request` envelope.
    async fn answer(&self, envelope: Envelope) -> Result<(), Error> {
        let parsed = envelope
            .sealed
            .as_ref()
            .ok_or("the request is not sealed")
            .and_then(|s| {
                serde_json::from_slice::<ShareRequest>(s).map_err(|_| "malformed request")
            })
            .and_then(|r| match r.v {
                1 => Ok(r),
                _ => Err("unsupported request version"),
            })
            .and_then(
                |r| match r.mpin_id.is_empty() || r.mpin_id.len() > MAX_MPIN_ID_LEN {
                    true => Err("mpin_id empty or too long"),
                    false => Ok(r),
                },
            );
        let (kind, mpin_id) = match &parsed {
            Ok(r) => (Some(r.kind), Some(r.mpin_id.clone())),
            Err(_) => (None, None),
        };
        let (reply, sealed, reason) = match parsed {
            Err(why) => (
                refusal(kind, why),
                Zeroizing::new(Vec::new()),
                Some(why.to_string()),
            ),
            Ok(r) if !self.allowed(r.kind, &envelope.sender) => {
                let why = format!("requester is not in its {}_allow list", r.kind.as_str());
                (refusal(kind, &why), Zeroizing::new(Vec::new()), Some(why))
            }
            Ok(r) => {
                let master = self.master().await?;
                let share = self.share(&master, r.kind, r.mpin_id.as_bytes());
                let reply = ShareReply {
                    v: 1,
                    status: ReplyStatus::Issued,
                    kind: Some(r.kind),
                    public_share: Some(mpin::g2_to_hex(&master.public_share())),
                    reason: None,
                };
                (reply, share, None)
            }
        };
        let outcome = match reply.status {
            ReplyStatus::Issued => "issued",
            ReplyStatus::Refused => "refused",
        };
        let body = serde_json::to_vec(&reply).map_err(|e| Error::internal(e.to_string()))?;
        let reply_cid = self
            .host
            .transport()
            .send(NewEnvelope {
                kind: SHARE_KIND.into(),
                recipients: vec![envelope.sender.clone()],
                links: vec![envelope.cid.clone()],
                body,
                sealed,
            })
            .await?;
        let now = self.host.now_unix_ms();
        let record = Issuance {
            requester: envelope.sender.clone(),
            kind,
            mpin_id,
            time_unix_ms: now,
            outcome: outcome.into(),
            reason,
            request_cid: envelope.cid.clone(),
            reply_cid: Some(reply_cid),
        };
        self.host.info(format!(
            "dta: {outcome} a {} share for requester {} (request {})",
            kind.map_or("?", SecretKind::as_str),
            envelope.sender,
            envelope.cid
        ));
        let key = [
            ISSUANCE_PREFIX,
            format!("{now:016x}/{}", envelope.cid).as_bytes(),
        ]
        .concat();
        let value = serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?;
        self.host.store().write(vec![Write::Put(key, value)]).await
    }

    /// The encoded share for a request (or a wrong one under a test fault).
    fn share(&self, master: &MasterShare, kind: SecretKind, mpin_id: &[u8]) -> Zeroizing<Vec<u8>> {
        match (kind, self.fault) {
            (SecretKind::Client, Fault::None) => {
                Zeroizing::new(master.client_share(mpin_id).to_compressed().to_vec())
            }
            (SecretKind::Server, Fault::None) => {
                Zeroizing::new(master.server_share().to_compressed().to_vec())
            }
            #[cfg(feature = "test-faults")]
            (SecretKind::Client, Fault::WrongShare) => {
                Zeroizing::new(master.wrong_client_share(mpin_id).to_compressed().to_vec())
            }
            #[cfg(feature = "test-faults")]
            (SecretKind::Server, Fault::WrongShare) => {
                Zeroizing::new(master.wrong_server_share().to_compressed().to_vec())
            }
        }
    }

    /// Requester role: `POST /secrets`.
    async fn secrets(&self, request: &Request) -> Result<Response, Error> {
        let body: SecretsBody = request.json()?;
        let kind = SecretKind::parse(&body.kind).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown kind {:?}: expected \"client\" or \"server\"",
                body.kind
            ))
        })?;
        if body.mpin_id.is_empty() {
            return Err(Error::bad_request("mpin_id must not be empty"));
        }
        if body.mpin_id.len() > MAX_MPIN_ID_LEN {
            return Err(Error::bad_request(format!(
                "mpin_id must be at most {MAX_MPIN_ID_LEN} bytes"
            )));
        }
        if body.authorities.is_empty() || body.authorities.len() > MAX_AUTHORITIES {
            return Err(Error::bad_request(format!(
                "authorities must list 1 to {MAX_AUTHORITIES} D-TA node IDs"
            )));
        }
        for (i, a) in body.authorities.iter().enumerate() {
            if body.authorities[..i].contains(a) {
                return Err(Error::bad_request(format!("authority {a} is listed twice")));
            }
        }
        for check in join_all(body.authorities.iter().map(|a| self.check_authority(a))).await {
            check?;
        }

        let request_json = Zeroizing::new(
            serde_json::to_vec(&ShareRequest {
                v: 1,
                kind,
                mpin_id: body.mpin_id.clone(),
            })
            .map_err(|e| Error::internal(e.to_string()))?,
        );
        let results = join_all(
            body.authorities
                .iter()
                .map(|a| self.obtain_share(a, kind, &body.mpin_id, &request_json)),
        )
        .await;

        let mut failures: Vec<Error> = Vec::new();
        let mut client_shares = Vec::new();
        let mut server_shares = Vec::new();
        let mut cids = Vec::new();
        for result in results {
            match result {
                Ok((share, request_cid, reply_cid)) => {
                    cids.push(request_cid);
                    cids.push(reply_cid);
                    match share {
                        Share::Client(p) => client_shares.push(p),
                        Share::Server(p) => server_shares.push(p),
                    }
                }
                Err(e) => failures.push(e),
            }
        }
        if let Some(first) = failures.first() {
            let message = failures
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::new(first.code, message));
        }
        let secret = match kind {
            SecretKind::Client => {
                Zeroizing::new(mpin::g1_to_hex(&mpin::combine_g1(&client_shares)))
            }
            SecretKind::Server => {
                Zeroizing::new(mpin::g2_to_hex(&mpin::combine_g2(&server_shares)))
            }
        };
        Response::json(
            200,
            &json!({
                "kind": kind.as_str(),
                "mpin_id": body.mpin_id,
                "secret": secret.as_str(),
                "authorities": body.authorities,
                "envelope_cids": cids,
            }),
        )
    }

    /// Resolves an authority's identity (bounded by the reply timeout).
    async fn check_authority(&self, id: &str) -> Result<(), Error> {
        let identities = self.host.identity();
        match self
            .host
            .within(self.reply_timeout, identities.resolve(id))
            .await
        {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(match e.code {
                ErrorCode::NotFound | ErrorCode::Unavailable | ErrorCode::Timeout => {
                    Error::not_found(format!("unknown authority {id}: {}", e.message))
                }
                ErrorCode::BadRequest => {
                    Error::bad_request(format!("malformed authority {id:?}: {}", e.message))
                }
                code => Error::new(code, format!("authority {id}: {}", e.message)),
            }),
            None => Err(Error::not_found(format!(
                "unknown authority {id}: its identity could not be resolved within {} ms",
                self.reply_timeout.as_millis()
            ))),
        }
    }

    /// Asks one D-TA and checks its answer; errors name the D-TA.
    async fn obtain_share(
        &self,
        dta: &str,
        kind: SecretKind,
        mpin_id: &str,
        request_json: &Zeroizing<Vec<u8>>,
    ) -> Result<(Share, String, String), Error> {
        let transport = self.host.transport();
        let request_cid = transport
            .send(NewEnvelope {
                kind: REQUEST_KIND.into(),
                recipients: vec![dta.to_string()],
                links: Vec::new(),
                body: Vec::new(),
                sealed: request_json.clone(),
            })
            .await
            .map_err(|e| {
                Error::new(
                    e.code,
                    format!("D-TA {dta}: request not sent: {}", e.message),
                )
            })?;
        let reply = transport
            .await_reply(&request_cid, SHARE_KIND, self.reply_timeout)
            .await
            .map_err(|e| match e.code {
                ErrorCode::Timeout => Error::timeout(format!(
                    "D-TA {dta} did not answer within {} ms",
                    self.reply_timeout.as_millis()
                )),
                code => Error::new(code, format!("D-TA {dta}: {}", e.message)),
            })?;
        let bad = |what: &str| Error::unprocessable(format!("D-TA {dta} sent {what}"));
        if reply.sender != dta {
            return Err(bad("a reply signed by another node"));
        }
        let body: ShareReply =
            serde_json::from_slice(&reply.body).map_err(|_| bad("a malformed reply"))?;
        if body.status == ReplyStatus::Refused {
            return Err(Error::forbidden(format!(
                "D-TA {dta} refused the {} secret request: {}",
                kind.as_str(),
                body.reason.as_deref().unwrap_or("no reason given")
            )));
        }
        if body.kind != Some(kind) {
            return Err(bad("a share of the wrong kind"));
        }
        let public_hex = body.public_share.ok_or_else(|| bad("no public share"))?;
        let public = mpin::g2_from_hex(&public_hex)
            .map_err(|e| bad(&format!("an invalid public share ({e})")))?;
        self.pin_public_share(dta, &public).await?;
        let sealed = reply.sealed.ok_or_else(|| bad("no sealed share"))?;
        let failed = || {
            Error::unprocessable(format!(
                "the {} share from D-TA {dta} failed its pairing check",
                kind.as_str()
            ))
        };
        let share = match kind {
            SecretKind::Client => {
                let p = mpin::g1_from_bytes(&sealed)
                    .map_err(|e| bad(&format!("an invalid client share ({e})")))?;
                if !mpin::verify_client_share(&p, mpin_id.as_bytes(), &public) {
                    return Err(failed());
                }
                Share::Client(p)
            }
            SecretKind::Server => {
                let p = mpin::g2_from_bytes(&sealed)
                    .map_err(|e| bad(&format!("an invalid server share ({e})")))?;
                if !mpin::verify_server_share(&p, &public) {
                    return Err(failed());
                }
                Share::Server(p)
            }
        };
        Ok((share, request_cid, reply.cid))
    }

    /// Trust on first use: the first public share seen from a D-TA is kept,
    /// and a different one later is refused.
    async fn pin_public_share(&self, dta: &str, public: &bls12_381::G2Affine) -> Result<(), Error> {
        let key = format!("{PIN_PREFIX}{dta}");
        let bytes = public.to_compressed();
        let store = self.host.store();
        match store.get(key.as_bytes()).await? {
            Some(pinned) if pinned.as_slice() == bytes.as_slice() => Ok(()),
            Some(_) => Err(Error::conflict(format!(
                "D-TA {dta} presented a public share different from the one pinned at first contact"
            ))),
            None => store.put(key.as_bytes(), &bytes).await,
        }
    }

    async fn issuances(&self, request: &Request) -> Result<Response, Error> {
        let page = self.host.store().page(ISSUANCE_PREFIX, request).await?;
        let records = page
            .entries
            .iter()
            .map(|(_, v)| serde_json::from_slice::<Issuance>(v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(e.to_string()))?;
        Response::json(
            200,
            &json!({ "issuances": records, "next_cursor": page.next_cursor }),
        )
    }
}

/// `POST /check` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    mpin_id: String,
    client_secret: String,
    server_secret: String,
}

impl Drop for CheckBody {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.client_secret.zeroize();
        self.server_secret.zeroize();
    }
}

/// `POST /check`: the M-Pin relation between a client and a server secret.
fn check(request: &Request) -> Result<Response, Error> {
    let body: CheckBody = request.json()?;
    if body.mpin_id.is_empty() {
        return Err(Error::bad_request("mpin_id must not be empty"));
    }
    let client = mpin::g1_from_hex(&body.client_secret)
        .map_err(|e| Error::bad_request(format!("client_secret: {e}")))?;
    let server = mpin::g2_from_hex(&body.server_secret)
        .map_err(|e| Error::bad_request(format!("server_secret: {e}")))?;
    let ok = mpin::secrets_match(&client, body.mpin_id.as_bytes(), &server);
    Response::json(200, &json!({ "match": ok }))
}

enum Share {
    Client(bls12_381::G1Affine),
    Server(bls12_381::G2Affine),
}

fn refusal(kind: Option<SecretKind>, why: &str) -> ShareReply {
    ShareReply {
        v: 1,
        status: ReplyStatus::Refused,
        kind,
        public_share: None,
        reason: Some(why.to_string()),
    }
}

milagro_plugin_api::export_plugin!(Dta);
