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

//! The custody message bodies, carried in Milagro envelopes of kinds
//! `custody/order`, `custody/commitment`, `custody/redeem`, `custody/release`
//! and `custody/notice`.
//!
//! Every body is encoded as canonical DAG-CBOR (map keys in DAG-CBOR order,
//! minimal integers, definite lengths). Decoding is strict: a size limit is
//! checked before anything else, unknown fields and unknown coins are
//! refused, fixed-size byte fields must have the exact length, keys and
//! proofs must be valid, node IDs must be canonical CID strings, and the
//! bytes must re-encode to themselves (one message, one encoding, one CID).
//!
//! The order CID is the CIDv1 (dag-cbor, sha2-256) of the canonical bytes of
//! the [`Order`] body ([`order_cid`]): deterministic, so a retried order is
//! the same order. Fiduciary j of an order (1-based, for the t-of-n mode) is
//! the one at position j-1 of [`Order::fiduciaries`].

pub use ipld_core::cid::Cid;
use ipld_core::cid::multihash::Multihash;
use k256::PublicKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;
use serde_ipld_dagcbor::DecodeError;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::feldman::{self, Commitments};
use crate::keys::{self, PUBLIC_KEY_LEN, SecretScalar};
use crate::pok::{self, PROOF_LEN, PokContext};
use crate::shamir::{self, MAX_PARTIES, Share};
use crate::{Error, Result, wallet};

/// Multicodec code of DAG-CBOR.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// Receiver-side limits applied while decoding a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded body, in bytes (checked before decoding).
    pub max_message_bytes: usize,
    /// Longest text field (reference, address, node ID), in bytes.
    pub max_text_bytes: usize,
    /// Most fiduciaries in one order (at most [`MAX_PARTIES`]).
    pub max_fiduciaries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 256 * 1024,
            max_text_bytes: 256,
            max_fiduciaries: 32,
        }
    }
}

/// The coin of a wallet (and so its address format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Coin {
    /// Bitcoin mainnet: P2WPKH `bc1…` (P2PKH `1…` as legacy address).
    #[serde(rename = "btc")]
    Btc,
    /// Bitcoin testnet: P2WPKH `tb1…` (P2PKH `m…`/`n…` as legacy address).
    #[serde(rename = "btc-testnet")]
    BtcTestnet,
    /// Ethereum: EIP-55 checksummed `0x…` address.
    #[serde(rename = "eth")]
    Eth,
}

impl Coin {
    /// The wire name: `btc`, `btc-testnet` or `eth`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coin::Btc => "btc",
            Coin::BtcTestnet => "btc-testnet",
            Coin::Eth => "eth",
        }
    }
}

impl std::fmt::Display for Coin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Coin {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "btc" => Ok(Coin::Btc),
            "btc-testnet" => Ok(Coin::BtcTestnet),
            "eth" => Ok(Coin::Eth),
            _ => Err(Error::InvalidField {
                field: "coin",
                reason: "unknown coin (expected btc, btc-testnet or eth)",
            }),
        }
    }
}

/// A custody message body: its envelope kind and its semantic checks.
pub trait Body: Serialize + DeserializeOwned {
    /// The envelope kind carrying this body.
    const KIND: &'static str;
    /// Checks beyond the shape (sizes, keys, node IDs, thresholds).
    fn validate(&self, limits: &Limits) -> Result<()>;
}

/// `custody/order`: principal -> each fiduciary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The principal's reference for this order (unique per principal).
    pub reference: String,
    /// The wallet's coin.
    pub coin: Coin,
    /// The principal's node ID.
    pub principal: String,
    /// The beneficiary's node ID (the principal's own when none was named).
    pub beneficiary: String,
    /// The fiduciaries' node IDs, distinct; position j-1 is fiduciary j.
    pub fiduciaries: Vec<String>,
    /// t: how many fiduciaries' releases rebuild the key (t = n: additive n-of-n).
    pub threshold: u32,
}

/// `custody/commitment`: fiduciary -> principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// The order this answers.
    pub order_cid: Cid,
    /// K_i = k_i*G (n-of-n), or the public share S_j = s_j*G (t-of-n).
    #[serde(with = "serde_bytes")]
    pub share_public_key: [u8; PUBLIC_KEY_LEN],
    /// Proof of knowledge of the share's discrete log, bound to the order
    /// and to this fiduciary (R || s, see [`crate::pok`]).
    #[serde(with = "serde_bytes")]
    pub proof: [u8; PROOF_LEN],
    /// t-of-n only: every dealer's Feldman commitments, in the order's
    /// fiduciary order (n lists of t compressed points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealer_commitments: Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
}

/// `custody/redeem`: principal or beneficiary -> each fiduciary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// The order to redeem.
    pub order_cid: Cid,
    /// Its reference (a cross-check of the order CID).
    pub reference: String,
    /// A new beneficiary, only where the order allows it (beneficiary = principal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_beneficiary: Option<String>,
}

/// `custody/release`: fiduciary -> beneficiary, always in a sealed body.
/// `Debug` does not print the share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The order released.
    pub order_cid: Cid,
    /// k_i (n-of-n) or s_j (t-of-n): 32-byte scalar, secret.
    #[serde(with = "secret_scalar_bytes")]
    pub share: SecretScalar,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("order_cid", &self.order_cid.to_string())
            .finish_non_exhaustive()
    }
}

