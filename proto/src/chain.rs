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

//! Identity chains: how a node tells its counterparties that it rotated
//! (`identity/rotated`), and how it revokes an earlier generation's key
//! (`identity/revoked`).
//!
//! Both travel as the plaintext body of an ordinary signed envelope from the
//! node's current ID. A [`Rotated`] body names the ID a peer knew
//! (`previous`) and the newest document (`current`, which must be the
//! envelope's sender); the receiver checks that `current`'s rotation chain
//! passes through `previous`. A [`Revocation`] is a small signed document of
//! its own (DAG-CBOR, also stored on IPFS): `revoked` (an earlier ID of the
//! chain), `by` (a later ID of the same chain, whose signing key signs it)
//! and `time`; envelopes signed by the revoked ID's key with a time after it
//! are refused. Whether `by` really succeeds `revoked` needs the identity
//! documents, so the caller checks that (this crate does no I/O).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    Cid, Error, Result, Signer, VerifiedIdentity,
    block::{check_cid_form, from_dag_cbor_canonical, to_dag_cbor},
    identity::check_version_of,
    limits,
    sign::{Signature, sign_document, signing_digest},
};

/// Envelope kind announcing a rotation; its body is a [`Rotated`].
pub const ROTATED_KIND: &str = "identity/rotated";
/// Envelope kind carrying a [`Revocation`] as its body.
pub const REVOKED_KIND: &str = "identity/revoked";
/// Version of both bodies.
pub const CHAIN_VERSION: u64 = 1;
/// Domain separation of revocation signatures.
pub const REVOCATION_LABEL: &[u8] = b"milagro/revocation/v1/signature\0";
/// Largest body of either kind: two CIDs, a time, a signature and framing.
pub const MAX_CHAIN_BODY_BYTES: usize = 512;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotatedWire {
    version: u64,
    previous: Cid,
    current: Cid,
}

/// The body of an `identity/rotated` envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// An ID the receiver knew the node by (an earlier document).
    pub previous: Cid,
    /// The node's newest document: the envelope's sender.
    pub current: Cid,
}

