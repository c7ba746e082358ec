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

//! The signing family (Taproot wallets, `crate::signing`): two rounds
//! between the wallet's beneficiary and its fiduciaries.
//!
//! - `custody/sign-request`: beneficiary -> each fiduciary, round 1;
//! - `custody/sign-commitment`: fiduciary -> beneficiary, its nonce
//!   commitments;
//! - `custody/sign-package`: beneficiary -> each fiduciary of the set,
//!   round 2: the message and every signer's commitments;
//! - `custody/sign-share`: fiduciary -> beneficiary, its signature share.
//!
//! A session is 16 random bytes drawn by the beneficiary; every message of
//! the exchange names it and the order.

use super::*;
use crate::signing::{self, Signer};

/// Length of a signing session ID.
pub const SESSION_LEN: usize = 16;
/// Length of a message to sign (a BIP341 sighash).
pub const MESSAGE_LEN: usize = 32;

/// `custody/sign-request`: beneficiary -> each fiduciary (round 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The wallet's order.
    pub order_cid: Cid,
    /// The sharing signed with (absent: the order's own, 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The session.
    pub session: ByteArray<SESSION_LEN>,
    /// The 32-byte message (sighash) to sign.
    pub message: ByteArray<MESSAGE_LEN>,
}

impl Body for SignRequest {
    const KIND: &'static str = "custody/sign-request";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)
    }
}

/// Nonce commitments: two compressed points (hiding, binding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonceCommitments {
    /// The hiding nonce's commitment D.
    pub hiding: ByteArray<PUBLIC_KEY_LEN>,
    /// The binding nonce's commitment E.
    pub binding: ByteArray<PUBLIC_KEY_LEN>,
}

impl NonceCommitments {
    /// As the library's type (both points checked).
    pub fn to_signing(&self) -> Result<signing::Commitments> {
        signing::commitments_from_bytes(&self.hiding[..], &self.binding[..])
    }

    /// From the library's type.
    pub fn from_signing(c: &signing::Commitments) -> Result<Self> {
        let (hiding, binding) = signing::commitments_to_bytes(c)?;
        Ok(NonceCommitments {
            hiding: ByteArray::new(hiding),
            binding: ByteArray::new(binding),
        })
    }
}

/// `custody/sign-commitment`: fiduciary -> beneficiary (round 1 answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignCommitment {
    /// The wallet's order.
    pub order_cid: Cid,
    /// The session answered.
    pub session: ByteArray<SESSION_LEN>,
    /// The fiduciary's nonce commitments for this session.
    pub commitments: NonceCommitments,
}

impl Body for SignCommitment {
    const KIND: &'static str = "custody/sign-commitment";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        self.commitments.to_signing().map(|_| ())
    }
}

/// One signer of a package: its index (0: the beneficiary, j: fiduciary
/// j) and its round-1 commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSigner {
    /// 0 for the beneficiary, j (1-based) for fiduciary j.
    pub index: u32,
    /// Its nonce commitments.
    pub commitments: NonceCommitments,
}

/// `custody/sign-package`: beneficiary -> each fiduciary of the signing
/// set (round 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignPackage {
    /// The wallet's order.
    pub order_cid: Cid,
    /// The sharing signed with (absent: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The session (as in round 1).
    pub session: ByteArray<SESSION_LEN>,
    /// The message (as in round 1).
    pub message: ByteArray<MESSAGE_LEN>,
    /// The wallet key P (the internal key), as the beneficiary's notice
    /// gave it: the challenge commits to it.
    pub wallet_key: ByteArray<PUBLIC_KEY_LEN>,
    /// The signing set, by increasing index: the beneficiary (0) first.
    pub signers: Vec<PackageSigner>,
}

impl SignPackage {
    /// The library's signing package.
    pub fn to_signing(&self) -> Result<signing::Package> {
        let mut commitments = std::collections::BTreeMap::new();
        for s in &self.signers {
            commitments.insert(Signer::from(s.index), s.commitments.to_signing()?);
        }
        signing::package(&self.message, &commitments)
    }
}

impl Body for SignPackage {
    const KIND: &'static str = "custody/sign-package";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        keys::decode_public_key(&self.wallet_key[..])?;
        let increasing = self.signers.windows(2).all(|w| w[0].index < w[1].index);
        if self.signers.len() < 2
            || self.signers.len() > MAX_PARTIES + 1
            || self.signers[0].index != 0
            || !increasing
        {
            return Err(Error::InvalidField {
                field: "signers",
                reason: "the beneficiary (0), then 1 to 255 fiduciaries by increasing index",
            });
        }
        for s in &self.signers {
            s.commitments.to_signing()?;
        }
        Ok(())
    }
}

/// `custody/sign-share`: fiduciary -> beneficiary (round 2 answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignShare {
    /// The wallet's order.
    pub order_cid: Cid,
    /// The session.
    pub session: ByteArray<SESSION_LEN>,
    /// The fiduciary's signature share z_j (a scalar below n).
    pub share: ByteArray<32>,
}

impl SignShare {
    /// The library's signature share.
    pub fn to_signing(&self) -> Result<signing::Share> {
        signing::share_from_bytes(&self.share)
    }
}

impl Body for SignShare {
    const KIND: &'static str = "custody/sign-share";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        self.to_signing().map(|_| ())
    }
}
