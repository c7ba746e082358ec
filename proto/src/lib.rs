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

//! Milagro wire formats: the protocol core as a pure library.
//!
//! Every document is a DAG-CBOR block addressed by a CIDv1 (sha2-256). This
//! crate defines the two document families of the protocol, [identity
//! documents](identity) and [envelopes](envelope), the [hybrid KEM](kem) that
//! wraps envelope content keys (secp256k1 ECDH + ML-KEM-768), and the
//! [signing](sign) primitives (ECDSA secp256k1 over SHA-256, low-S).
//!
//! It does no I/O: it never reads the clock, the network or the disk. The
//! only ambient input is the operating system's CSPRNG. Private-key
//! operations go through the [`Signer`] and [`EcdhKey`] traits so that a
//! file keystore or a PKCS#11 token can provide them; the ML-KEM-768
//! decapsulation key is a value type ([`DecapsulationKey`]).
//!
//! The format is specified in `docs/protocol.md`, with test vectors in
//! `proto/tests/vectors/`.
//!
//! ```
//! use milagro_proto::*;
//!
//! # fn main() -> Result<()> {
//! // A node: keys (in a keystore or HSM in real use) and its identity.
//! let keys = |name: &str| -> Result<_> {
//!     let signer = LocalSigner::generate()?;
//!     let ecdh = LocalEcdhKey::generate()?;
//!     let kem = DecapsulationKey::generate()?;
//!     let draft = IdentityDraft::new(
//!         name,
//!         1_700_000_000_000,
//!         signer.public_key(),
//!         ecdh.public_key(),
//!         kem.public_key(),
//!     );
//!     let id = draft.sign(&signer)?;
//!     Ok((signer, ecdh, kem, id))
//! };
//! let (alice_signer, _, _, alice) = keys("alice")?;
//! let (_, bob_ecdh, bob_kem, bob) = keys("bob")?;
//!
//! // Alice seals to Bob; the block goes over the wire as (CID, bytes).
//! let draft = EnvelopeDraft {
//!     body: Some(b"order-1"),
//!     secret_body: Some(b"share"),
//!     ..EnvelopeDraft::new("custody/release", 1_700_000_000_500)
//! };
//! let sent = seal(&alice_signer, &alice, &[&bob], &draft)?;
//! let (cid, bytes) = (sent.cid(), sent.block().bytes());
//!
//! // Bob: resolve the sender's identity by CID, verify, then open.
//! let limits = Limits::default();
//! let alice_doc = VerifiedIdentity::decode(alice.id(), alice.block().bytes(), &limits)?;
//! let envelope = Envelope::decode(cid, bytes, &limits)?;
//! assert_eq!(envelope.sender(), alice_doc.id());
//! let envelope = envelope.verify(&alice_doc)?;
//! // (replay cache on envelope.id(), clock skew on envelope.time_ms() here)
//! let secret = envelope.open(bob.id(), &bob_ecdh, &bob_kem)?;
//! assert_eq!(&secret[..], b"share");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod block;
pub mod chain;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod kem;
pub mod limits;
pub mod receipt;
mod rng;
pub mod sign;

pub use block::{
    Block, Cid, DAG_CBOR, SHA2_256, cid_of, cid_v1, from_dag_cbor_canonical, to_dag_cbor,
};
pub use chain::{REVOKED_KIND, ROTATED_KIND, Revocation, Rotated};
pub use delivery::{CID_HEADER, decode_delivery, encode_delivery, inbox_topic};
pub use envelope::{Envelope, EnvelopeDraft, MessageId, VerifiedEnvelope, check_kind, open, seal};
pub use error::{Error, KeyError};
pub use identity::{Endpoints, IdentityDraft, VerifiedIdentity};
pub use kem::{DecapsulationKey, EcdhKey, KemPublicKey, LocalEcdhKey};
pub use limits::Limits;
pub use receipt::{Receipt, receipt_topic};
pub use sign::{EcPublicKey, LocalSigner, Signature, Signer};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
