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

//! Error types: one variant per reason a document is refused.
//!
//! Messages name the field or check that failed and never contain key
//! material, plaintext or shared secrets. Public values (CIDs, lengths,
//! version numbers) may appear.

use crate::block::Cid;

/// Failure of a private-key operation ([`crate::Signer`], [`crate::EcdhKey`]).
///
/// Implementations (file keystore, PKCS#11) must keep secrets out of the
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key backend (keystore, token) reported a failure.
    #[error("key backend failed: {0}")]
    Backend(String),
    /// The backend produced a signature that is not a valid ECDSA signature.
    #[error("key backend returned a malformed signature")]
    MalformedSignature,
    /// The peer public key was refused by the backend.
    #[error("peer public key refused by key backend")]
    InvalidPeerKey,
}

/// Why a document could not be built, decoded, verified or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended in the middle of a CBOR item.
    #[error("truncated CBOR: input ended inside {0}")]
    Truncated(&'static str),
    /// The input is not DAG-CBOR, or not a document of the expected shape.
    #[error("malformed DAG-CBOR: {0}")]
    MalformedCbor(String),
    /// Bytes remain after the document.
    #[error("trailing bytes after the CBOR document")]
    TrailingData,
    /// The bytes decode but are not the canonical DAG-CBOR encoding of the
    /// document (for example `null` in place of an absent optional field).
    #[error("non-canonical encoding: re-encoding the document gives different bytes")]
    NonCanonical,
    /// The document could not be encoded (should not happen for valid values).
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The CID is not CIDv1 / dag-cbor (0x71) / sha2-256 (0x12, 32 bytes).
    #[error("unsupported CID {cid}: expected CIDv1, dag-cbor, sha2-256")]
    UnsupportedCid {
        /// The CID that was refused.
        cid: Box<Cid>,
    },
    /// The bytes do not hash to the CID they were presented under.
    #[error("hash mismatch: bytes hash to {actual}, expected {expected}")]
    HashMismatch {
        /// The CID the caller asked for.
        expected: Box<Cid>,
        /// The CID of the bytes actually received.
        actual: Box<Cid>,
    },
    /// The document's version field is not one this implementation knows.
    #[error("unknown {document} version {found} (supported: {supported})")]
    UnknownVersion {
        /// "identity" or "envelope".
        document: &'static str,
        /// Version found in the document.
        found: u64,
        /// Version supported here.
        supported: u64,
    },
    /// An input or a list exceeds the configured [`crate::Limits`].
    #[error("oversize {what}: {actual} exceeds limit {limit}")]
    Oversize {
        /// What was measured.
        what: &'static str,
        /// Configured limit.
        limit: usize,
        /// Measured size.
        actual: usize,
    },
    /// A field has the wrong length or an invalid value.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// Field name as in the CBOR document.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A public key field is not a valid key.
    #[error("invalid public key in field {field}")]
    InvalidPublicKey {
        /// Field name as in the CBOR document.
        field: &'static str,
    },
    /// An ECDSA signature has a high S value (only low-S is accepted).
    #[error("signature {what} is not low-S normalised")]
    HighS {
        /// Which signature.
        what: &'static str,
    },
    /// A signature does not verify.
    #[error("bad signature: {what}")]
    BadSignature {
        /// Which signature.
        what: &'static str,
    },
    /// The signer given to a builder does not hold the key named in the document.
    #[error("signer key does not match the {what} key in the document")]
    SignerMismatch {
        /// Which key.
        what: &'static str,
    },
    /// A rotated identity document does not link to the given previous document.
    #[error("identity rotation: document links to {linked:?}, not to {given}")]
    RotationMismatch {
        /// What the document links to (None if it has no link).
        linked: Option<Box<Cid>>,
        /// The previous document that was given.
        given: Box<Cid>,
    },
    /// A rotated identity document is not newer than the document it replaces.
    #[error("identity rotation: created time does not increase")]
    RotationNotNewer,
    /// The envelope names a different sender than the identity given.
    #[error("sender mismatch: envelope is from {found}, expected {expected}")]
    SenderMismatch {
        /// Identity given by the caller.
        expected: Box<Cid>,
        /// Sender named in the envelope.
        found: Box<Cid>,
    },
    /// A receipt names a different recipient than the identity given.
    #[error("receipt is from {found}, expected {expected}")]
    ReceiptMismatch {
        /// Identity given by the caller.
        expected: Box<Cid>,
        /// Recipient named in the receipt.
        found: Box<Cid>,
    },
    /// The same recipient is listed twice.
    #[error("recipient {0} listed more than once")]
    DuplicateRecipient(Box<Cid>),
    /// The envelope is not addressed to this identity.
    #[error("not a recipient of this envelope: {0}")]
    NotARecipient(Box<Cid>),
    /// The envelope has no sealed body to open.
    #[error("envelope has no sealed body")]
    NotSealed,
    /// A sealed body needs at least one recipient.
    #[error("a sealed body needs at least one recipient")]
    NoRecipients,
    /// The recipient's key stanza did not unwrap (wrong keys, or tampered
    /// stanza or header).
    #[error("content key unwrap failed for this recipient")]
    KeyUnwrapFailed,
    /// The sealed body did not decrypt (tampered ciphertext or header).
    #[error("sealed body decryption failed")]
    DecryptionFailed,
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed")]
    Randomness,
    /// A private-key operation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}