/// `custody/dkg-deal`: fiduciary i -> fiduciary j (t-of-n), sealed to j
/// only: dealer i's Feldman commitments and its share f_i(j). `Debug` does
/// not print the share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deal {
    /// The order.
    pub order_cid: Cid,
    /// C_i0..C_i,t-1, compressed points.
    pub commitments: Vec<ByteArray<PUBLIC_KEY_LEN>>,
    /// f_i(j): secret.
    #[serde(with = "secret_scalar_bytes")]
    pub share: SecretScalar,
}

impl std::fmt::Debug for Deal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deal")
            .field("order_cid", &self.order_cid.to_string())
            .field("t", &self.commitments.len())
            .finish_non_exhaustive()
    }
}

impl Deal {
    /// Dealer `commitments` and the share for party `index`.
    pub fn new(order_cid: &Cid, commitments: &Commitments, share: &Share) -> Result<Self> {
        Ok(Deal {
            order_cid: *order_cid,
            commitments: commitments
                .to_bytes()?
                .into_iter()
                .map(ByteArray::new)
                .collect(),
            share: SecretScalar::from_scalar(*share.value())?,
        })
    }

    /// The commitments, decoded.
    pub fn commitments(&self) -> Result<Commitments> {
        let raw: Vec<[u8; PUBLIC_KEY_LEN]> = self.commitments.iter().map(|b| **b).collect();
        Commitments::from_bytes(&raw)
    }
}

/// `custody/dkg-dealt`: fiduciary -> principal (t-of-n), as soon as it has
/// dealt: its Feldman commitments. Tells the principal who is taking part,
/// and lets it check that each dealer showed everyone the same commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dealt {
    /// The order.
    pub order_cid: Cid,
    /// C_i0..C_i,t-1, compressed points.
    pub commitments: Vec<ByteArray<PUBLIC_KEY_LEN>>,
}

impl Dealt {
    /// A dealer's announcement of its `commitments`.
    pub fn new(order_cid: &Cid, commitments: &Commitments) -> Result<Self> {
        Ok(Dealt {
            order_cid: *order_cid,
            commitments: commitments
                .to_bytes()?
                .into_iter()
                .map(ByteArray::new)
                .collect(),
        })
    }

    /// The commitments, decoded.
    pub fn commitments(&self) -> Result<Commitments> {
        let raw: Vec<[u8; PUBLIC_KEY_LEN]> = self.commitments.iter().map(|b| **b).collect();
        Commitments::from_bytes(&raw)
    }
}

/// `custody/dkg-complaint`: fiduciary -> the other fiduciaries and the
/// principal (t-of-n): the share `dealer` sent does not match its
/// commitments. The order fails naming the dealer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complaint {
    /// The order.
    pub order_cid: Cid,
    /// The faulty dealer's node ID.
    pub dealer: String,
}

/// One fiduciary in a [`Notice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeFiduciary {
    /// The fiduciary's node ID.
    pub id: String,
    /// Its K_i (or S_j): the beneficiary checks the released share against it.
    #[serde(with = "serde_bytes")]
    pub share_public_key: [u8; PUBLIC_KEY_LEN],
    /// The CID of the envelope carrying its commitment.
    pub commitment_cid: Cid,
}

/// `custody/notice`: principal -> beneficiary, when the wallet exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// The order itself: lets the beneficiary check that the notice comes
    /// from the order's principal and names it (its CID is `order_cid`).
    pub order: Order,
    /// The order's CID.
    pub order_cid: Cid,
    /// The order's reference.
    pub reference: String,
    /// The wallet's coin.
    pub coin: Coin,
    /// The wallet public key P (compressed).
    #[serde(with = "serde_bytes")]
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// The wallet address derived from P for the coin.
    pub address: String,
    /// t.
    pub threshold: u32,
    /// The fiduciaries, in the order's order.
    pub fiduciaries: Vec<NoticeFiduciary>,
    /// t-of-n only: the dealers' Feldman commitments (as in [`Commitment`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealer_commitments: Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
}

mod secret_scalar_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::ByteArray;
    use zeroize::Zeroize;

    use crate::keys::SecretScalar;

    pub fn serialize<S: Serializer>(s: &SecretScalar, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_bytes(&*s.to_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SecretScalar, D::Error> {
        let mut raw = ByteArray::<32>::deserialize(de)?;
        let out = SecretScalar::from_bytes(&raw)
            .map_err(|_| serde::de::Error::custom("share is not a valid non-zero scalar"));
        raw.zeroize();
        out
    }
}

fn check_text(field: &'static str, value: &str, limits: &Limits) -> Result<()> {
    if value.len() > limits.max_text_bytes {
        return Err(Error::Oversize {
            what: field,
            limit: limits.max_text_bytes,
            actual: value.len(),
        });
    }
    if value.is_empty() {
        return Err(Error::InvalidField {
            field,
            reason: "empty",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidField {
            field,
            reason: "contains control characters",
        });
    }
    Ok(())
}

/// Check that `text` is a node ID in canonical form: a CIDv1, dag-cbor,
/// sha2-256 (32 bytes), written in its default (base32 lower-case) form.
pub fn check_node_id(field: &'static str, text: &str) -> Result<Cid> {
    let invalid = Error::InvalidField {
        field,
        reason: "not a canonical node ID (CIDv1 dag-cbor sha2-256, base32)",
    };
    if text.len() > 128 {
        return Err(invalid);
    }
    let cid = Cid::try_from(text).map_err(|_| invalid.clone())?;
    let ok = cid.version() == ipld_core::cid::Version::V1
        && cid.codec() == DAG_CBOR
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
        && cid.to_string() == text;
    if ok { Ok(cid) } else { Err(invalid) }
}

fn check_order_cid(field: &'static str, cid: &Cid) -> Result<()> {
    let ok = cid.version() == ipld_core::cid::Version::V1
        && cid.codec() == DAG_CBOR
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidField {
            field,
            reason: "not a CIDv1 dag-cbor sha2-256",
        })
    }
}

