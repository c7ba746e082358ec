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

//! The D-TA role: the public key and the answers to `dta/request`.

use milagro_mpin::{
    G1Affine, G2Affine, MasterShare, g1_to_hex, g2_to_hex,
    wire::{
        self, ClientShare, PublicKeyRecord, ReplyStatus, SealedShares, SecretKind, ShareReply,
        ShareRequest,
    },
};
#[cfg(feature = "test-faults")]
use milagro_mpin::{G1Projective, G2Projective, PrimeCurveAffine, hash_id};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Envelope, Error, NewEnvelope, Response};
use serde_json::json;

use crate::{Dta, Fault, ISSUANCE_PREFIX, Issuance, SHARE_KIND};

/// Store key of the `dta/public-key` envelope's CID.
const PUBLIC_KEY_ENVELOPE: &[u8] = b"public-key-envelope";

impl Dta {
    /// `GET /public-share`: the public key `P_i` and its signed envelope.
    pub(crate) async fn public_share(&self) -> Result<Response, Error> {
        let master = self.master().await?;
        let me = self.host.identity().this_node().await?;
        let record = PublicKeyRecord::new(&master.public_key());
        let envelope_cid = self.public_key_envelope(&record).await?;
        Response::json(
            200,
            &json!({
                "node_id": me.id,
                "public_key": record.public_key,
                "curve": record.curve,
                "hash_to_g1_dst": record.hash_to_g1_dst,
                "dleq_dst": record.dleq_dst,
                "envelope_cid": envelope_cid,
            }),
        )
    }

    /// The CID of a signed `dta/public-key` envelope announcing this D-TA's
    /// public key, published on IPFS once (addressed to no one: a signed
    /// public record anyone can fetch and audit).
    async fn public_key_envelope(&self, record: &PublicKeyRecord) -> Result<String, Error> {
        let store = self.host.store();
        if let Some(cid) = store.get(PUBLIC_KEY_ENVELOPE).await? {
            return String::from_utf8(cid).map_err(|e| Error::internal(e.to_string()));
        }
        let body = serde_json::to_vec(record).map_err(|e| Error::internal(e.to_string()))?;
        let cid = self
            .host
            .transport()
            .send(NewEnvelope {
                kind: wire::PUBLIC_KEY_KIND.into(),
                body,
                ..NewEnvelope::default()
            })
            .await?;
        store.put(PUBLIC_KEY_ENVELOPE, cid.as_bytes()).await?;
        Ok(cid)
    }

    /// D-TA role: answers one `dta/request` envelope with one `dta/share`.
    pub(crate) async fn answer(&self, envelope: Envelope) -> Result<(), Error> {
        let parsed = match envelope.sealed.as_ref() {
            None => Err("the request is not sealed".to_string()),
            Some(s) => ShareRequest::parse(s).map_err(|e| e.to_string()),
        };
        let me = self.host.identity().this_node().await?.id;
        let (kind, mpin_ids) = match &parsed {
            Ok(r) => (Some(r.kind), r.mpin_ids.clone()),
            Err(_) => (None, Vec::new()),
        };
        let refusal = |why: String| {
            let reply = ShareReply {
                v: wire::WIRE_VERSION,
                status: ReplyStatus::Refused,
                kind,
                public_key: None,
                count: None,
                reason: Some(why.clone()),
            };
            (reply, Zeroizing::new(Vec::new()), Some(why))
        };
        let (reply, sealed, reason) = match parsed {
            Err(why) => refusal(why),
            Ok(r) if !self.policy.allows(r.kind, &envelope.sender, &me) => refusal(format!(
                "requester is not in its {}_allow list",
                r.kind.as_str()
            )),
            Ok(r) => {
                let master = self.master().await?;
                let sealed = self.shares(&master, &r, &envelope.cid)?;
                let reply = ShareReply {
                    v: wire::WIRE_VERSION,
                    status: ReplyStatus::Issued,
                    kind: Some(r.kind),
                    public_key: Some(g1_to_hex(&master.public_key())),
                    count: Some(r.mpin_ids.len().max(1)),
                    reason: None,
                };
                (reply, sealed, None)
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
        self.host.info(format!(
            "dta: {outcome} {} {} share(s) for requester {} (request {})",
            mpin_ids.len().max(1),
            kind.map_or("?", SecretKind::as_str),
            envelope.sender,
            envelope.cid
        ));
        let now = self.host.now_unix_ms();
        let record = Issuance {
            requester: envelope.sender.clone(),
            kind,
            mpin_ids,
            time_unix_ms: now,
            outcome: outcome.into(),
            reason,
            request_cid: envelope.cid.clone(),
            reply_cid: Some(reply_cid),
        };
        let key = [
            ISSUANCE_PREFIX,
            format!("{now:016x}/{}", envelope.cid).as_bytes(),
        ]
        .concat();
        self.host.store().put_json(key, &record).await
    }

    /// The sealed body for an allowed request: a proven client share per
    /// ID, or the server share (wrong ones under a test fault).
    fn shares(
        &self,
        master: &MasterShare,
        request: &ShareRequest,
        request_cid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut sealed = SealedShares::default();
        match request.kind {
            SecretKind::Client => {
                let context = wire::proof_context(request_cid);
                for id in &request.mpin_ids {
                    let (share, proof) = master
                        .prove_client_share(id.as_bytes(), &context)
                        .map_err(|e| Error::internal(format!("no randomness for a proof: {e}")))?;
                    let share = self.faulty_client_share(share, id.as_bytes());
                    sealed.client_shares.push(ClientShare {
                        mpin_id: id.clone(),
                        share: g1_to_hex(&share),
                        proof: proof.to_hex(),
                    });
                }
            }
            SecretKind::Server => {
                let share = self.faulty_server_share(master.server_share());
                sealed.server_share = Some(g2_to_hex(&share));
            }
        }
        serde_json::to_vec(&sealed)
            .map(Zeroizing::new)
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// `(s_i+1)*H(id)` under the wrong-share fault, else the share itself.
    fn faulty_client_share(&self, share: G1Affine, mpin_id: &[u8]) -> G1Affine {
        match self.fault {
            Fault::None => {
                let _ = mpin_id;
                share
            }
            #[cfg(feature = "test-faults")]
            Fault::WrongShare => G1Affine::from(G1Projective::from(share) + hash_id(mpin_id)),
        }
    }

    /// `(s_i+1)*Q` under the wrong-share fault, else the share itself.
    fn faulty_server_share(&self, share: G2Affine) -> G2Affine {
        match self.fault {
            Fault::None => share,
            #[cfg(feature = "test-faults")]
            Fault::WrongShare => G2Affine::from(G2Projective::from(share) + G2Affine::generator()),
        }
    }
}
