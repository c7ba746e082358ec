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

//! Identity documents: a node's self-signed public keys. Node ID = the CID.
//!
//! A document carries a secp256k1 signing key, a secp256k1 ECDH key, an
//! ML-KEM-768 encapsulation key, an optional beneficiary key, endpoint hints
//! and, after a key rotation, a link to the previous document plus a
//! signature by the previous document's signing key.
//!
//! Both signatures are over the canonical DAG-CBOR of the document without
//! its `sig` and `prev_sig` fields, each prefixed with its own label
//! ([`SELF_SIGNATURE_LABEL`], [`ROTATION_SIGNATURE_LABEL`]).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::block::{Block, Cid, check_cid_form, from_dag_cbor_canonical, to_dag_cbor};
use crate::kem::KemPublicKey;
use crate::limits::{self, Limits};
use crate::sign::{EcPublicKey, Signature, Signer, sign_document, signing_digest};
use crate::{Error, Result};

/// The identity document version this implementation reads and writes.
pub const IDENTITY_VERSION: u64 = 1;
/// Domain-separation prefix of the self-signature.
pub const SELF_SIGNATURE_LABEL: &[u8] = b"milagro/identity/v1/self-signature\0";
/// Domain-separation prefix of the rotation signature (by the previous key).
pub const ROTATION_SIGNATURE_LABEL: &[u8] = b"milagro/identity/v1/rotation-signature\0";

/// Where a node can be reached. All hints are unauthenticated beyond the
/// document's signature: a client still verifies whatever answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// HTTP(S) base URLs (`http://` or `https://`).
    pub http: Vec<String>,
    /// IPFS / libp2p peer ID, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    /// libp2p multiaddrs, as text.
    pub multiaddrs: Vec<String>,
}

/// The CBOR map of an identity document (field names are the wire names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityWire {
    pub version: u64,
    pub name: String,
    pub created: u64,
    pub signing_key: ByteBuf,
    pub ecdh_key: ByteBuf,
    pub kem_key: ByteBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary_key: Option<ByteBuf>,
    pub endpoints: Endpoints,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Cid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_sig: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<ByteBuf>,
}

#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

impl IdentityWire {
    /// The signing input body: the document without `sig` and `prev_sig`.
    fn unsigned_bytes(&self) -> Result<Vec<u8>> {
        let mut unsigned = self.clone();
        unsigned.sig = None;
        unsigned.prev_sig = None;
        to_dag_cbor(&unsigned)
    }
}

/// The contents of an identity document before signing.
#[derive(Debug, Clone)]
pub struct IdentityDraft {
    /// Human-readable node name.
    pub name: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// ECDSA secp256k1 key that signs this document and the node's envelopes.
    pub signing_key: EcPublicKey,
    /// secp256k1 key for the ECDH half of the hybrid KEM.
    pub ecdh_key: EcPublicKey,
    /// ML-KEM-768 key for the post-quantum half of the hybrid KEM.
    pub kem_key: KemPublicKey,
    /// Beneficiary EC key (custody), if this node is a beneficiary.
    pub beneficiary_key: Option<EcPublicKey>,
    /// Endpoint hints.
    pub endpoints: Endpoints,
}

impl IdentityDraft {
    /// A draft with no beneficiary key and no endpoints.
    pub fn new(
        name: impl Into<String>,
        created_ms: u64,
        signing_key: EcPublicKey,
        ecdh_key: EcPublicKey,
        kem_key: KemPublicKey,
    ) -> Self {
        IdentityDraft {
            name: name.into(),
            created_ms,
            signing_key,
            ecdh_key,
            kem_key,
            beneficiary_key: None,
            endpoints: Endpoints::default(),
        }
    }

    fn to_wire(&self, prev: Option<Cid>) -> IdentityWire {
        IdentityWire {
            version: IDENTITY_VERSION,
            name: self.name.clone(),
            created: self.created_ms,
            signing_key: ByteBuf::from(self.signing_key.to_bytes().to_vec()),
            ecdh_key: ByteBuf::from(self.ecdh_key.to_bytes().to_vec()),
            kem_key: ByteBuf::from(self.kem_key.to_bytes()),
            beneficiary_key: self
                .beneficiary_key
                .map(|k| ByteBuf::from(k.to_bytes().to_vec())),
            endpoints: self.endpoints.clone(),
            prev,
            prev_sig: None,
            sig: None,
        }
    }

