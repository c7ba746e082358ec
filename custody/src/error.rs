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

//! Typed errors of the custody core. No variant carries secret material:
//! at most a field name, a size, an index or a node ID.

/// Result with the custody [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the custody core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input larger than the configured limit.
    #[error("{what} too large: {actual} > limit {limit}")]
    Oversize {
        /// What was measured (a message or field name).
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The actual size or count.
        actual: usize,
    },
    /// The bytes are not well-formed DAG-CBOR of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The bytes decode but are not the canonical DAG-CBOR encoding.
    #[error("message is not canonical DAG-CBOR")]
    NonCanonical,
    /// Encoding failed.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// A field holds a value that is well-formed but not acceptable.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// Why it is rejected (never contains the value of a secret field).
        reason: &'static str,
    },
    /// Bytes that are not a valid compressed secp256k1 point (or are the identity).
    #[error("invalid public key")]
    InvalidPublicKey,
    /// Bytes that are not a valid non-zero secp256k1 scalar.
    #[error("invalid secret scalar")]
    InvalidScalar,
    /// A sum of public keys is the point at infinity.
    #[error("aggregated public key is the identity point")]
    IdentityKey,
    /// A proof of knowledge did not verify.
    #[error("proof of knowledge does not verify")]
    InvalidProof,
    /// x*G != P: the shares do not rebuild the wallet key.
    #[error("rebuilt secret key does not match the wallet public key")]
    KeyMismatch,
    /// A Shamir share does not match the Feldman commitments.
    #[error("share {index} does not match the Feldman commitments")]
    ShareMismatch {
        /// The (1-based) share index.
        index: u32,
    },
    /// Threshold parameters out of range.
    #[error("invalid threshold: t={threshold}, n={parties}")]
    InvalidThreshold {
        /// t.
        threshold: usize,
        /// n.
        parties: usize,
    },
    /// A share index is zero, duplicated, or out of range.
    #[error("invalid share index {index}")]
    InvalidIndex {
        /// The offending index.
        index: u32,
    },
    /// Not enough shares or dealings to proceed.
    #[error("not enough shares: have {have}, need {need}")]
    NotEnoughShares {
        /// How many are present.
        have: usize,
        /// How many are needed.
        need: usize,
    },
    /// Dealings that do not fit together (different thresholds).
    #[error("dealings have inconsistent degrees")]
    InconsistentDealings,
    /// A signature share does not verify against its signer's public share.
    #[error(
        "the signature share of signer {signer} does not verify (0: the beneficiary, j: fiduciary j)"
    )]
    InvalidSignatureShare {
        /// The signer's wire index: 0 for the beneficiary, j for fiduciary j.
        signer: u32,
    },
    /// A signature does not verify.
    #[error("the signature does not verify")]
    InvalidSignature,
    /// The FROST library refused an input (a message of its own, never a secret).
    #[error("threshold signing: {0}")]
    Signing(String),
    /// The operating system's CSPRNG failed.
    #[error("the OS random number generator failed")]
    Randomness,
}
