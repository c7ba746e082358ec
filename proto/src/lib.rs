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

pub mod block;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod kem;
pub mod limits;
mod rng;
pub mod sign;

pub use block::{Block, Cid};
pub use envelope::{Envelope, EnvelopeDraft, MessageId, VerifiedEnvelope, open, seal};
pub use error::{Error, KeyError};
pub use identity::{Endpoints, IdentityDraft, VerifiedIdentity};
pub use kem::{DecapsulationKey, EcdhKey, KemPublicKey, LocalEcdhKey};
pub use limits::Limits;
pub use sign::{EcPublicKey, LocalSigner, Signature, Signer};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
