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

//! The bodies of the D-TA's envelopes, shared by the D-TA plugin (both
//! roles) and the `mpin` authentication plugin (a server-share requester).
//!
//! - `dta/request` (requester -> D-TA): no clear body; sealed
//!   [`ShareRequest`]: a kind and, for client secrets, 1 to
//!   [`MAX_MPIN_IDS`] M-Pin IDs.
//! - `dta/share` (D-TA -> requester, linked to the request): clear
//!   [`ShareReply`] (issued or refused, the D-TA's public key `P_i` in G1,
//!   never a G2 value); sealed [`SealedShares`]: one client share and DLEQ
//!   proof per requested ID, in request order, or the server share.
//! - `dta/public-key` (addressed to no one): clear [`PublicKeyRecord`], the
//!   D-TA's signed public key.
//!
//! Every body carries `v` = [`WIRE_VERSION`]; version 1 (the design that
//! published `s_i*Q`) is refused.

use blstrs::{G1Affine, G2Affine};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::{BatchItem, DecodeError, DleqProof, g1_from_hex, g2_from_hex, verify_server_share};

/// Envelope kind of a share request (requester -> D-TA).
pub const REQUEST_KIND: &str = "dta/request";
/// Envelope kind of the answer (D-TA -> requester), linked to the request.
pub const SHARE_KIND: &str = "dta/share";
/// Envelope kind of a D-TA's signed public key, addressed to no one.
pub const PUBLIC_KEY_KIND: &str = "dta/public-key";
/// Version of every body in this module.
pub const WIRE_VERSION: u32 = 2;
/// Most M-Pin IDs one request may carry.
pub const MAX_MPIN_IDS: usize = 256;
/// Longest accepted M-Pin ID, in bytes.
pub const MAX_MPIN_ID_LEN: usize = 1024;
/// Curve name in public-key records.
pub const CURVE: &str = "BLS12-381";

/// Why a body is refused. Says nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not the JSON of the expected body.
    #[error("malformed body")]
    Malformed,
    /// A version other than [`WIRE_VERSION`].
    #[error("unsupported version {0} (this node speaks version {WIRE_VERSION})")]
    Version(u32),
    /// A client request with no ID, or more than [`MAX_MPIN_IDS`].
    #[error("a client request carries 1 to {MAX_MPIN_IDS} M-Pin IDs, not {0}")]
    IdCount(usize),
    /// A server request that names IDs.
    #[error("a server request carries no M-Pin ID")]
    ServerWithIds,
    /// An empty ID or one longer than [`MAX_MPIN_ID_LEN`].
    #[error("an M-Pin ID is empty or longer than {MAX_MPIN_ID_LEN} bytes")]
    IdLength,
    /// The same ID twice in one request.
    #[error("an M-Pin ID is listed twice")]
    Duplicate,
    /// The reply does not answer the request (count, order, kind).
    #[error("the reply does not match the request: {0}")]
    Mismatch(&'static str),
    /// A point or proof does not decode.
    #[error("{what}: {error}")]
    Decode {
        /// Which field.
        what: &'static str,
        /// Why.
        error: DecodeError,
    },
    /// A client share's DLEQ proof does not verify (names the ID's index in
    /// the request, not the share).
    #[error("the DLEQ proof of the client share for ID #{index} does not verify")]
    Proof {
        /// Index of the ID in the request.
        index: usize,
    },
    /// A server share fails `e(P_i, Q) == e(g1, S_i)`.
    #[error("the server share fails its pairing check against the public key")]
    Pairing,
}

/// Which secret a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// Client-secret shares `s_i*H(id)` (G1), for an enrolment service.
    Client,
    /// The server-secret share `s_i*Q` (G2), for an authentication server.
    Server,
}

impl SecretKind {
    /// `"client"` or `"server"`.
    pub fn parse(s: &str) -> Option<SecretKind> {
        match s {
            "client" => Some(SecretKind::Client),
            "server" => Some(SecretKind::Server),
            _ => None,
        }
    }

    /// The name [`SecretKind::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Client => "client",
            SecretKind::Server => "server",
        }
    }
}

/// The sealed body of a `dta/request` envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// [`WIRE_VERSION`].
    pub v: u32,
    /// Which secret.
    pub kind: SecretKind,
    /// The IDs (client kind only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpin_ids: Vec<String>,
}

/// Checks one M-Pin ID's length.
pub fn check_mpin_id(id: &str) -> Result<(), WireError> {
    if id.is_empty() || id.len() > MAX_MPIN_ID_LEN {
        return Err(WireError::IdLength);
    }
    Ok(())
}