fn check_dealer_commitments(
    field: &'static str,
    dealers: &Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
    parties: usize,
    threshold: Option<usize>,
) -> Result<()> {
    let Some(dealers) = dealers else {
        return Ok(());
    };
    if dealers.len() != parties {
        return Err(Error::InvalidField {
            field,
            reason: "one commitment list per fiduciary expected",
        });
    }
    let t = dealers.first().map(Vec::len).unwrap_or(0);
    if t == 0 || t > parties || threshold.is_some_and(|want| want != t) {
        return Err(Error::InvalidField {
            field,
            reason: "commitment lists must have t entries",
        });
    }
    for list in dealers {
        if list.len() != t {
            return Err(Error::InvalidField {
                field,
                reason: "commitment lists must have t entries",
            });
        }
        for point in list {
            keys::decode_public_key(&point[..])?;
        }
    }
    Ok(())
}

impl Body for Order {
    const KIND: &'static str = "custody/order";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_text("reference", &self.reference, limits)?;
        check_node_id("principal", &self.principal)?;
        check_node_id("beneficiary", &self.beneficiary)?;
        let n = self.fiduciaries.len();
        let max = limits.max_fiduciaries.min(MAX_PARTIES);
        if n > max {
            return Err(Error::Oversize {
                what: "fiduciaries",
                limit: max,
                actual: n,
            });
        }
        if n == 0 {
            return Err(Error::InvalidField {
                field: "fiduciaries",
                reason: "empty",
            });
        }
        for (pos, f) in self.fiduciaries.iter().enumerate() {
            check_node_id("fiduciaries", f)?;
            if self.fiduciaries[..pos].contains(f) {
                return Err(Error::InvalidField {
                    field: "fiduciaries",
                    reason: "duplicate fiduciary",
                });
            }
        }
        if self.threshold == 0 || self.threshold as usize > n {
            return Err(Error::InvalidThreshold {
                threshold: self.threshold as usize,
                parties: n,
            });
        }
        Ok(())
    }
}

impl Order {
    /// The order's CID ([`order_cid`]).
    pub fn cid(&self) -> Result<Cid> {
        order_cid(self)
    }

    /// Is this a t-of-n (DKG) order, i.e. t < n?
    pub fn is_threshold(&self) -> bool {
        (self.threshold as usize) < self.fiduciaries.len()
    }

    /// The 1-based index of a fiduciary in this order.
    pub fn fiduciary_index(&self, id: &str) -> Option<u32> {
        self.fiduciaries
            .iter()
            .position(|f| f == id)
            .map(|p| p as u32 + 1)
    }
}

impl Body for Commitment {
    const KIND: &'static str = "custody/commitment";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        keys::decode_public_key(&self.share_public_key)?;
        pok::Proof::from_bytes(&self.proof)?;
        let parties = self.dealer_commitments.as_ref().map_or(0, Vec::len);
        if parties > limits.max_fiduciaries.min(MAX_PARTIES) {
            return Err(Error::Oversize {
                what: "dealer_commitments",
                limit: limits.max_fiduciaries.min(MAX_PARTIES),
                actual: parties,
            });
        }
        check_dealer_commitments(
            "dealer_commitments",
            &self.dealer_commitments,
            parties,
            None,
        )
    }
}

impl Commitment {
    /// A fiduciary's commitment to `share` for the order `order_cid`, with a
    /// proof of knowledge bound to the order and to `fiduciary` (its node ID).
    pub fn new(order_cid: &Cid, fiduciary: &str, share: &SecretScalar) -> Result<Self> {
        let cid_bytes = order_cid.to_bytes();
        let proof = pok::prove(
            share,
            &PokContext {
                order_cid: &cid_bytes,
                fiduciary,
            },
        )?;
        Ok(Commitment {
            order_cid: *order_cid,
            share_public_key: keys::encode_public_key(&share.public_key()),
            proof: proof.to_bytes(),
            dealer_commitments: None,
        })
    }

    /// The principal's check: the commitment answers `order_cid` and its
    /// proof verifies for `fiduciary`. Returns the share public key.
    pub fn verify(&self, order_cid: &Cid, fiduciary: &str) -> Result<PublicKey> {
        if self.order_cid != *order_cid {
            return Err(Error::InvalidField {
                field: "order_cid",
                reason: "commitment answers another order",
            });
        }
        let cid_bytes = order_cid.to_bytes();
        let public = keys::decode_public_key(&self.share_public_key)?;
        let proof = pok::Proof::from_bytes(&self.proof)?;
        pok::verify(
            &public,
            &proof,
            &PokContext {
                order_cid: &cid_bytes,
                fiduciary,
            },
        )?;
        Ok(public)
    }
}

