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

//! Signing for Taproot wallets: the beneficiary takes part with its key b
//! and coordinates the two rounds with the fiduciaries (`docs/custody.md`
//! §12). `POST /wallets/{reference}/signatures {"message": "<32-byte hex>"}`
//! answers 201 with the BIP340 signature once the beneficiary and t
//! fiduciaries have signed; the wallet key is never assembled.
//!
//! Each attempt is a fresh session: round 1 asks every fiduciary not yet
//! found silent for nonce commitments and takes the first t; round 2 sends
//! those t the package and checks each share before aggregating. A
//! fiduciary silent in round 2 is left out of the next attempt (new
//! session, new nonces: a nonce never signs twice); a wrong share fails the
//! request with that fiduciary named.

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use milagro_custody::PublicKey;
use milagro_custody::messages::{
    Body, ByteArray, NonceCommitments, PackageSigner, SignCommitment, SignPackage, SignRequest,
    SignShare,
};
use milagro_custody::signing::{self, Signer};
use milagro_custody_common as common;
use milagro_plugin_api::{Error, Request, Response};
use serde::{Deserialize, Serialize};

use crate::{Beneficiary, Wallet};

/// Store prefix of this beneficiary's signing log.
pub(crate) const SIGNATURE_PREFIX: &str = "signature/";

/// `POST /wallets/{reference}/signatures`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    /// The 32-byte message (a BIP341 sighash), hex.
    message: String,
}

/// A signature made, as logged and answered (no secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Made {
    order_cid: String,
    reference: String,
    /// Hex.
    session: String,
    message: String,
    signature: String,
    /// The output key it verifies under (x-only, hex) and its address.
    output_key: String,
    address: String,
    /// The fiduciaries (node IDs) that signed.
    fiduciaries: Vec<String>,
    /// Every envelope of the successful session.
    envelope_cids: Vec<String>,
    /// Fiduciaries left out after being silent in an earlier attempt.
    silent: Vec<String>,
    attempts: u32,
    signed_at_unix_ms: u64,
}

/// Why one attempt did not sign.
enum Failed {
    /// These fiduciaries (indices) did not answer round 2: try without them.
    Silent(Vec<u32>),
    /// Give up with this error.
    Fatal(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Fatal(e)
    }
}

/// What every attempt of one request shares.
struct Job<'a> {
    wallet: &'a Wallet,
    keys: signing::Wallet,
    publics: BTreeMap<Signer, PublicKey>,
    fiduciaries: Vec<String>,
    b: milagro_custody::SecretScalar,
    message: [u8; 32],
}