impl ShareRequest {
    /// A request for client shares for `mpin_ids`.
    pub fn client(mpin_ids: Vec<String>) -> ShareRequest {
        ShareRequest {
            v: WIRE_VERSION,
            kind: SecretKind::Client,
            mpin_ids,
        }
    }

    /// A request for the server share.
    pub fn server() -> ShareRequest {
        ShareRequest {
            v: WIRE_VERSION,
            kind: SecretKind::Server,
            mpin_ids: Vec::new(),
        }
    }

    /// Parses and [`ShareRequest::validate`]s a sealed request.
    pub fn parse(bytes: &[u8]) -> Result<ShareRequest, WireError> {
        let r: ShareRequest = serde_json::from_slice(bytes).map_err(|_| WireError::Malformed)?;
        r.validate()?;
        Ok(r)
    }

    /// The version, the ID count (1..=[`MAX_MPIN_IDS`] for client, none for
    /// server), each ID's length, no duplicates.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.v != WIRE_VERSION {
            return Err(WireError::Version(self.v));
        }
        match self.kind {
            SecretKind::Server if !self.mpin_ids.is_empty() => Err(WireError::ServerWithIds),
            SecretKind::Server => Ok(()),
            SecretKind::Client => {
                let n = self.mpin_ids.len();
                if n == 0 || n > MAX_MPIN_IDS {
                    return Err(WireError::IdCount(n));
                }
                for id in &self.mpin_ids {
                    check_mpin_id(id)?;
                }
                let mut sorted: Vec<&str> = self.mpin_ids.iter().map(String::as_str).collect();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(WireError::Duplicate);
                }
                Ok(())
            }
        }
    }
}

/// The DLEQ context of the shares answering the request with envelope CID
/// `request_cid`: `"MILAGRO-MPIN-V1 dta/request " || request_cid`. The
/// request's CID covers its signed envelope (sender, recipient, sealed
/// IDs), so a proof answers that request only.
pub fn proof_context(request_cid: &str) -> Vec<u8> {
    [
        b"MILAGRO-MPIN-V1 dta/request ".as_slice(),
        request_cid.as_bytes(),
    ]
    .concat()
}

/// Whether a D-TA issued or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyStatus {
    /// The sealed part holds the shares.
    Issued,
    /// `reason` says why not.
    Refused,
}

/// The clear body of a `dta/share` envelope: public facts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareReply {
    /// [`WIRE_VERSION`].
    pub v: u32,
    /// Issued or refused.
    pub status: ReplyStatus,
    /// The kind asked for, when the request could be read.
    pub kind: Option<SecretKind>,
    /// The D-TA's public key `P_i` (compressed G1, hex), when issued.
    pub public_key: Option<String>,
    /// How many shares the sealed part holds, when issued.
    #[serde(default)]
    pub count: Option<usize>,
    /// Why the request was refused.
    pub reason: Option<String>,
}

impl ShareReply {
    /// Parses a clear body, refusing other versions.
    pub fn parse(bytes: &[u8]) -> Result<ShareReply, WireError> {
        let r: ShareReply = serde_json::from_slice(bytes).map_err(|_| WireError::Malformed)?;
        if r.v != WIRE_VERSION {
            return Err(WireError::Version(r.v));
        }
        Ok(r)
    }

    /// The public key, decoded.
    pub fn public_key(&self) -> Result<G1Affine, WireError> {
        let hex = self
            .public_key
            .as_deref()
            .ok_or(WireError::Mismatch("no public key"))?;
        g1_from_hex(hex).map_err(|error| WireError::Decode {
            what: "public key",
            error,
        })
    }
}

/// One issued client share with its proof.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientShare {
    /// The ID it is for.
    pub mpin_id: String,
    /// `s_i*H(mpin_id)`, compressed G1, hex.
    pub share: String,
    /// The [`DleqProof`], hex.
    pub proof: String,
}

impl std::fmt::Debug for ClientShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientShare")
            .field("mpin_id", &self.mpin_id)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        self.share.zeroize();
    }
}

/// The sealed body of a `dta/share` envelope. Zeroized on drop.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedShares {
    /// [`WIRE_VERSION`].
    pub v: u32,
    /// Client kind: one per requested ID, in request order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_shares: Vec<ClientShare>,
    /// Server kind: `S_i = s_i*Q`, compressed G2, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_share: Option<String>,
}

