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

//! The requester role: `POST /secrets` asks every listed D-TA once (all the
//! IDs in one request), checks every share and combines them.

use futures::future::join_all;
use milagro_mpin::{
    G1Affine, G1Projective, G2Affine, combine_g2, g1_to_hex, g2_to_hex, hash_id,
    wire::{self, ReplyStatus, SealedShares, SecretKind, ShareReply, ShareRequest, WireError},
};
use milagro_plugin_api::{Error, ErrorCode, NewEnvelope, Request, Response};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::{Dta, MAX_AUTHORITIES, REQUEST_KIND, SHARE_KIND};

/// Store prefix of pinned public keys (G1; the old design's G2 pins under
/// `pin/` are not read).
const PIN_PREFIX: &str = "pin-g1/";

/// `POST /secrets` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsBody {
    kind: String,
    #[serde(default)]
    mpin_id: Option<String>,
    #[serde(default)]
    mpin_ids: Option<Vec<String>>,
    authorities: Vec<String>,
}

/// What one D-TA gave.
enum Shares {
    Client(Vec<G1Affine>),
    Server(G2Affine),
}

impl Drop for Shares {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            Shares::Client(v) => v.iter_mut().for_each(Zeroize::zeroize),
            Shares::Server(s) => s.zeroize(),
        }
    }
}