impl Rotated {
    /// The wire encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        to_dag_cbor(&RotatedWire {
            version: CHAIN_VERSION,
            previous: self.previous,
            current: self.current,
        })
    }

    /// Decodes strictly: size, version, canonical DAG-CBOR, CID forms, and
    /// `previous` differing from `current`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        limits::check("identity/rotated body", bytes.len(), MAX_CHAIN_BODY_BYTES)?;
        check_version_of(bytes, "identity/rotated", CHAIN_VERSION)?;
        let wire: RotatedWire = from_dag_cbor_canonical(bytes)?;
        check_cid_form(&wire.previous)?;
        check_cid_form(&wire.current)?;
        if wire.previous == wire.current {
            return Err(Error::InvalidField {
                field: "previous",
                reason: "must differ from current",
            });
        }
        Ok(Rotated {
            previous: wire.previous,
            current: wire.current,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationWire {
    version: u64,
    revoked: Cid,
    by: Cid,
    time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sig: Option<ByteBuf>,
}

impl RevocationWire {
    fn unsigned_bytes(&self) -> Result<Vec<u8>> {
        let mut unsigned = self.clone();
        unsigned.sig = None;
        to_dag_cbor(&unsigned)
    }
}

/// A signed revocation of the key of identity `revoked` by `by`, a later
/// document of the same chain. Decoded, its signature is not yet checked:
/// see [`Revocation::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    wire_revoked: Cid,
    wire_by: Cid,
    time_ms: u64,
    signature: Signature,
}

impl Revocation {
    /// `by` (this node's current identity, whose key `signer` holds)
    /// revokes the key of its earlier identity `revoked` from `time_ms` on.
    pub fn sign(
        signer: &dyn Signer,
        by: &VerifiedIdentity,
        revoked: &Cid,
        time_ms: u64,
    ) -> Result<Self> {
        if revoked == by.id() {
            return Err(Error::InvalidField {
                field: "revoked",
                reason: "a key cannot revoke itself",
            });
        }
        let wire = RevocationWire {
            version: CHAIN_VERSION,
            revoked: *revoked,
            by: *by.id(),
            time: time_ms,
            sig: None,
        };
        let signature = sign_document(
            signer,
            by.signing_key(),
            REVOCATION_LABEL,
            &wire.unsigned_bytes()?,
            "revocation signature",
        )?;
        Ok(Revocation {
            wire_revoked: *revoked,
            wire_by: *by.id(),
            time_ms,
            signature,
        })
    }

    fn wire(&self) -> RevocationWire {
        RevocationWire {
            version: CHAIN_VERSION,
            revoked: self.wire_revoked,
            by: self.wire_by,
            time: self.time_ms,
            sig: Some(ByteBuf::from(self.signature.to_bytes().to_vec())),
        }
    }

    /// The ID whose key is revoked.
    pub fn revoked(&self) -> &Cid {
        &self.wire_revoked
    }
    /// The ID that signed the revocation (must succeed `revoked`).
    pub fn by(&self) -> &Cid {
        &self.wire_by
    }
    /// From when on (Unix ms) envelopes signed by the revoked key are refused.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// Checks the signature against `by`'s identity document (which the
    /// caller has resolved, and checked succeeds `revoked`).
    pub fn verify(&self, by: &VerifiedIdentity) -> Result<()> {
        if by.id() != &self.wire_by {
            return Err(Error::InvalidField {
                field: "by",
                reason: "is not the identity given to verify it",
            });
        }
        let digest = signing_digest(REVOCATION_LABEL, &self.wire().unsigned_bytes()?);
        by.signing_key()
            .verify_prehash(&digest, &self.signature, "revocation signature")
    }

    /// The wire encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        to_dag_cbor(&self.wire())
    }

    /// Decodes strictly: size, version, canonical DAG-CBOR, CID forms, a
    /// signature of the right shape, and `revoked` differing from `by`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        limits::check("revocation", bytes.len(), MAX_CHAIN_BODY_BYTES)?;
        check_version_of(bytes, "revocation", CHAIN_VERSION)?;
        let wire: RevocationWire = from_dag_cbor_canonical(bytes)?;
        check_cid_form(&wire.revoked)?;
        check_cid_form(&wire.by)?;
        if wire.revoked == wire.by {
            return Err(Error::InvalidField {
                field: "revoked",
                reason: "a key cannot revoke itself",
            });
        }
        let sig = wire.sig.as_ref().ok_or(Error::InvalidField {
            field: "sig",
            reason: "missing",
        })?;
        Ok(Revocation {
            wire_revoked: wire.revoked,
            wire_by: wire.by,
            time_ms: wire.time,
            signature: Signature::from_bytes(sig, "revocation signature")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecapsulationKey, EcdhKey, IdentityDraft, LocalEcdhKey, LocalSigner};

    fn node(created_ms: u64) -> (LocalSigner, VerifiedIdentity) {
        let signer = LocalSigner::generate().unwrap();
        let draft = IdentityDraft::new(
            "n",
            created_ms,
            signer.public_key(),
            LocalEcdhKey::generate().unwrap().public_key(),
            DecapsulationKey::generate().unwrap().public_key(),
        );
        let id = draft.sign(&signer).unwrap();
        (signer, id)
    }

    #[test]
    fn a_revocation_round_trips_and_verifies_only_for_its_signer() {
        let (_, old) = node(1);
        let (signer, new) = node(2);
        let (mallory_signer, mallory) = node(3);
        let revocation = Revocation::sign(&signer, &new, old.id(), 10).unwrap();
        let decoded = Revocation::decode(&revocation.encode().unwrap()).unwrap();
        assert_eq!(decoded, revocation);
        assert_eq!(decoded.revoked(), old.id());
        assert_eq!(decoded.by(), new.id());
        assert_eq!(decoded.time_ms(), 10);
        decoded.verify(&new).unwrap();
        assert!(decoded.verify(&mallory).is_err());
        // Mallory's signature under `new`'s name does not verify.
        let forged = Revocation {
            wire_by: *new.id(),
            ..Revocation::sign(&mallory_signer, &mallory, old.id(), 10).unwrap()
        };
        assert!(matches!(
            forged.verify(&new),
            Err(Error::BadSignature { .. })
        ));
        // Nor does a signature cover another time.
        let moved = Revocation {
            time_ms: 11,
            ..revocation.clone()
        };
        assert!(moved.verify(&new).is_err());
        // A key never revokes itself.
        assert!(Revocation::sign(&signer, &new, new.id(), 10).is_err());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let (signer, new) = node(2);
        let (_, old) = node(1);
        let bytes = Revocation::sign(&signer, &new, old.id(), 10)
            .unwrap()
            .encode()
            .unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(Revocation::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            Revocation::decode(&vec![0u8; MAX_CHAIN_BODY_BYTES + 1]),
            Err(Error::Oversize { .. })
        ));
        let rotated = Rotated {
            previous: *old.id(),
            current: *new.id(),
        };
        assert_eq!(
            Rotated::decode(&rotated.encode().unwrap()).unwrap(),
            rotated
        );
        let same = Rotated {
            previous: *new.id(),
            current: *new.id(),
        };
        assert!(Rotated::decode(&same.encode().unwrap()).is_err());
        assert!(Rotated::decode(&bytes).is_err());
    }
}
