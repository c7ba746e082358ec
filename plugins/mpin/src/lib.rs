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

//! The `mpin` plugin: an M-Pin authentication server (2-pass M-Pin) for
//! users enrolled through the D-TAs. See `docs/mpin.md`.
//!
//! - **Server secret.** On first use (or `POST /server-secret`) it obtains
//!   `S = sum s_i*Q` from the configured `authorities` (this node must be in
//!   their `server_allow`), checking every share by pairing ([`secret`]),
//!   and keeps it in the keystore. Until it holds `S`, logins answer 503
//!   and nothing counts as a failed attempt.
//! - **Login** (public routes, no operator token; the host rate-limits them
//!   per client address): `POST /pass1 {mpin_id, u}` -> `{session, y}`;
//!   `POST /pass2 {session, v}` -> 200 when `e(V, Q) * e(U + y*H(id), S) == 1`,
//!   else 401. Sessions are single-use, expire, and are bounded in number
//!   ([`sessions`]).
//! - **Lockout.** Failed logins per ID are counted in the plugin's store
//!   (durably, before the 401 is sent: a crash does not reset them); at
//!   `max_attempts` the ID gets 423 even with the right PIN, until the
//!   operator calls `POST /unblock`. Checks and counting for one ID are
//!   serialised, so parallel guesses cannot overrun the limit.

#![forbid(unsafe_code)]

pub mod secret;
pub mod sessions;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};

use futures::lock::Mutex;
use milagro_mpin::{
    g1_from_hex, random_scalar, scalar_to_be_hex, server::verify_login, wire::MAX_MPIN_ID_LEN,
};
use milagro_plugin_api::{Error, ErrorCode, Host, Plugin, Request, Response, Route};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;

use secret::ServerSecret;
use sessions::{SESSION_LEN, SessionId, Sessions};

/// Most D-TAs the config may name.
pub const MAX_AUTHORITIES: usize = 32;
/// Store prefix of the failure counters, followed by the M-Pin ID.
const FAILURES_PREFIX: &[u8] = b"failures/";
/// The name of this node in `authorities`.
const SELF: &str = "self";
/// How long after a failed attempt to obtain `S` before trying again.
const SECRET_RETRY_MS: u64 = 2_000;

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Node IDs of the D-TAs whose server shares make up `S`; `"self"`
    /// names this node (a node that is also a D-TA).
    pub authorities: Vec<String>,
    /// Failed logins after which an ID is blocked.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long a pass-1 session stays valid.
    #[serde(default = "default_session_ttl_ms")]
    pub session_ttl_ms: u64,
    /// Most sessions open at once.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// How long to wait for each D-TA's answer.
    #[serde(default = "default_reply_timeout_ms")]
    pub reply_timeout_ms: u64,
}

fn default_max_attempts() -> u32 {
    3
}

fn default_session_ttl_ms() -> u64 {
    30_000
}

fn default_max_sessions() -> usize {
    10_000
}

fn default_reply_timeout_ms() -> u64 {
    15_000
}

/// The failure count of one ID, as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Failures {
    count: u32,
    last_unix_ms: u64,
}

/// What the server-secret cache holds.
#[derive(Default)]
struct SecretState {
    secret: Option<Arc<ServerSecret>>,
    /// When the last attempt to obtain it failed, and why.
    failed: Option<(u64, Error)>,
}