impl Commitment {
    /// t-of-n: fiduciary `fiduciary`'s report after the DKG: its public
    /// share S_j, a proof of knowledge of s_j, and every dealer's commitments
    /// (in the order's fiduciary order).
    pub fn new_threshold(
        order_cid: &Cid,
        fiduciary: &str,
        share: &Share,
        dealers: &[Commitments],
    ) -> Result<Self> {
        let secret = SecretScalar::from_scalar(*share.value())?;
        let mut c = Self::new(order_cid, fiduciary, &secret)?;
        c.dealer_commitments = Some(encode_dealers(dealers)?);
        Ok(c)
    }

    /// The dealers' commitments, decoded (`None` in the n-of-n mode).
    pub fn dealers(&self) -> Result<Option<Vec<Commitments>>> {
        decode_dealers(&self.dealer_commitments)
    }
}

fn encode_dealers(dealers: &[Commitments]) -> Result<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>> {
    dealers
        .iter()
        .map(|d| Ok(d.to_bytes()?.into_iter().map(ByteArray::new).collect()))
        .collect()
}

fn decode_dealers(
    dealers: &Option<Vec<Vec<ByteArray<PUBLIC_KEY_LEN>>>>,
) -> Result<Option<Vec<Commitments>>> {
    dealers
        .as_ref()
        .map(|all| {
            all.iter()
                .map(|list| {
                    let raw: Vec<[u8; PUBLIC_KEY_LEN]> = list.iter().map(|b| **b).collect();
                    Commitments::from_bytes(&raw)
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()
}

/// What the principal keeps from one verified commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCommitment {
    /// The fiduciary's 1-based index in the order.
    pub index: u32,
    /// K_i (n-of-n) or S_j (t-of-n).
    pub share_public_key: PublicKey,
    /// t-of-n: the dealers' commitments this fiduciary reported (the
    /// principal checks that all fiduciaries report the same ones).
    pub dealers: Option<Vec<Commitments>>,
}

/// The principal's check of fiduciary `fiduciary`'s commitment to `order`:
/// it answers this order, the fiduciary is in the order, the proof verifies,
/// and in the t-of-n mode the dealers' commitments have the order's shape
/// (n lists of t points) and S_j matches them.
pub fn verify_commitment(
    order: &Order,
    fiduciary: &str,
    commitment: &Commitment,
) -> Result<VerifiedCommitment> {
    let cid = order.cid()?;
    let index = order
        .fiduciary_index(fiduciary)
        .ok_or(Error::InvalidField {
            field: "fiduciary",
            reason: "not a fiduciary of this order",
        })?;
    let share_public_key = commitment.verify(&cid, fiduciary)?;
    let dealers = commitment.dealers()?;
    match (&dealers, order.is_threshold()) {
        (None, false) => {}
        (Some(d), true) => {
            let t = order.threshold as usize;
            if d.len() != order.fiduciaries.len() || d.iter().any(|c| c.threshold() != t) {
                return Err(Error::InvalidField {
                    field: "dealer_commitments",
                    reason: "expected n lists of t commitments",
                });
            }
            let expected = Commitments::sum(d)?.public_share(index)?;
            if expected != share_public_key {
                return Err(Error::ShareMismatch { index });
            }
        }
        _ => {
            return Err(Error::InvalidField {
                field: "dealer_commitments",
                reason: "present exactly when t < n",
            });
        }
    }
    Ok(VerifiedCommitment {
        index,
        share_public_key,
        dealers,
    })
}

/// The principal's aggregation once every fiduciary's commitment verified
/// (`verified` in any order, one per fiduciary): the fiduciaries' key
/// (ΣK_i, or the DKG group key K after checking every fiduciary reported the
/// same commitments) and the wallet key P = B + that.
pub fn wallet_key(
    order: &Order,
    beneficiary: &PublicKey,
    verified: &[VerifiedCommitment],
) -> Result<PublicKey> {
    let n = order.fiduciaries.len();
    let mut seen = vec![false; n];
    for v in verified {
        let slot = seen
            .get_mut(v.index as usize - 1)
            .ok_or(Error::InvalidIndex { index: v.index })?;
        if *slot {
            return Err(Error::InvalidIndex { index: v.index });
        }
        *slot = true;
    }
    if verified.len() != n {
        return Err(Error::NotEnoughShares {
            have: verified.len(),
            need: n,
        });
    }
    if order.is_threshold() {
        let first = verified[0]
            .dealers
            .as_ref()
            .ok_or(Error::InconsistentDealings)?;
        if verified.iter().any(|v| v.dealers.as_ref() != Some(first)) {
            return Err(Error::InconsistentDealings);
        }
        let k = feldman::group_key(first)?;
        wallet::aggregate_public_key(beneficiary, &[k])
    } else {
        let keys: Vec<PublicKey> = verified.iter().map(|v| v.share_public_key).collect();
        wallet::aggregate_public_key(beneficiary, &keys)
    }
}

impl Notice {
    /// The notice of a t-of-n order, carrying the dealers' commitments.
    pub fn with_dealers(mut self, dealers: &[Commitments]) -> Result<Self> {
        self.dealer_commitments = Some(encode_dealers(dealers)?);
        Ok(self)
    }

    /// The beneficiary's part of the wallet key: B = P - ΣK_i (n-of-n) or
    /// B = P - K (t-of-n, K the DKG group key).
    pub fn beneficiary_public_key(&self) -> Result<PublicKey> {
        let p = keys::decode_public_key(&self.public_key)?;
        let fiduciaries = match decode_dealers(&self.dealer_commitments)? {
            Some(dealers) => feldman::group_key(&dealers)?,
            None => wallet::sum_public_keys(
                &self
                    .fiduciaries
                    .iter()
                    .map(|f| keys::decode_public_key(&f.share_public_key))
                    .collect::<Result<Vec<_>>>()?,
            )?,
        };
        keys::point_to_public_key(&(p.to_projective() - fiduciaries.to_projective()))
    }

    /// The beneficiary's check of a released share from `fiduciary`: it must
    /// match that fiduciary's share public key (and, t-of-n, the dealers'
    /// commitments). Returns the fiduciary's 1-based index.
    pub fn check_release(&self, fiduciary: &str, share: &SecretScalar) -> Result<u32> {
        let pos = self
            .fiduciaries
            .iter()
            .position(|f| f.id == fiduciary)
            .ok_or(Error::InvalidField {
                field: "fiduciary",
                reason: "not a fiduciary of this order",
            })?;
        let index = pos as u32 + 1;
        let expected = keys::decode_public_key(&self.fiduciaries[pos].share_public_key)?;
        if share.public_key() != expected {
            return Err(Error::ShareMismatch { index });
        }
        if let Some(dealers) = decode_dealers(&self.dealer_commitments)? {
            let sum = Commitments::sum(&dealers)?;
            sum.verify_share(&Share::new(index, *share.as_scalar())?)?;
        }
        Ok(index)
    }

    /// The beneficiary's rebuild: from checked releases `(index, share)`
    /// (n-of-n: all n; t-of-n: at least t, the first t are used) and its key
    /// b, x = b + Σk_i or x = b + k, returned only if x*G == P.
    pub fn rebuild_secret(
        &self,
        beneficiary: &SecretScalar,
        releases: &[(u32, SecretScalar)],
    ) -> Result<SecretScalar> {
        let p = keys::decode_public_key(&self.public_key)?;
        let n = self.fiduciaries.len();
        let t = self.threshold as usize;
        let mut indices: Vec<u32> = releases.iter().map(|(i, _)| *i).collect();
        indices.sort_unstable();
        if let Some(w) = indices.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::InvalidIndex { index: w[0] });
        }
        if let Some(&bad) = indices.iter().find(|&&i| i == 0 || i as usize > n) {
            return Err(Error::InvalidIndex { index: bad });
        }
        if t < n {
            let shares = releases
                .iter()
                .map(|(i, s)| Share::new(*i, *s.as_scalar()))
                .collect::<Result<Vec<_>>>()?;
            let k = shamir::reconstruct(&shares, t)?;
            wallet::aggregate_secret(beneficiary, &[k], &p)
        } else {
            if releases.len() < n {
                return Err(Error::NotEnoughShares {
                    have: releases.len(),
                    need: n,
                });
            }
            let ks: Vec<SecretScalar> = releases.iter().map(|(_, s)| s.clone()).collect();
            wallet::aggregate_secret(beneficiary, &ks, &p)
        }
    }
}

impl Body for Redeem {
    const KIND: &'static str = "custody/redeem";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_text("reference", &self.reference, limits)?;
        if let Some(b) = &self.new_beneficiary {
            check_node_id("new_beneficiary", b)?;
        }
        Ok(())
    }
}

