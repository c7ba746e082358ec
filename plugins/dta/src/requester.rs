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
//! IDs in one request), checks every share and combines them. The exchange
//! with each D-TA and its checks are `milagro_dta_common`'s, shared with
//! the `mpin` plugin.

use futures::future::join_all;
use milagro_dta_common::Shares;
use milagro_mpin::{
    Curve, G1Affine, G1Projective, Group, PrimeCurveAffine, g1_to_hex, g2_to_hex, hash_id,
    wire::{self, SecretKind, ShareRequest, WireError},
};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Error, ErrorCode, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::{Dta, MAX_AUTHORITIES};

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
        let results = join_all(body.authorities.iter().map(|a| {
            milagro_dta_common::ask(
                &self.host,
                a,
                kind,
                &hashed,
                &sealed_request,
                self.reply_timeout,
            )
        }))
        .await;
        let (all, cids) = milagro_dta_common::gather(results)?;
        match kind {
            SecretKind::Server => {
                let mut combined = milagro_dta_common::combine_server(&all);
                let secret = Zeroizing::new(g2_to_hex(&combined));
                milagro_mpin::wipe(&mut combined);
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
}