pub struct Mpin {
    host: Host,
    authorities: Vec<String>,
    max_attempts: u32,
    reply_timeout: Duration,
    session_ttl_ms: u64,
    sessions: Sessions,
    secret: SyncMutex<SecretState>,
    /// Held while obtaining `S`; a login that finds it held answers 503.
    obtaining: Mutex<()>,
    /// One lock per ID with a login being checked.
    id_locks: SyncMutex<HashMap<String, Arc<Mutex<()>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pass1Body {
    mpin_id: String,
    u: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pass2Body {
    session: String,
    v: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnblockBody {
    mpin_id: String,
}

/// The body as `T`; any malformed body is a 400 (bad encoding).
fn body<T: DeserializeOwned>(request: &Request) -> Result<T, Error> {
    serde_json::from_slice(&request.body)
        .map_err(|e| Error::bad_request(format!("invalid request body: {e}")))
}

fn check_mpin_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_MPIN_ID_LEN {
        return Err(Error::bad_request(format!(
            "mpin_id must be 1 to {MAX_MPIN_ID_LEN} bytes"
        )));
    }
    Ok(())
}

fn failures_key(mpin_id: &str) -> Vec<u8> {
    [FAILURES_PREFIX, mpin_id.as_bytes()].concat()
}

fn locked(mpin_id: &str) -> Error {
    Error::new(
        ErrorCode::Locked,
        format!(
            "M-Pin ID {mpin_id:?} is blocked after too many wrong PINs; the operator can unblock it"
        ),
    )
}

fn parse_session(text: &str) -> Result<SessionId, Error> {
    let mut id = [0u8; SESSION_LEN];
    hex::decode_to_slice(text, &mut id).map_err(|_| {
        Error::bad_request(format!(
            "session must be {} hex characters",
            2 * SESSION_LEN
        ))
    })?;
    Ok(id)
}

impl Plugin for Mpin {
    type Config = Config;
    const NAME: &'static str = "mpin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        if config.authorities.is_empty() || config.authorities.len() > MAX_AUTHORITIES {
            return Err(Error::bad_request(format!(
                "authorities must list 1 to {MAX_AUTHORITIES} D-TA node IDs"
            )));
        }
        for (i, a) in config.authorities.iter().enumerate() {
            if config.authorities[..i].contains(a) {
                return Err(Error::bad_request(format!("authority {a} is listed twice")));
            }
        }
        if !(1..=1000).contains(&config.max_attempts) {
            return Err(Error::bad_request("max_attempts must be 1 to 1000"));
        }
        if config.session_ttl_ms == 0 || config.reply_timeout_ms == 0 || config.max_sessions == 0 {
            return Err(Error::bad_request(
                "session_ttl_ms, reply_timeout_ms and max_sessions must be positive",
            ));
        }
        host.info(format!(
            "mpin plugin ready: {} authorities, {} attempts, sessions of {} ms (at most {})",
            config.authorities.len(),
            config.max_attempts,
            config.session_ttl_ms,
            config.max_sessions
        ));
        Ok(Mpin {
            host,
            authorities: config.authorities,
            max_attempts: config.max_attempts,
            reply_timeout: Duration::from_millis(config.reply_timeout_ms),
            session_ttl_ms: config.session_ttl_ms,
            sessions: Sessions::new(config.max_sessions, config.session_ttl_ms),
            secret: SyncMutex::new(SecretState::default()),
            obtaining: Mutex::new(()),
            id_locks: SyncMutex::new(HashMap::new()),
        })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        let hex = json!({"type": "string", "pattern": "^[0-9a-fA-F]*$"});
        vec![
            Route::post("/pass1", "pass1", |p: &Self, r| Box::pin(p.pass1(r)))
                .public()
                .summary("M-Pin login, pass 1: the ID and U = x*H(id); answers a session and the challenge y")
                .json_body(json!({"type": "object", "required": ["mpin_id", "u"],
                    "properties": {"mpin_id": {"type": "string", "minLength": 1, "maxLength": MAX_MPIN_ID_LEN},
                                   "u": hex.clone()}}))
                .response(200, "The session and y (32-byte big-endian scalar, hex)",
                    Some(json!({"type": "object", "required": ["session", "y"],
                        "properties": {"session": {"type": "string"}, "y": {"type": "string"}}})))
                .response(400, "Bad encoding (ID length, U not a compressed G1 point)", None)
                .response(423, "The ID is blocked after too many wrong PINs", None)
                .response(503, "The server secret is not obtained yet, or too many logins in progress", None),
            Route::post("/pass2", "pass2", |p: &Self, r| Box::pin(p.pass2(r)))
                .public()
                .summary("M-Pin login, pass 2: V = -(x+y)*C; 200 when e(V, Q) * e(U + y*H(id), S) == 1")
                .json_body(json!({"type": "object", "required": ["session", "v"],
                    "properties": {"session": {"type": "string"}, "v": hex}}))
                .response(200, "Authenticated",
                    Some(json!({"type": "object", "required": ["authenticated", "mpin_id"],
                        "properties": {"authenticated": {"type": "boolean"},
                                       "mpin_id": {"type": "string"}}})))
                .response(400, "Bad encoding", None)
                .response(401, "Wrong PIN, or an unknown, used or expired session", None)
                .response(423, "The ID is blocked after too many wrong PINs", None)
                .response(503, "The server secret is not obtained yet", None),
            Route::post("/unblock", "unblock", |p: &Self, r| Box::pin(p.unblock(r)))
                .summary("Clear an ID's failed-login count (unblocks it)")
                .json_body(json!({"type": "object", "required": ["mpin_id"],
                    "properties": {"mpin_id": {"type": "string"}}}))
                .response(200, "Cleared", Some(json!({"type": "object", "properties": {
                    "mpin_id": {"type": "string"}, "was_blocked": {"type": "boolean"},
                    "failures": {"type": "integer"}}})))
                .response(400, "Bad input", None),
            Route::post("/server-secret", "obtain_secret", |p: &Self, _| Box::pin(p.obtain_secret()))
                .summary("Obtain the server secret from the authorities now (done on first login otherwise)")
                .response(200, "Held; the envelope CIDs of the exchange",
                    Some(json!({"type": "object", "properties": {"ready": {"type": "boolean"},
                        "envelope_cids": {"type": "array", "items": {"type": "string"}}}})))
                .response(403, "A D-TA refused (this node is not in its server_allow)", None)
                .response(409, "A D-TA's public key differs from the one pinned", None)
                .response(422, "A D-TA's share failed its pairing check; the message names it", None)
                .response(503, "A D-TA did not answer, or another attempt is under way", None),
            Route::get("/status", "status", |p: &Self, _| Box::pin(p.status()))
                .summary("Whether the server secret is held; authorities, limits, open sessions")
                .response(200, "Status", Some(json!({"type": "object"}))),
        ]
    }

