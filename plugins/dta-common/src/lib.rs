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

//! What the `dta` plugin's requester role and the `mpin` plugin share: one
//! exchange with a D-TA and the gathering of every D-TA's answer.
//!
//! [`ask`] sends a `dta/request` sealed to one D-TA, waits for its
//! `dta/share` reply linked to it, and checks the reply before any share
//! is used: signed by that D-TA, not refused, of the kind asked, its
//! public key `P_i` pinned at first sight (a different key later is a
//! 409), and each share proven: a client share by its DLEQ proof against
//! `P_i` and `H(id)` bound to the request CID, a server share by
//! `e(P_i, Q) == e(g1, S_i)`. Errors name the D-TA, never a share.
//! [`gather`] keeps the answers only when every D-TA's passed, and
//! otherwise joins all the failures into one error.

#![forbid(unsafe_code)]

use std::time::Duration;

use milagro_mpin::{
    G1Affine, G2Affine, combine_g2,
    wire::{
        self, REQUEST_KIND, ReplyStatus, SHARE_KIND, SealedShares, SecretKind, ShareReply,
        WireError,
    },
};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Error, ErrorCode, Host, NewEnvelope};

/// Store prefix of the pinned D-TA public keys (G1, compressed; the old
/// design's G2 pins under `pin/` are not read).
pub const PIN_PREFIX: &str = "pin-g1/";

/// The checked shares one D-TA gave. Zeroized on drop.
pub enum Shares {
    /// `s_i*H(id)`, one per M-Pin ID in the order asked.
    Client(Vec<G1Affine>),
    /// `s_i*Q`.
    Server(G2Affine),
}

impl Drop for Shares {
    fn drop(&mut self) {
        match self {
            Shares::Client(v) => v.iter_mut().for_each(milagro_mpin::wipe),
            Shares::Server(s) => milagro_mpin::wipe(s),
        }
    }
}

/// One D-TA's checked answer and the two envelopes of the exchange.
pub struct Answer {
    pub shares: Shares,
    pub request_cid: String,
    pub reply_cid: String,
}

/// Asks the D-TA `dta` for shares of `kind` with the serialized
/// [`wire::ShareRequest`] `sealed_request` and checks its reply (see the
/// module doc). `hashed` holds `(mpin_id, H(mpin_id))` in the request's
/// order (empty for a server share). Waits at most `timeout` for the
/// reply; not answering is [`ErrorCode::Timeout`].
pub async fn ask(
    host: &Host,
    dta: &str,
    kind: SecretKind,
    hashed: &[(&str, G1Affine)],
    sealed_request: &Zeroizing<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, Error> {
    let transport = host.transport();
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
        .await_reply(&request_cid, SHARE_KIND, &[dta], timeout)
        .await
        .map_err(|e| match e.code {
            ErrorCode::Timeout => Error::timeout(format!(
                "D-TA {dta} did not answer within {} ms",
                timeout.as_millis()
            )),
            code => Error::new(code, format!("D-TA {dta}: {}", e.message)),
        })?;
    let bad = |what: &str| Error::unprocessable(format!("D-TA {dta} sent {what}"));
    // The host waits only for a reply signed by `dta`; checked again here.
    if !host.identity().same_party(&reply.sender, dta).await? {
        return Err(bad("a reply signed by another node"));
    }
    let body = ShareReply::parse(&reply.body).map_err(|e| bad(&format!("a bad reply ({e})")))?;
    if body.status == ReplyStatus::Refused {
        // The reason names the list (`requester is not in its server_allow list`).
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
    pin_public_key(host, dta, &public).await?;
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
    Ok(Answer {
        shares,
        request_cid,
        reply_cid: reply.cid,
    })
}

/// Every D-TA's shares and the envelope CIDs (request, reply per D-TA),
/// when every answer passed; otherwise one error with the first failure's
/// code and every failure's message, and the shares that did pass are
/// dropped (zeroized).
pub fn gather(
    results: impl IntoIterator<Item = Result<Answer, Error>>,
) -> Result<(Vec<Shares>, Vec<String>), Error> {
    let mut all = Vec::new();
    let mut cids = Vec::new();
    let mut failures: Vec<Error> = Vec::new();
    for result in results {
        match result {
            Ok(answer) => {
                cids.push(answer.request_cid);
                cids.push(answer.reply_cid);
                all.push(answer.shares);
            }
            Err(e) => failures.push(e),
        }
    }
    match failures.first() {
        None => Ok((all, cids)),
        Some(first) => Err(Error::new(
            first.code,
            failures
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// The combined server secret `S = sum s_i*Q` of the server shares among
/// `shares` (client shares are ignored).
pub fn combine_server(shares: &[Shares]) -> G2Affine {
    combine_g2(shares.iter().filter_map(|s| match s {
        Shares::Server(p) => Some(p),
        Shares::Client(_) => None,
    }))
}

/// Trust on first use: the first public key seen from a D-TA is kept, and
/// a different one later is refused (409).
async fn pin_public_key(host: &Host, dta: &str, public: &G1Affine) -> Result<(), Error> {
    let key = format!("{PIN_PREFIX}{dta}");
    let bytes = public.to_compressed();
    let store = host.store();
    match store.get(key.as_bytes()).await? {
        Some(pinned) if pinned.as_slice() == bytes.as_slice() => Ok(()),
        Some(_) => Err(Error::conflict(format!(
            "D-TA {dta} presented a public key different from the one pinned at first contact"
        ))),
        None => store.put(key.as_bytes(), &bytes).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milagro_mpin::{PrimeCurveAffine, hash_id};

    fn answer(i: u8) -> Answer {
        Answer {
            shares: Shares::Client(vec![hash_id(&[i])]),
            request_cid: format!("req-{i}"),
            reply_cid: format!("rep-{i}"),
        }
    }

    #[test]
    fn gather_keeps_every_answer_in_order_when_all_pass() {
        let (shares, cids) = gather([Ok(answer(1)), Ok(answer(2))]).unwrap();
        assert_eq!(shares.len(), 2);
        assert!(matches!(&shares[1], Shares::Client(v) if v[0] == hash_id(&[2])));
        assert_eq!(cids, ["req-1", "rep-1", "req-2", "rep-2"]);
    }

    #[test]
    fn gather_names_every_failure_with_the_first_ones_code() {
        let err = gather([
            Ok(answer(1)),
            Err(Error::unprocessable("D-TA a failed its DLEQ proof")),
            Err(Error::timeout("D-TA b did not answer within 5 ms")),
        ])
        .err()
        .expect("a failure");
        assert_eq!(err.code, ErrorCode::Unprocessable);
        assert_eq!(
            err.message,
            "D-TA a failed its DLEQ proof; D-TA b did not answer within 5 ms"
        );
    }

    #[test]
    fn combine_server_adds_only_server_shares() {
        let g2 = G2Affine::generator();
        let shares = [
            Shares::Server(g2),
            Shares::Client(vec![hash_id(b"x")]),
            Shares::Server(g2),
        ];
        let twice =
            G2Affine::from(milagro_mpin::G2Projective::from(g2) * milagro_mpin::Scalar::from(2u64));
        assert_eq!(combine_server(&shares), twice);
    }
}