    /// Self-sign a first (non-rotated) document. `signer` must hold
    /// `signing_key`. The result is checked against [`Limits::default`].
    pub fn sign(&self, signer: &dyn Signer) -> Result<VerifiedIdentity> {
        let mut wire = self.to_wire(None);
        let body = wire.unsigned_bytes()?;
        let sig = sign_document(
            signer,
            &self.signing_key,
            SELF_SIGNATURE_LABEL,
            &body,
            "identity self-signature",
        )?;
        wire.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        finish(&wire)
    }

    /// Sign a document that replaces `previous`: self-signed by `signer`
    /// (the new signing key) and signed by `previous_signer` (the previous
    /// document's signing key).
    pub fn sign_rotation(
        &self,
        signer: &dyn Signer,
        previous: &VerifiedIdentity,
        previous_signer: &dyn Signer,
    ) -> Result<VerifiedIdentity> {
        let mut wire = self.to_wire(Some(*previous.id()));
        let body = wire.unsigned_bytes()?;
        let sig = sign_document(
            signer,
            &self.signing_key,
            SELF_SIGNATURE_LABEL,
            &body,
            "identity self-signature",
        )?;
        let prev_sig = sign_document(
            previous_signer,
            previous.signing_key(),
            ROTATION_SIGNATURE_LABEL,
            &body,
            "previous identity",
        )?;
        wire.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        wire.prev_sig = Some(ByteBuf::from(prev_sig.to_bytes().to_vec()));
        let identity = finish(&wire)?;
        identity.verify_rotation(previous)?;
        Ok(identity)
    }
}

fn finish(wire: &IdentityWire) -> Result<VerifiedIdentity> {
    let block = Block::encode(wire)?;
    VerifiedIdentity::decode(block.cid(), block.bytes(), &Limits::default())
}

/// An identity document whose hash, structure and self-signature have been
/// checked. A rotated document (with `prev`) is only trusted as a successor
/// of its predecessor after [`VerifiedIdentity::verify_rotation`].
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    block: Block,
    wire: IdentityWire,
    signing_key: EcPublicKey,
    ecdh_key: EcPublicKey,
    kem_key: KemPublicKey,
    beneficiary_key: Option<EcPublicKey>,
}

impl PartialEq for VerifiedIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.block == other.block
    }
}
impl Eq for VerifiedIdentity {}

impl VerifiedIdentity {
    /// Decode and verify the identity document `bytes` received as `cid`.
    ///
    /// Checks, in order: CID form, size, hash, version, canonical DAG-CBOR,
    /// field lengths and keys, limits, and the self-signature.
    pub fn decode(cid: &Cid, bytes: &[u8], limits: &Limits) -> Result<Self> {
        let block = Block::from_parts(cid, bytes.to_vec(), limits.max_identity_bytes)?;
        Self::from_block(block, limits)
    }

    /// As [`VerifiedIdentity::decode`], for a [`Block`] already hash-checked.
    pub fn from_block(block: Block, limits: &Limits) -> Result<Self> {
        limits::check(
            "identity document",
            block.bytes().len(),
            limits.max_identity_bytes,
        )?;
        check_version(block.bytes())?;
        let wire: IdentityWire = from_dag_cbor_canonical(block.bytes())?;
        validate(block, wire, limits)
    }

    /// Check that this document is a valid successor of `previous`: it
    /// links to `previous`, is newer, and carries a rotation signature by
    /// `previous`'s signing key.
    pub fn verify_rotation(&self, previous: &VerifiedIdentity) -> Result<()> {
        if self.wire.prev != Some(*previous.id()) {
            return Err(Error::RotationMismatch {
                linked: self.wire.prev.map(Box::new),
                given: Box::new(*previous.id()),
            });
        }
        if self.wire.created <= previous.wire.created {
            return Err(Error::RotationNotNewer);
        }
        let prev_sig = self.wire.prev_sig.as_ref().ok_or(Error::InvalidField {
            field: "prev_sig",
            reason: "missing",
        })?;
        let sig = Signature::from_bytes(prev_sig, "prev_sig")?;
        let digest = signing_digest(ROTATION_SIGNATURE_LABEL, &self.wire.unsigned_bytes()?);
        previous
            .signing_key
            .verify_prehash(&digest, &sig, "identity rotation signature")
    }