    /// The D-TAs' replies, taken by `await_reply`; the dta plugin, if
    /// this node runs it, consumes them.
    fn awaits(&self) -> Vec<String> {
        vec![milagro_mpin::wire::SHARE_KIND.into()]
    }
}

impl Mpin {
    /// `POST /server-secret`: obtains `S` now rather than at the first login.
    async fn obtain_secret(&self) -> Result<Response, Error> {
        self.server_secret().await?;
        Response::json(
            200,
            &json!({"ready": true, "envelope_cids": secret::envelopes(&self.host).await?}),
        )
    }

    /// `S`: cached, else from the keystore, else from the authorities (one
    /// attempt at a time, and not again within [`SECRET_RETRY_MS`] of a
    /// failure, which is answered again meanwhile).
    async fn server_secret(&self) -> Result<Arc<ServerSecret>, Error> {
        if let Some(s) = &self.secret.lock().expect("secret lock").secret {
            return Ok(Arc::clone(s));
        }
        let Some(_obtaining) = self.obtaining.try_lock() else {
            return Err(Error::unavailable(
                "the server secret is being obtained from the authorities; retry shortly",
            ));
        };
        let now = self.host.now_unix_ms();
        {
            let state = self.secret.lock().expect("secret lock");
            if let Some(s) = &state.secret {
                return Ok(Arc::clone(s));
            }
            if let Some((at, e)) = &state.failed
                && now.saturating_sub(*at) < SECRET_RETRY_MS
            {
                return Err(e.clone());
            }
        }
        let obtained = match self.authority_ids().await {
            Ok(authorities) => match secret::load(&self.host, &authorities).await {
                Ok(Some(s)) => Ok(s),
                Ok(None) => secret::obtain(&self.host, &authorities, self.reply_timeout)
                    .await
                    .map(|(s, _)| s),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let mut state = self.secret.lock().expect("secret lock");
        match obtained {
            Ok(s) => {
                let s = Arc::new(s);
                state.secret = Some(Arc::clone(&s));
                state.failed = None;
                Ok(s)
            }
            Err(e) => {
                self.host.warn(format!(
                    "mpin: could not obtain the server secret: {}",
                    e.message
                ));
                state.failed = Some((self.host.now_unix_ms(), e.clone()));
                Err(e)
            }
        }
    }

    /// The configured authorities, `"self"` replaced by this node's ID.
    async fn authority_ids(&self) -> Result<Vec<String>, Error> {
        let mut ids = Vec::with_capacity(self.authorities.len());
        for a in &self.authorities {
            ids.push(match a.as_str() {
                SELF => self.host.identity().this_node().await?.id,
                _ => a.clone(),
            });
        }
        Ok(ids)
    }

    /// `S` for a login: whatever kept it from being obtained, a login
    /// answers 503 (and counts as nothing).
    async fn login_secret(&self) -> Result<Arc<ServerSecret>, Error> {
        self.server_secret().await.map_err(|e| match e.code {
            ErrorCode::Unavailable => e,
            _ => Error::unavailable(format!(
                "the server secret is not obtained yet: {}",
                e.message
            )),
        })
    }

    /// Runs `f` with the ID's lock held, so its count is read, checked and
    /// written by one login at a time.
    async fn with_id_lock<T>(&self, mpin_id: &str, f: impl AsyncFnOnce() -> T) -> T {
        let lock = Arc::clone(
            self.id_locks
                .lock()
                .expect("id locks")
                .entry(mpin_id.to_string())
                .or_default(),
        );
        let out = {
            let _held = lock.lock().await;
            f().await
        };
        let mut locks = self.id_locks.lock().expect("id locks");
        // Ours and the map's: nobody else waits on it.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(mpin_id);
        }
        out
    }

    async fn failures(&self, mpin_id: &str) -> Result<Failures, Error> {
        Ok(self
            .host
            .store()
            .get(&failures_key(mpin_id))
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    async fn pass1(&self, request: &Request) -> Result<Response, Error> {
        let b: Pass1Body = body(request)?;
        check_mpin_id(&b.mpin_id)?;
        let u = g1_from_hex(&b.u).map_err(|e| Error::bad_request(format!("u: {e}")))?;
        self.login_secret().await?;
        if self.failures(&b.mpin_id).await?.count >= self.max_attempts {
            return Err(locked(&b.mpin_id));
        }
        let y = random_scalar().map_err(|e| Error::internal(format!("no randomness: {e}")))?;
        let y_hex = scalar_to_be_hex(&y);
        let now = self.host.now_unix_ms();
        let session = self
            .sessions
            .open(b.mpin_id, u, y, now)
            .map_err(|e| Error::internal(format!("no randomness: {e}")))?
            .map_err(|_| Error::unavailable("too many logins in progress; retry shortly"))?;
        Response::json(200, &json!({"session": hex::encode(session), "y": y_hex}))
    }

    async fn pass2(&self, request: &Request) -> Result<Response, Error> {
        let b: Pass2Body = body(request)?;
        let session_id = parse_session(&b.session)?;
        let v = g1_from_hex(&b.v).map_err(|e| Error::bad_request(format!("v: {e}")))?;
        let secret = self.login_secret().await?;
        let now = self.host.now_unix_ms();
        let session = self.sessions.take(&session_id, now).ok_or_else(|| {
            Error::new(ErrorCode::Unauthorized, "unknown, used or expired session")
        })?;
        let mpin_id = session.mpin_id.clone();
        self.with_id_lock(&mpin_id, async || {
            let mut failures = self.failures(&mpin_id).await?;
            if failures.count >= self.max_attempts {
                return Err(locked(&mpin_id));
            }
            let right = verify_login(
                mpin_id.as_bytes(),
                &session.u,
                &session.y,
                &v,
                secret.point(),
            );
            let store = self.host.store();
            if right {
                if failures.count > 0 {
                    store.delete(&failures_key(&mpin_id)).await?;
                }
                return Response::json(200, &json!({"authenticated": true, "mpin_id": mpin_id}));
            }
            failures.count += 1;
            failures.last_unix_ms = self.host.now_unix_ms();
            let value =
                serde_json::to_vec(&failures).map_err(|e| Error::internal(e.to_string()))?;
            // Durable before the answer: a crash cannot give the guesser
            // its attempt back.
            store.put(&failures_key(&mpin_id), &value).await?;
            let left = self.max_attempts - failures.count;
            Err(Error::new(
                ErrorCode::Unauthorized,
                format!("authentication failed ({left} attempts left before this ID is blocked)"),
            ))
        })
        .await
    }

    async fn unblock(&self, request: &Request) -> Result<Response, Error> {
        let b: UnblockBody = body(request)?;
        check_mpin_id(&b.mpin_id)?;
        self.with_id_lock(&b.mpin_id, async || {
            let failures = self.failures(&b.mpin_id).await?;
            if failures.count > 0 {
                self.host.store().delete(&failures_key(&b.mpin_id)).await?;
                self.host.info(format!(
                    "mpin: the operator cleared {} failed logins of an ID",
                    failures.count
                ));
            }
            Response::json(
                200,
                &json!({"mpin_id": b.mpin_id, "was_blocked": failures.count >= self.max_attempts,
                        "failures": failures.count}),
            )
        })
        .await
    }

    async fn status(&self) -> Result<Response, Error> {
        let (ready, last_error) = {
            let state = self.secret.lock().expect("secret lock");
            (
                state.secret.is_some(),
                state.failed.as_ref().map(|(_, e)| e.message.clone()),
            )
        };
        Response::json(
            200,
            &json!({
                "ready": ready,
                "last_error": last_error,
                "authorities": self.authorities,
                "max_attempts": self.max_attempts,
                "session_ttl_ms": self.session_ttl_ms,
                "sessions": self.sessions.count(),
            }),
        )
    }
}

milagro_plugin_api::export_plugin!(Mpin);