fn check_points(field: &'static str, points: &[ByteArray<PUBLIC_KEY_LEN>]) -> Result<()> {
    if points.is_empty() || points.len() > MAX_PARTIES {
        return Err(Error::InvalidField {
            field,
            reason: "1 to 255 commitments expected",
        });
    }
    for point in points {
        keys::decode_public_key(&point[..])?;
    }
    Ok(())
}

impl Body for Deal {
    const KIND: &'static str = "custody/dkg-deal";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_points("commitments", &self.commitments)
    }
}

impl Body for Dealt {
    const KIND: &'static str = "custody/dkg-dealt";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_points("commitments", &self.commitments)
    }
}

impl Body for Complaint {
    const KIND: &'static str = "custody/dkg-complaint";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_node_id("dealer", &self.dealer).map(|_| ())
    }
}

impl Body for Release {
    const KIND: &'static str = "custody/release";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)
    }
}

impl Body for Notice {
    const KIND: &'static str = "custody/notice";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_text("reference", &self.reference, limits)?;
        self.order.validate(limits)?;
        let names_order = self.order.cid()? == self.order_cid
            && self.order.reference == self.reference
            && self.order.coin == self.coin
            && self.order.threshold == self.threshold
            && self.order.fiduciaries.len() == self.fiduciaries.len()
            && self
                .order
                .fiduciaries
                .iter()
                .zip(&self.fiduciaries)
                .all(|(o, f)| *o == f.id);
        if !names_order {
            return Err(Error::InvalidField {
                field: "order",
                reason: "does not match the notice (CID, reference, coin, threshold or fiduciaries)",
            });
        }
        keys::decode_public_key(&self.public_key)?;
        check_text("address", &self.address, limits)?;
        let n = self.fiduciaries.len();
        let max = limits.max_fiduciaries.min(MAX_PARTIES);
        if n > max {
            return Err(Error::Oversize {
                what: "fiduciaries",
                limit: max,
                actual: n,
            });
        }
        if n == 0 {
            return Err(Error::InvalidField {
                field: "fiduciaries",
                reason: "empty",
            });
        }
        for (pos, f) in self.fiduciaries.iter().enumerate() {
            check_node_id("fiduciaries.id", &f.id)?;
            keys::decode_public_key(&f.share_public_key)?;
            check_order_cid("fiduciaries.commitment_cid", &f.commitment_cid)?;
            if self.fiduciaries[..pos].iter().any(|g| g.id == f.id) {
                return Err(Error::InvalidField {
                    field: "fiduciaries",
                    reason: "duplicate fiduciary",
                });
            }
        }
        if self.threshold == 0 || self.threshold as usize > n {
            return Err(Error::InvalidThreshold {
                threshold: self.threshold as usize,
                parties: n,
            });
        }
        let t = self.threshold as usize;
        match (&self.dealer_commitments, t < n) {
            (None, false) => Ok(()),
            (Some(_), true) => {
                check_dealer_commitments("dealer_commitments", &self.dealer_commitments, n, Some(t))
            }
            _ => Err(Error::InvalidField {
                field: "dealer_commitments",
                reason: "present exactly when t < n",
            }),
        }
    }
}