    /// Node ID: the CID of this document.
    pub fn id(&self) -> &Cid {
        self.block.cid()
    }
    /// The encoded document.
    pub fn block(&self) -> &Block {
        &self.block
    }
    /// Document version.
    pub fn version(&self) -> u64 {
        self.wire.version
    }
    /// Node name.
    pub fn name(&self) -> &str {
        &self.wire.name
    }
    /// Creation time, Unix milliseconds.
    pub fn created_ms(&self) -> u64 {
        self.wire.created
    }
    /// ECDSA signing key.
    pub fn signing_key(&self) -> &EcPublicKey {
        &self.signing_key
    }
    /// ECDH key of the hybrid KEM.
    pub fn ecdh_key(&self) -> &EcPublicKey {
        &self.ecdh_key
    }
    /// ML-KEM-768 key of the hybrid KEM.
    pub fn kem_key(&self) -> &KemPublicKey {
        &self.kem_key
    }
    /// Beneficiary EC key, if any.
    pub fn beneficiary_key(&self) -> Option<&EcPublicKey> {
        self.beneficiary_key.as_ref()
    }
    /// Endpoint hints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.wire.endpoints
    }
    /// The document this one replaces, if it is a rotation.
    pub fn previous(&self) -> Option<&Cid> {
        self.wire.prev.as_ref()
    }
}

pub(crate) fn check_version_of(bytes: &[u8], document: &'static str, supported: u64) -> Result<()> {
    // Read only the version first, so that a newer document is reported as
    // such rather than as malformed.
    let probe: VersionProbe = serde_ipld_dagcbor::from_slice(bytes).map_err(|e| match e {
        serde_ipld_dagcbor::DecodeError::Eof { name, .. } => Error::Truncated(name),
        serde_ipld_dagcbor::DecodeError::TrailingData => Error::TrailingData,
        _ => Error::MalformedCbor(format!("not an {document} document")),
    })?;
    if probe.version != supported {
        return Err(Error::UnknownVersion {
            document,
            found: probe.version,
            supported,
        });
    }
    Ok(())
}

fn check_version(bytes: &[u8]) -> Result<()> {
    check_version_of(bytes, "identity", IDENTITY_VERSION)
}

pub(crate) fn check_text(field: &'static str, text: &str, limits: &Limits) -> Result<()> {
    limits::check(field, text.len(), limits.max_text_bytes)
}

