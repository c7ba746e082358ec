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
//! `custody/order`, `custody/commitment`, `custody/redeem`, `custody/release`,
//! `custody/notice`, the reshare family and the signing family
//! (`custody/sign-*`).
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

//!
//! One file per message family (`order`, `commitment`, `redeem`,
//! `release`, `deal`, `notice`, `reshare`, `signing`), the codec (`codec`) and the field checks
//! they share (`checks`); the protocol checks on top of the bodies are in
//! [`crate::verify`].

pub use ipld_core::cid::Cid;
use k256::PublicKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
/// Fixed-size byte fields of the bodies.
pub use serde_bytes::ByteArray;

use crate::feldman::{self, Commitments};
use crate::keys::{self, PUBLIC_KEY_LEN, SecretScalar};
use crate::pok::{self, PROOF_LEN, PokContext};
use crate::reshare::Sharing;
use crate::shamir::{MAX_PARTIES, Share};
use crate::{Error, Result, wallet};

mod checks;
mod codec;
mod commitment;
mod deal;
mod notice;
mod order;
mod redeem;
mod release;
mod reshare;
mod signing;
#[cfg(test)]
mod tests;

pub use checks::*;
pub use codec::*;
pub use commitment::*;
pub use deal::*;
pub use notice::*;
pub use order::*;
pub use redeem::*;
pub use release::*;
pub use reshare::*;
pub use signing::*;

/// Multicodec code of DAG-CBOR, and multihash code of sha2-256.
pub use milagro_proto::{DAG_CBOR, SHA2_256};

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
    /// Bitcoin mainnet Taproot, key path only (BIP86): bech32m `bc1p…`.
    /// Signs without assembling the key (`crate::signing`).
    #[serde(rename = "btc-taproot")]
    BtcTaproot,
    /// Bitcoin testnet Taproot, key path only (BIP86): bech32m `tb1p…`.
    #[serde(rename = "btc-testnet-taproot")]
    BtcTestnetTaproot,
}

impl Coin {
    /// Every coin, in the order the docs list them.
    pub const ALL: [Coin; 5] = [
        Coin::Btc,
        Coin::BtcTestnet,
        Coin::Eth,
        Coin::BtcTaproot,
        Coin::BtcTestnetTaproot,
    ];

    /// The wire name: `btc`, `btc-testnet`, `eth`, `btc-taproot` or
    /// `btc-testnet-taproot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coin::Btc => "btc",
            Coin::BtcTestnet => "btc-testnet",
            Coin::Eth => "eth",
            Coin::BtcTaproot => "btc-taproot",
            Coin::BtcTestnetTaproot => "btc-testnet-taproot",
        }
    }

    /// Whether wallets of this coin sign by threshold (FROST) without
    /// assembling their key: the Taproot coins.
    pub fn is_taproot(self) -> bool {
        matches!(self, Coin::BtcTaproot | Coin::BtcTestnetTaproot)
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
        Coin::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(Error::InvalidField {
                field: "coin",
                reason: "unknown coin (expected btc, btc-testnet, eth, btc-taproot or btc-testnet-taproot)",
            })
    }
}

/// A custody message body: its envelope kind and its semantic checks.
pub trait Body: Serialize + DeserializeOwned {
    /// The envelope kind carrying this body.
    const KIND: &'static str;
    /// Checks beyond the shape (sizes, keys, node IDs, thresholds).
    fn validate(&self, limits: &Limits) -> Result<()>;
}