/// CIDv1 (dag-cbor, sha2-256) of `bytes`.
pub fn cid_of(bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    let mh = Multihash::<64>::wrap(SHA2_256, digest.as_slice())
        .expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(DAG_CBOR, mh)
}

/// The order CID: the CID of the order body's canonical DAG-CBOR bytes.
pub fn order_cid(order: &Order) -> Result<Cid> {
    Ok(cid_of(
        &serde_ipld_dagcbor::to_vec(order).map_err(|e| Error::Encode(e.to_string()))?,
    ))
}

/// Validate (with default limits) and encode a body as canonical DAG-CBOR.
pub fn encode<T: Body>(body: &T) -> Result<Vec<u8>> {
    encode_with(body, &Limits::default())
}

/// Validate with `limits` and encode a body as canonical DAG-CBOR.
pub fn encode_with<T: Body>(body: &T, limits: &Limits) -> Result<Vec<u8>> {
    body.validate(limits)?;
    let bytes = serde_ipld_dagcbor::to_vec(body).map_err(|e| Error::Encode(e.to_string()))?;
    if bytes.len() > limits.max_message_bytes {
        return Err(Error::Oversize {
            what: T::KIND,
            limit: limits.max_message_bytes,
            actual: bytes.len(),
        });
    }
    Ok(bytes)
}

/// Strictly decode a body: size limit first, then DAG-CBOR of exactly the
/// expected shape, then canonical form, then [`Body::validate`].
pub fn decode<T: Body>(bytes: &[u8], limits: &Limits) -> Result<T> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Error::Oversize {
            what: T::KIND,
            limit: limits.max_message_bytes,
            actual: bytes.len(),
        });
    }
    let value: T = serde_ipld_dagcbor::from_slice(bytes).map_err(map_decode_error)?;
    let mut again = serde_ipld_dagcbor::to_vec(&value).map_err(|e| Error::Encode(e.to_string()))?;
    let canonical = again == bytes;
    // The re-encoding of a release holds the share.
    again.zeroize();
    if !canonical {
        return Err(Error::NonCanonical);
    }
    value.validate(limits)?;
    Ok(value)
}

fn map_decode_error<E: std::fmt::Debug>(err: DecodeError<E>) -> Error {
    match err {
        DecodeError::NonMinimal { .. }
        | DecodeError::UnorderedKey
        | DecodeError::IndefiniteSize => Error::NonCanonical,
        DecodeError::Eof { .. } => Error::Malformed("truncated".into()),
        DecodeError::TrailingData => Error::Malformed("trailing data".into()),
        DecodeError::Msg(m) => Error::Malformed(truncate(m)),
        other => Error::Malformed(truncate(format!("{other:?}"))),
    }
}

