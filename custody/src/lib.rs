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

//! Milagro custody protocol core: a pure library (no I/O, no async).
//!
//! The custody-principal, custody-fiduciary and beneficiary plugins build on
//! this crate. It provides:
//!
//! - [`messages`]: the DAG-CBOR bodies of `custody/order`, `custody/commitment`,
//!   `custody/redeem`, `custody/release` and `custody/notice`, with canonical
//!   encoding and strict, size-limited decoding;
//! - [`verify`]: the principal's checks of a commitment against its order,
//!   and the wallet key from the verified commitments;
//! - [`pok`]: the Schnorr proof of knowledge of a fiduciary's share, bound to
//!   the order and to the fiduciary;
//! - [`reshare`]: share refresh and resharing to a new fiduciary set, the
//!   wallet key unchanged;
//! - [`wallet`]: the wallet public key P = B + ΣK_i and the wallet secret
//!   x = b + Σk_i, checked against P;
//! - [`address`]: Bitcoin P2WPKH / P2PKH (mainnet and testnet), Ethereum
//!   EIP-55 addresses and WIF export; [`taproot`]: BIP86 key-path outputs
//!   and their bech32m addresses;
//! - [`signing`]: BIP340 signatures by the beneficiary and any t fiduciaries
//!   together (FROST), the wallet key never assembled;
//! - [`shamir`] and [`feldman`]: the threshold arithmetic of the t-of-n mode
//!   (Shamir shares, Feldman commitments, Lagrange interpolation, joint-Feldman
//!   DKG aggregation).
//!
//! The protocol is written down in `docs/custody.md`. All randomness comes from
//! the operating system's CSPRNG; secret values are zeroized on drop and never
//! appear in errors or `Debug` output.

#![forbid(unsafe_code)]

pub mod address;
pub mod error;
pub mod feldman;
pub mod keys;
pub mod messages;
pub mod pok;
pub mod reshare;
mod rng;
pub mod shamir;
pub mod signing;
pub mod taproot;
pub mod verify;
pub mod wallet;

pub use error::{Error, Result};
pub use k256::{ProjectivePoint, PublicKey, Scalar};
pub use keys::SecretScalar;
pub use messages::Coin;