impl Dta {
    /// Requester role: `POST /secrets`.
    pub(crate) async fn secrets(&self, request: &Request) -> Result<Response, Error> {
        let body: SecretsBody = request.json()?;
        let kind = SecretKind::parse(&body.kind).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown kind {:?}: expected \"client\" or \"server\"",
                body.kind
            ))
        })?;
        let (ids, batch) = match (kind, body.mpin_id, body.mpin_ids) {
            (SecretKind::Server, None, None) => (Vec::new(), false),
            (SecretKind::Server, _, _) => {
                return Err(Error::bad_request(
                    "a server secret is not per M-Pin ID: give neither mpin_id nor mpin_ids",
                ));
            }
            (SecretKind::Client, Some(id), None) => (vec![id], false),
            (SecretKind::Client, None, Some(ids)) => (ids, true),
            (SecretKind::Client, _, _) => {
                return Err(Error::bad_request(
                    "a client secret needs exactly one of mpin_id and mpin_ids",
                ));
            }
        };
        let share_request = match kind {
            SecretKind::Client => ShareRequest::client(ids),
            SecretKind::Server => ShareRequest::server(),
        };
        share_request.validate().map_err(|e| match e {
            WireError::IdCount(_) => Error::bad_request(format!(
                "mpin_ids must list 1 to {} M-Pin IDs",
                wire::MAX_MPIN_IDS
            )),
            WireError::IdLength => Error::bad_request(format!(
                "an mpin_id must be 1 to {} bytes",
                wire::MAX_MPIN_ID_LEN
            )),
            WireError::Duplicate => Error::bad_request("an mpin_id is listed twice"),
            other => Error::bad_request(other.to_string()),
        })?;
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

        // H(id) once per ID, for every D-TA's proofs.
        let hashed: Vec<(&str, G1Affine)> = share_request
            .mpin_ids
            .iter()
            .map(|id| (id.as_str(), hash_id(id.as_bytes())))
            .collect();
        let sealed_request = Zeroizing::new(
            serde_json::to_vec(&share_request).map_err(|e| Error::internal(e.to_string()))?,
        );
        let results = join_all(
            body.authorities
                .iter()
                .map(|a| self.obtain_shares(a, kind, &hashed, &sealed_request)),
        )
        .await;

        let mut failures: Vec<Error> = Vec::new();
        let mut all = Vec::new();
        let mut cids = Vec::new();
        for result in results {
            match result {
                Ok((shares, request_cid, reply_cid)) => {
                    cids.push(request_cid);
                    cids.push(reply_cid);
                    all.push(shares);
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
        match kind {
            SecretKind::Server => {
                let server: Vec<G2Affine> = all
                    .iter()
                    .filter_map(|s| match s {
                        Shares::Server(p) => Some(*p),
                        Shares::Client(_) => None,
                    })
                    .collect();
                let secret = Zeroizing::new(g2_to_hex(&combine_g2(&server)));
                Response::json(
                    200,
                    &json!({
                        "kind": kind.as_str(),
                        "secret": secret.as_str(),
                        "authorities": body.authorities,
                        "envelope_cids": cids,
                    }),
                )
            }
            SecretKind::Client => {
                let mut sums = vec![G1Projective::identity(); hashed.len()];
                for shares in &all {
                    if let Shares::Client(v) = shares {
                        for (sum, share) in sums.iter_mut().zip(v) {
                            *sum += share;
                        }
                    }
                }
                let mut affine = vec![G1Affine::identity(); sums.len()];
                G1Projective::batch_normalize(&sums, &mut affine);
                let secrets: Vec<Zeroizing<String>> = affine
                    .iter()
                    .map(|p| Zeroizing::new(g1_to_hex(p)))
                    .collect();
                let response = if batch {
                    json!({
                        "kind": kind.as_str(),
                        "secrets": hashed.iter().zip(&secrets).map(|((id, _), s)| json!({
                            "mpin_id": id, "secret": s.as_str()})).collect::<Vec<_>>(),
                        "authorities": body.authorities,
                        "envelope_cids": cids,
                    })
                } else {
                    json!({
                        "kind": kind.as_str(),
                        "mpin_id": hashed[0].0,
                        "secret": secrets[0].as_str(),
                        "authorities": body.authorities,
                        "envelope_cids": cids,
                    })
                };
                Response::json(200, &response)
            }
        }
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
    async fn obtain_shares(
        &self,
        dta: &str,
        kind: SecretKind,
        hashed: &[(&str, G1Affine)],
        sealed_request: &Zeroizing<Vec<u8>>,
    ) -> Result<(Shares, String, String), Error> {
        let transport = self.host.transport();
        let request_cid = transport
            .send(NewEnvelope {
                kind: REQUEST_KIND.into(),
                recipients: vec![dta.to_string()],
                links: Vec::new(),
                body: Vec::new(),
                sealed: sealed_request.clone(),
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
        let body =
            ShareReply::parse(&reply.body).map_err(|e| bad(&format!("a bad reply ({e})")))?;
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
        let public = body
            .public_key()
            .map_err(|e| bad(&format!("a bad public key ({e})")))?;
        self.pin_public_key(dta, &public).await?;
        let sealed = reply
            .sealed
            .as_ref()
            .ok_or_else(|| bad("no sealed shares"))?;
        let sealed =
            SealedShares::parse(sealed).map_err(|e| bad(&format!("bad sealed shares ({e})")))?;
        let shares = match kind {
            SecretKind::Client => {
                let context = wire::proof_context(&request_cid);
                let shares = sealed
                    .open_client_shares(&public, hashed, &context)
                    .map_err(|e| match e {
                        WireError::Proof { index } => Error::unprocessable(format!(
                            "the client share from D-TA {dta} for {:?} failed its DLEQ proof",
                            hashed[index].0
                        )),
                        other => bad(&format!("bad client shares ({other})")),
                    })?;
                Shares::Client(shares)
            }
            SecretKind::Server => {
                let share = sealed.open_server_share(&public).map_err(|e| match e {
                    WireError::Pairing => Error::unprocessable(format!(
                        "the server share from D-TA {dta} failed its pairing check e(P, Q) == e(g1, S)"
                    )),
                    other => bad(&format!("a bad server share ({other})")),
                })?;
                Shares::Server(share)
            }
        };
        Ok((shares, request_cid, reply.cid))
    }

    /// Trust on first use: the first public key seen from a D-TA is kept,
    /// and a different one later is refused.
    async fn pin_public_key(&self, dta: &str, public: &G1Affine) -> Result<(), Error> {
        let key = format!("{PIN_PREFIX}{dta}");
        let bytes = public.to_compressed();
        let store = self.host.store();
        match store.get(key.as_bytes()).await? {
            Some(pinned) if pinned.as_slice() == bytes.as_slice() => Ok(()),
            Some(_) => Err(Error::conflict(format!(
                "D-TA {dta} presented a public key different from the one pinned at first contact"
            ))),
            None => store.put(key.as_bytes(), &bytes).await,
        }
    }
}