fn truncate(mut s: String) -> String {
    // Decoder messages name CBOR types and field names, never values of
    // secret fields; cap their length against hostile input.
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> String {
        cid_of(&[n]).to_string()
    }

    fn order() -> Order {
        Order {
            reference: "order-1".into(),
            coin: Coin::Btc,
            principal: node(1),
            beneficiary: node(2),
            fiduciaries: vec![node(3), node(4)],
            threshold: 2,
        }
    }

    fn roundtrip<T: Body + PartialEq + std::fmt::Debug>(v: &T) -> Vec<u8> {
        let bytes = encode(v).unwrap();
        let back: T = decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(&back, v);
        bytes
    }

    #[test]
    fn order_roundtrip_and_cid_is_deterministic() {
        let o = order();
        let bytes = roundtrip(&o);
        assert_eq!(order_cid(&o).unwrap(), cid_of(&bytes));
        assert_eq!(o.cid().unwrap(), order().cid().unwrap());
        let mut other = order();
        other.reference = "order-2".into();
        assert_ne!(other.cid().unwrap(), o.cid().unwrap());
        assert_eq!(o.fiduciary_index(&node(4)), Some(2));
        assert!(!o.is_threshold());
    }

    /// The test vector written down in docs/custody.md.
    #[test]
    fn order_vector() {
        let o = order();
        assert_eq!(
            o.principal,
            "bafyreicl6ujc6ncfktctxxroxognfn7d2fqavvrryoc2lv6m4i6hpbkfti"
        );
        assert_eq!(
            hex::encode(encode(&o).unwrap()),
            concat!(
                "a664636f696e63627463697072696e636970616c783b62616679726569636c36",
                "756a63366e63666b7463747878726f786f676e666e3764326671617676727279",
                "6f63326c76366d3469366870626b667469697265666572656e6365676f726465",
                "722d31697468726573686f6c64026b62656e6566696369617279783b62616679",
                "72656967337967326d73616837347367766f7732357578646471626162657833",
                "66336d68366879736573733377356b6d676976367a71796b6669647563696172",
                "69657382783b6261667972656961696a377771726f6c797635677832676c6b6f",
                "72646b7132327961637067673233626477797765656e776c6b6e6b33377a6a79",
                "75783b62616679726569686666776f6662646371656e647469746d6d6136777a",
                "6473367761326670793570376d6b6a706179766174737279647365366f65",
            )
        );
        assert_eq!(
            o.cid().unwrap().to_string(),
            "bafyreidccesamif5tnx4p5mylpd6l2kiabpjdwfr66xxxa2vyxzwysp7za"
        );
    }

    #[test]
    fn coin_names() {
        for (c, s) in [
            (Coin::Btc, "btc"),
            (Coin::BtcTestnet, "btc-testnet"),
            (Coin::Eth, "eth"),
        ] {
            assert_eq!(c.as_str(), s);
            assert_eq!(s.parse::<Coin>().unwrap(), c);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
        }
        assert!("doge".parse::<Coin>().is_err());
    }

    #[test]
    fn commitment_roundtrip_and_verify() {
        let o = order();
        let cid = o.cid().unwrap();
        let k = SecretScalar::random().unwrap();
        let c = Commitment::new(&cid, &o.fiduciaries[0], &k).unwrap();
        roundtrip(&c);
        assert_eq!(c.verify(&cid, &o.fiduciaries[0]).unwrap(), k.public_key());
        assert_eq!(c.verify(&cid, &o.fiduciaries[1]), Err(Error::InvalidProof));
        let other = cid_of(b"other");
        assert!(c.verify(&other, &o.fiduciaries[0]).is_err());
    }

    #[test]
    fn release_roundtrip_hides_share() {
        let k = SecretScalar::random().unwrap();
        let r = Release {
            order_cid: order().cid().unwrap(),
            share: k.clone(),
        };
        roundtrip(&r);
        let dbg = format!("{r:?}");
        assert!(!dbg.contains(&hex::encode(*k.to_bytes())));
        assert!(dbg.contains("Release"));
    }

    #[test]
    fn dkg_messages_roundtrip_and_hide_the_share() {
        let cid = order().cid().unwrap();
        let dealing = feldman::deal(2, 3).unwrap();
        let deal = Deal::new(&cid, &dealing.commitments, &dealing.shares[1]).unwrap();
        roundtrip(&deal);
        assert_eq!(deal.commitments().unwrap(), dealing.commitments);
        assert!(!format!("{deal:?}").contains(&hex::encode(dealing.shares[1].value_bytes())));
        roundtrip(&Dealt {
            order_cid: cid,
            commitments: deal.commitments.clone(),
        });
        roundtrip(&Complaint {
            order_cid: cid,
            dealer: node(3),
        });
        let bad = Complaint {
            order_cid: cid,
            dealer: "not-a-node".into(),
        };
        assert!(encode(&bad).is_err());
        let empty = Dealt {
            order_cid: cid,
            commitments: Vec::new(),
        };
        assert!(encode(&empty).is_err());
    }

    #[test]
    fn redeem_and_notice_roundtrip() {
        let cid = order().cid().unwrap();
        roundtrip(&Redeem {
            order_cid: cid,
            reference: "order-1".into(),
            new_beneficiary: None,
        });
        roundtrip(&Redeem {
            order_cid: cid,
            reference: "order-1".into(),
            new_beneficiary: Some(node(9)),
        });
        let k = SecretScalar::random().unwrap();
        let pk = keys::encode_public_key(&k.public_key());
        let notice = Notice {
            order: Order {
                coin: Coin::Eth,
                ..order()
            },
            order_cid: Order {
                coin: Coin::Eth,
                ..order()
            }
            .cid()
            .unwrap(),
            reference: "order-1".into(),
            coin: Coin::Eth,
            public_key: pk,
            address: Coin::Eth.address(&k.public_key()),
            threshold: 2,
            fiduciaries: vec![
                NoticeFiduciary {
                    id: node(3),
                    share_public_key: pk,
                    commitment_cid: cid_of(b"c1"),
                },
                NoticeFiduciary {
                    id: node(4),
                    share_public_key: pk,
                    commitment_cid: cid_of(b"c2"),
                },
            ],
            dealer_commitments: None,
        };
        roundtrip(&notice);
        let mut t = notice.clone();
        t.order.threshold = 1;
        t.order_cid = t.order.cid().unwrap();
        t.threshold = 1;
        assert!(encode(&t).is_err(), "t < n needs dealer commitments");
        t.dealer_commitments = Some(vec![vec![ByteArray::new(pk)], vec![ByteArray::new(pk)]]);
        roundtrip(&t);
    }

    #[test]
    fn validation_rejections() {
        let bad = |f: &dyn Fn(&mut Order)| {
            let mut o = order();
            f(&mut o);
            encode(&o).unwrap_err()
        };
        bad(&|o| o.reference.clear());
        bad(&|o| o.reference = "x".repeat(300));
        bad(&|o| o.reference = "a\nb".into());
        bad(&|o| o.principal = "not-a-cid".into());
        bad(&|o| o.beneficiary = o.beneficiary.to_uppercase());
        bad(&|o| o.fiduciaries.clear());
        bad(&|o| o.fiduciaries.push(node(3)));
        bad(&|o| o.threshold = 0);
        bad(&|o| o.threshold = 3);
        bad(&|o| o.fiduciaries = (0..40).map(node).collect());
        // A CIDv0 (base58 "Qm…") node ID is not canonical.
        let v0 = Cid::new_v0(*cid_of(&[1]).hash()).unwrap().to_string();
        bad(&|o| o.principal = v0.clone());
    }

    #[test]
    fn strict_decoding() {
        let limits = Limits::default();
        let bytes = encode(&order()).unwrap();
        // Size limit first.
        let small = Limits {
            max_message_bytes: bytes.len() - 1,
            ..limits
        };
        assert!(matches!(
            decode::<Order>(&bytes, &small),
            Err(Error::Oversize { .. })
        ));
        // Truncation and trailing data.
        assert!(decode::<Order>(&bytes[..bytes.len() - 1], &limits).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<Order>(&trailing, &limits).is_err());
        // Unknown field.
        #[derive(Serialize)]
        struct Extra<'a> {
            #[serde(flatten)]
            o: &'a Order,
            extra: u8,
        }
        let o = order();
        let extra = serde_ipld_dagcbor::to_vec(&Extra { o: &o, extra: 1 }).unwrap();
        assert!(matches!(
            decode::<Order>(&extra, &limits),
            Err(Error::Malformed(_) | Error::NonCanonical)
        ));
        // Unknown coin.
        let json = serde_json::to_value(&o).unwrap();
        let mut v = json.clone();
        v["coin"] = "doge".into();
        let cbor = serde_ipld_dagcbor::to_vec(&v).unwrap();
        assert!(matches!(
            decode::<Order>(&cbor, &limits),
            Err(Error::Malformed(_))
        ));
        // Missing field.
        let mut v = json.clone();
        v.as_object_mut().unwrap().remove("threshold");
        let cbor = serde_ipld_dagcbor::to_vec(&v).unwrap();
        assert!(matches!(
            decode::<Order>(&cbor, &limits),
            Err(Error::Malformed(_))
        ));
        // Non-minimal integer (threshold 2 as a 1-byte-argument uint 0x18 0x02).
        let pos = bytes
            .windows(10)
            .position(|w| w == b"\x69threshold")
            .unwrap()
            + 10;
        assert_eq!(bytes[pos], 0x02);
        let mut nonmin = bytes[..pos].to_vec();
        nonmin.extend_from_slice(&[0x18, 0x02]);
        nonmin.extend_from_slice(&bytes[pos + 1..]);
        assert_eq!(decode::<Order>(&nonmin, &limits), Err(Error::NonCanonical));
        // Garbage.
        assert!(decode::<Order>(&[0xff, 0x00, 0x13], &limits).is_err());
    }

    #[test]
    fn wrong_length_keys_and_bad_shares_rejected() {
        let cid = order().cid().unwrap();
        let k = SecretScalar::random().unwrap();
        let c = Commitment::new(&cid, &node(3), &k).unwrap();
        #[derive(Serialize)]
        struct Loose<'a> {
            order_cid: Cid,
            #[serde(with = "serde_bytes")]
            share_public_key: &'a [u8],
            #[serde(with = "serde_bytes")]
            proof: &'a [u8],
        }
        let limits = Limits::default();
        let enc = |pk: &[u8], proof: &[u8]| {
            serde_ipld_dagcbor::to_vec(&Loose {
                order_cid: cid,
                share_public_key: pk,
                proof,
            })
            .unwrap()
        };
        decode::<Commitment>(&enc(&c.share_public_key, &c.proof), &limits).unwrap();
        assert!(decode::<Commitment>(&enc(&c.share_public_key[..32], &c.proof), &limits).is_err());
        assert!(decode::<Commitment>(&enc(&c.share_public_key, &c.proof[..64]), &limits).is_err());
        assert!(decode::<Commitment>(&enc(&[0u8; 33], &c.proof), &limits).is_err());

        #[derive(Serialize)]
        struct RawRelease<'a> {
            order_cid: Cid,
            #[serde(with = "serde_bytes")]
            share: &'a [u8],
        }
        for share in [&[0u8; 32][..], &[0xff; 32][..], &[1u8; 31][..]] {
            let b = serde_ipld_dagcbor::to_vec(&RawRelease {
                order_cid: cid,
                share,
            })
            .unwrap();
            let err = decode::<Release>(&b, &limits).unwrap_err();
            assert!(!format!("{err}").contains("ffff"), "{err}");
        }
    }
}