impl Beneficiary {
    /// `POST /wallets/{reference}/signatures`.
    pub(crate) async fn sign(&self, request: &Request) -> Result<Response, Error> {
        let body: SignBody = request.json()?;
        let message: [u8; 32] = hex::decode(&body.message)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or_else(|| Error::bad_request("message must be 32 bytes in hex (64 digits)"))?;
        let wallet = self.find(request).await?;
        let notice = wallet.notice()?;
        if !notice.coin.is_taproot() {
            return Err(Error::conflict(format!(
                "a {} wallet does not sign: only btc-taproot and btc-testnet-taproot wallets do (redeem it instead)",
                notice.coin
            )));
        }
        if !wallet.node_key {
            return Err(Error::conflict(
                "this wallet's beneficiary key is its principal's per-order key (the order named no beneficiary), so it cannot sign here: redeem it instead",
            ));
        }
        let b = self
            .node_key()
            .await?
            .ok_or_else(|| Error::internal("this node's beneficiary key is missing"))?;
        let sharing = wallet.sharing()?;
        let wallet_key = notice.wallet_key().map_err(common::custody_error)?;
        let keys = signing::Wallet::of_sharing(&b.public_key(), &sharing, wallet_key)
            .map_err(common::custody_error)?;
        let job = Job {
            wallet: &wallet,
            keys,
            publics: signing::public_keys(&b.public_key(), &sharing),
            fiduciaries: sharing.fiduciaries.clone(),
            b,
            message,
        };
        let n = job.fiduciaries.len();
        let t = job.keys.fiduciaries_needed();
        let mut silent: Vec<u32> = Vec::new();
        // Each failed attempt leaves out at least one more fiduciary.
        for attempt in 1..=(n - t + 1) as u32 {
            match self.attempt(&job, &silent).await {
                Ok(mut made) => {
                    made.attempts = attempt;
                    made.silent = silent.iter().map(|&j| job.id(j).to_string()).collect();
                    let key = format!("{SIGNATURE_PREFIX}{}/{}", wallet.order_cid, made.session);
                    self.host.store().put_json(&key, &made).await?;
                    self.host.info(format!(
                        "signed for wallet {} with {} (attempt {attempt})",
                        notice.address,
                        made.fiduciaries.join(", ")
                    ));
                    return Response::json(201, &made);
                }
                Err(Failed::Silent(more)) => silent.extend(more),
                Err(Failed::Fatal(e)) => return Err(e),
            }
        }
        Err(Error::timeout(format!(
            "fewer than {t} fiduciaries took part in signing; silent: {}",
            silent
                .iter()
                .map(|&j| job.id(j))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// One session: both rounds with the first t fiduciaries (not in
    /// `silent`) to answer round 1.
    async fn attempt(&self, job: &Job<'_>, silent: &[u32]) -> Result<Made, Failed> {
        let session = signing::new_session_id().map_err(common::custody_error)?;
        let notice = job.wallet.notice()?;
        let epoch = (job.wallet.epoch > 0).then_some(job.wallet.epoch);
        let mut envelope_cids = Vec::new();

        // Round 1: every fiduciary not found silent, at once; the first t.
        let request = SignRequest {
            order_cid: notice.order_cid,
            epoch,
            session: ByteArray::new(session),
            message: ByteArray::new(job.message),
        };
        let mut pending: FuturesUnordered<_> = (1..=job.fiduciaries.len() as u32)
            .filter(|j| !silent.contains(j))
            .map(|j| self.exchange::<_, SignCommitment>(&request, j, job))
            .collect();
        let t = job.keys.fiduciaries_needed();
        let mut commitments = BTreeMap::new();
        let mut missing = Vec::new();
        while let Some((j, reply)) = pending.next().await {
            let (c, cids) = match reply {
                Ok((c, cids)) if *c.session == session => (c, cids),
                Ok(_) => {
                    missing.push(format!("{}: an answer for another session", job.id(j)));
                    continue;
                }
                Err(e) => {
                    missing.push(format!("{}: {}", job.id(j), e.message));
                    continue;
                }
            };
            match c.commitments.to_signing() {
                Ok(c) => {
                    envelope_cids.extend(cids);
                    commitments.insert(Signer::Fiduciary(j), c);
                    if commitments.len() == t {
                        break;
                    }
                }
                Err(e) => missing.push(format!("{}: bad commitments ({e})", job.id(j))),
            }
        }
        // The others' waits end here.
        drop(pending);
        if commitments.len() < t {
            return Err(Failed::Fatal(Error::timeout(format!(
                "round 1: fewer than {t} fiduciaries answered ({})",
                missing.join("; ")
            ))));
        }

        // Round 2: the package to those t; each share checked.
        let (nonces, mine) = signing::commit(&job.b).map_err(common::custody_error)?;
        commitments.insert(Signer::Beneficiary, mine);
        let mut signers = Vec::new();
        for (signer, c) in &commitments {
            signers.push(PackageSigner {
                index: (*signer).into(),
                commitments: NonceCommitments::from_signing(c).map_err(common::custody_error)?,
            });
        }
        let package =
            signing::package(&job.message, &commitments).map_err(common::custody_error)?;
        let session_keys = job.keys.session(package).map_err(common::custody_error)?;
        let wire = SignPackage {
            order_cid: notice.order_cid,
            epoch,
            session: ByteArray::new(session),
            message: ByteArray::new(job.message),
            wallet_key: ByteArray::new(notice.public_key),
            signers,
        };
        let mut pending: FuturesUnordered<_> = session_keys
            .fiduciaries()
            .iter()
            .map(|&j| self.exchange::<_, SignShare>(&wire, j, job))
            .collect();
        let mut shares = BTreeMap::from([(
            Signer::Beneficiary,
            session_keys
                .sign(Signer::Beneficiary, &job.b, nonces)
                .map_err(common::custody_error)?,
        )]);
        let mut quiet = Vec::new();
        while let Some((j, reply)) = pending.next().await {
            match reply {
                Ok((s, cids)) if *s.session == session => {
                    let signer = Signer::Fiduciary(j);
                    let verified = s.to_signing().and_then(|share| {
                        session_keys
                            .verify_share(signer, &job.publics[&signer], &share)
                            .map(|()| share)
                    });
                    let Ok(share) = verified else {
                        return Err(Failed::Fatal(Error::unprocessable(format!(
                            "fiduciary {} sent a signature share that does not verify (envelope {})",
                            job.id(j),
                            cids[1]
                        ))));
                    };
                    envelope_cids.extend(cids);
                    shares.insert(signer, share);
                }
                // Undelivered, unanswered or answering another session:
                // the next attempt goes without it.
                Ok(_) | Err(_) => quiet.push(j),
            }
        }
        if !quiet.is_empty() {
            self.host.warn(format!(
                "signing for order {}: no share from {} in round 2; trying again without",
                job.wallet.order_cid,
                quiet
                    .iter()
                    .map(|&j| job.id(j))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Err(Failed::Silent(quiet));
        }
        let signature = session_keys
            .aggregate(&job.publics, &shares)
            .map_err(common::custody_error)?;
        Ok(Made {
            order_cid: job.wallet.order_cid.clone(),
            reference: job.wallet.reference.clone(),
            session: hex::encode(session),
            message: hex::encode(job.message),
            signature: hex::encode(signature),
            output_key: hex::encode(job.keys.output_key().map_err(common::custody_error)?),
            address: notice.address.clone(),
            fiduciaries: session_keys
                .fiduciaries()
                .iter()
                .map(|&j| job.id(j).to_string())
                .collect(),
            envelope_cids,
            silent: Vec::new(),
            attempts: 0,
            signed_at_unix_ms: self.host.now_unix_ms(),
        })
    }

    /// Sends `body` to fiduciary `j` and waits for its reply of kind `R`;
    /// returns the reply and the two envelopes' CIDs (sent, reply).
    async fn exchange<B: Body, R: Body>(
        &self,
        body: &B,
        j: u32,
        job: &Job<'_>,
    ) -> (u32, Result<(R, [String; 2]), Error>) {
        let id = job.id(j);
        let exchanged = async {
            let sent = common::send(
                &self.host,
                body,
                vec![id.to_string()],
                vec![job.wallet.notice_cid.clone()],
            )
            .await?;
            let reply = self
                .host
                .transport()
                .await_reply(&sent, R::KIND, &[id], self.signing_timeout)
                .await?;
            let answer = common::open::<R>(&reply).map_err(Error::unprocessable)?;
            Ok((answer, [sent, reply.cid]))
        };
        (j, exchanged.await)
    }

    /// `GET /signatures`: the signatures made here, a page at a time.
    pub(crate) async fn signatures(&self, request: &Request) -> Result<Response, Error> {
        common::listing::<Made>(&self.host, SIGNATURE_PREFIX, "signatures", request).await
    }
}

impl Job<'_> {
    /// Fiduciary j's node ID.
    fn id(&self, j: u32) -> &str {
        &self.fiduciaries[j as usize - 1]
    }
}