fn validate(block: Block, wire: IdentityWire, limits: &Limits) -> Result<VerifiedIdentity> {
    check_text("name", &wire.name, limits)?;
    let ep = &wire.endpoints;
    let count = ep.http.len() + ep.multiaddrs.len() + usize::from(ep.peer_id.is_some());
    limits::check("endpoints", count, limits.max_endpoints)?;
    for url in &ep.http {
        check_text("endpoints.http", url, limits)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidField {
                field: "endpoints.http",
                reason: "must start with http:// or https://",
            });
        }
    }
    for addr in &ep.multiaddrs {
        check_text("endpoints.multiaddrs", addr, limits)?;
        if !addr.starts_with('/') {
            return Err(Error::InvalidField {
                field: "endpoints.multiaddrs",
                reason: "must start with /",
            });
        }
    }
    if let Some(p) = &ep.peer_id {
        check_text("endpoints.peer_id", p, limits)?;
    }
    let signing_key = EcPublicKey::from_bytes(&wire.signing_key, "signing_key")?;
    let ecdh_key = EcPublicKey::from_bytes(&wire.ecdh_key, "ecdh_key")?;
    let kem_key = KemPublicKey::from_bytes(&wire.kem_key, "kem_key")?;
    let beneficiary_key = wire
        .beneficiary_key
        .as_ref()
        .map(|b| EcPublicKey::from_bytes(b, "beneficiary_key"))
        .transpose()?;
    match (&wire.prev, &wire.prev_sig) {
        (Some(prev), Some(prev_sig)) => {
            check_cid_form(prev)?;
            // Parse now so a malformed or high-S rotation signature is
            // refused even before the previous document is at hand.
            Signature::from_bytes(prev_sig, "prev_sig")?;
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(Error::InvalidField {
                field: "prev_sig",
                reason: "required when prev is present",
            });
        }
        (None, Some(_)) => {
            return Err(Error::InvalidField {
                field: "prev_sig",
                reason: "present without prev",
            });
        }
    }
    let sig = wire.sig.as_ref().ok_or(Error::InvalidField {
        field: "sig",
        reason: "missing",
    })?;
    let sig = Signature::from_bytes(sig, "sig")?;
    let digest = signing_digest(SELF_SIGNATURE_LABEL, &wire.unsigned_bytes()?);
    signing_key.verify_prehash(&digest, &sig, "identity self-signature")?;
    Ok(VerifiedIdentity {
        block,
        wire,
        signing_key,
        ecdh_key,
        kem_key,
        beneficiary_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecapsulationKey, EcdhKey, LocalEcdhKey, LocalSigner};

    fn draft(signer: &LocalSigner, created_ms: u64) -> IdentityDraft {
        IdentityDraft::new(
            "n",
            created_ms,
            signer.public_key(),
            LocalEcdhKey::generate().unwrap().public_key(),
            DecapsulationKey::generate().unwrap().public_key(),
        )
    }

    #[test]
    fn rotation_signed_by_wrong_previous_key_is_refused() {
        let old_signer = LocalSigner::generate().unwrap();
        let old = draft(&old_signer, 1).sign(&old_signer).unwrap();
        let new_signer = LocalSigner::generate().unwrap();
        let mallory = LocalSigner::generate().unwrap();
        // Hand-build a successor linking to `old` whose rotation signature
        // is by mallory instead of old's key.
        let mut wire = draft(&new_signer, 2).to_wire(Some(*old.id()));
        let body = wire.unsigned_bytes().unwrap();
        let sig = new_signer
            .sign_prehash(&signing_digest(SELF_SIGNATURE_LABEL, &body))
            .unwrap();
        let prev_sig = mallory
            .sign_prehash(&signing_digest(ROTATION_SIGNATURE_LABEL, &body))
            .unwrap();
        wire.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        wire.prev_sig = Some(ByteBuf::from(prev_sig.to_bytes().to_vec()));
        let forged = finish(&wire).unwrap(); // self-signature is fine
        assert_eq!(
            forged.verify_rotation(&old).unwrap_err(),
            Error::BadSignature {
                what: "identity rotation signature"
            }
        );
        // A self-signature cannot stand in for the rotation signature
        // (different label), even when the key is reused.
        let mut reuse = draft(&old_signer, 3).to_wire(Some(*old.id()));
        let body = reuse.unsigned_bytes().unwrap();
        let sig = old_signer
            .sign_prehash(&signing_digest(SELF_SIGNATURE_LABEL, &body))
            .unwrap();
        reuse.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        reuse.prev_sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        let forged = finish(&reuse).unwrap();
        assert!(matches!(
            forged.verify_rotation(&old),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn prev_and_prev_sig_go_together() {
        let s = LocalSigner::generate().unwrap();
        let old = draft(&s, 1).sign(&s).unwrap();
        let mut wire = draft(&s, 2).to_wire(Some(*old.id()));
        let body = wire.unsigned_bytes().unwrap();
        let sig = s
            .sign_prehash(&signing_digest(SELF_SIGNATURE_LABEL, &body))
            .unwrap();
        wire.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        assert!(matches!(
            finish(&wire),
            Err(Error::InvalidField {
                field: "prev_sig",
                ..
            })
        ));
    }

    #[test]
    fn bad_endpoints_and_missing_sig() {
        let s = LocalSigner::generate().unwrap();
        let mut d = draft(&s, 1);
        d.endpoints.http.push("ftp://x".into());
        assert!(matches!(
            d.sign(&s),
            Err(Error::InvalidField {
                field: "endpoints.http",
                ..
            })
        ));
        let wire = draft(&s, 1).to_wire(None);
        assert!(matches!(
            finish(&wire),
            Err(Error::InvalidField { field: "sig", .. })
        ));
    }
}