impl std::fmt::Debug for SealedShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedShares(..)")
    }
}

impl Default for SealedShares {
    /// Empty, at [`WIRE_VERSION`].
    fn default() -> SealedShares {
        SealedShares {
            v: WIRE_VERSION,
            client_shares: Vec::new(),
            server_share: None,
        }
    }
}

impl Drop for SealedShares {
    fn drop(&mut self) {
        if let Some(s) = self.server_share.as_mut() {
            s.zeroize();
        }
    }
}

impl SealedShares {
    /// Parses a sealed body, refusing other versions.
    pub fn parse(bytes: &[u8]) -> Result<SealedShares, WireError> {
        let r: SealedShares = serde_json::from_slice(bytes).map_err(|_| WireError::Malformed)?;
        if r.v != WIRE_VERSION {
            return Err(WireError::Version(r.v));
        }
        Ok(r)
    }

    /// The client shares for `mpin_ids` (the request's, in order, each with
    /// its `H(id)` already computed), every proof checked against
    /// `public_key` and `context` ([`proof_context`] of the request), all in
    /// one [`DleqProof::verify_batch`]. A bad proof is named by its index.
    pub fn open_client_shares(
        &self,
        public_key: &G1Affine,
        mpin_ids: &[(&str, G1Affine)],
        context: &[u8],
    ) -> Result<Vec<G1Affine>, WireError> {
        if self.server_share.is_some() {
            return Err(WireError::Mismatch("a server share in a client reply"));
        }
        if self.client_shares.len() != mpin_ids.len() {
            return Err(WireError::Mismatch("not one share per requested ID"));
        }
        // Decode up to the first bad item, check the proofs decoded so far in
        // one batch, then report the first error in request order.
        let decode = |item: &ClientShare, id: &str, h: &G1Affine| {
            if item.mpin_id != id {
                return Err(WireError::Mismatch("shares not in request order"));
            }
            let decoding = |what| move |error| WireError::Decode { what, error };
            Ok(BatchItem {
                share: g1_from_hex(&item.share).map_err(decoding("client share"))?,
                proof: DleqProof::from_hex(&item.proof).map_err(decoding("DLEQ proof"))?,
                public_key: *public_key,
                h: *h,
                context,
            })
        };
        let mut batch = Vec::with_capacity(mpin_ids.len());
        let mut pending = None;
        for (item, (id, h)) in self.client_shares.iter().zip(mpin_ids) {
            match decode(item, id, h) {
                Ok(decoded) => batch.push(decoded),
                Err(error) => {
                    pending = Some(error);
                    break;
                }
            }
        }
        DleqProof::verify_batch(&batch).map_err(|index| WireError::Proof { index })?;
        match pending {
            Some(error) => Err(error),
            None => Ok(batch.iter().map(|item| item.share).collect()),
        }
    }

    /// The server share, checked with a pairing against `public_key`.
    pub fn open_server_share(&self, public_key: &G1Affine) -> Result<G2Affine, WireError> {
        if !self.client_shares.is_empty() {
            return Err(WireError::Mismatch("client shares in a server reply"));
        }
        let hex = self
            .server_share
            .as_deref()
            .ok_or(WireError::Mismatch("no server share"))?;
        let share = g2_from_hex(hex).map_err(|error| WireError::Decode {
            what: "server share",
            error,
        })?;
        if !verify_server_share(&share, public_key) {
            return Err(WireError::Pairing);
        }
        Ok(share)
    }
}

/// The clear body of a `dta/public-key` envelope and of
/// `GET /v1/dta/public-key`'s record: the D-TA's public key and the
/// parameters a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyRecord {
    /// [`WIRE_VERSION`].
    pub v: u32,
    /// `P_i = s_i*g1`, compressed G1, hex.
    pub public_key: String,
    /// [`CURVE`].
    pub curve: String,
    /// [`crate::MPIN_DST`].
    pub hash_to_g1_dst: String,
    /// [`crate::DLEQ_DST`].
    pub dleq_dst: String,
}

impl PublicKeyRecord {
    /// The record for `public_key`.
    pub fn new(public_key: &G1Affine) -> PublicKeyRecord {
        PublicKeyRecord {
            v: WIRE_VERSION,
            public_key: crate::g1_to_hex(public_key),
            curve: CURVE.into(),
            hash_to_g1_dst: String::from_utf8_lossy(crate::MPIN_DST).into_owned(),
            dleq_dst: String::from_utf8_lossy(crate::DLEQ_DST).into_owned(),
        }
    }
}
