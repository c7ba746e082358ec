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

//! Envelopes: signed, multi-recipient encrypted messages.
//!
//! An envelope has a header (version, kind, sender, time, message id,
//! links to previous envelopes, recipients, optional plaintext body), an
//! optional sealed body and the sender's signature over everything else.
//!
//! Sealing: one random 32-byte content key encrypts the secret body with
//! AES-256-GCM under a random 96-bit nonce. For each recipient the content
//! key is wrapped with AES-256-GCM (zero nonce: every KEK is used once)
//! under a KEK from the [hybrid KEM](crate::kem). Both GCM operations take
//! as associated data `SHA-256(HEADER_LABEL || DAG-CBOR(header))`, so an
//! envelope re-signed by someone else, re-addressed, re-dated or re-linked
//! no longer decrypts.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::block::{Block, Cid, check_cid_form, from_dag_cbor_canonical, to_dag_cbor};
use crate::identity::{VerifiedIdentity, check_text, check_version_of};
use crate::kem::{self, DecapsulationKey, EcdhKey, HybridCiphertext, KEM_CIPHERTEXT_LEN};
use crate::limits::{self, Limits};
use crate::sign::{EcPublicKey, Signature, Signer, sign_document, signing_digest};
use crate::{Error, Result, rng};

/// The envelope version this implementation reads and writes.
pub const ENVELOPE_VERSION: u64 = 1;
/// Domain-separation prefix of the envelope signature.
pub const SIGNATURE_LABEL: &[u8] = b"milagro/envelope/v1/signature\0";
/// Domain-separation prefix of the header digest used as GCM associated data.
pub const HEADER_LABEL: &[u8] = b"milagro/envelope/v1/header\0";
/// Length of a wrapped content key (32-byte key + 16-byte GCM tag).
pub const WRAPPED_KEY_LEN: usize = 48;

/// A random 128-bit message id (replay detection, idempotent processing).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// One recipient's key stanza (wire names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StanzaWire {
    pub epk: ByteBuf,
    pub kem_ct: ByteBuf,
    pub wrapped_key: ByteBuf,
}

/// The sealed body (wire names). `keys[i]` is for `recipients[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealedWire {
    pub nonce: ByteBuf,
    pub ct: ByteBuf,
    pub keys: Vec<StanzaWire>,
}

/// The CBOR map of an envelope (wire names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvelopeWire {
    pub version: u64,
    pub kind: String,
    pub sender: Cid,
    pub time: u64,
    pub id: ByteBuf,
    pub links: Vec<Cid>,
    pub recipients: Vec<Cid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<ByteBuf>,
}

/// The header bound into the GCM associated data (wire names).
#[derive(Serialize)]
struct HeaderWire<'a> {
    version: u64,
    kind: &'a str,
    sender: &'a Cid,
    time: u64,
    id: &'a ByteBuf,
    links: &'a [Cid],
    recipients: &'a [Cid],
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a ByteBuf>,
}

impl EnvelopeWire {
    fn unsigned_bytes(&self) -> Result<Vec<u8>> {
        let mut unsigned = self.clone();
        unsigned.sig = None;
        to_dag_cbor(&unsigned)
    }

    /// `SHA-256(HEADER_LABEL || DAG-CBOR(header))`.
    fn header_digest(&self) -> Result<[u8; 32]> {
        let header = HeaderWire {
            version: self.version,
            kind: &self.kind,
            sender: &self.sender,
            time: self.time,
            id: &self.id,
            links: &self.links,
            recipients: &self.recipients,
            body: self.body.as_ref(),
        };
        let bytes = to_dag_cbor(&header)?;
        let mut h = Sha256::new();
        h.update(HEADER_LABEL);
        h.update(&bytes);
        Ok(h.finalize().into())
    }
}

/// What to put in an envelope.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeDraft<'a> {
    /// Message kind, e.g. `custody/order`.
    pub kind: &'a str,
    /// Sending time, Unix milliseconds.
    pub time_ms: u64,
    /// Previous envelopes of the same conversation.
    pub links: &'a [Cid],
    /// Plaintext body (signed, not encrypted).
    pub body: Option<&'a [u8]>,
    /// Secret body (signed and encrypted to every recipient).
    pub secret_body: Option<&'a [u8]>,
}

impl<'a> EnvelopeDraft<'a> {
    /// A draft with no links and no bodies.
    pub fn new(kind: &'a str, time_ms: u64) -> Self {
        EnvelopeDraft {
            kind,
            time_ms,
            links: &[],
            body: None,
            secret_body: None,
        }
    }
}

/// Sign and (if there is a secret body) encrypt an envelope from `sender`
/// to `recipients`. All randomness (message id, content key, nonce,
/// ephemeral keys, ML-KEM encapsulations) comes from the OS CSPRNG.
///
/// `signer` must hold `sender`'s signing key. Recipients must be distinct;
/// a secret body needs at least one recipient (the sender may be one).
pub fn seal(
    signer: &dyn Signer,
    sender: &VerifiedIdentity,
    recipients: &[&VerifiedIdentity],
    draft: &EnvelopeDraft<'_>,
) -> Result<VerifiedEnvelope> {
    rng::check_os_rng()?;
    seal_with_rng(signer, sender, recipients, draft, &mut rng::os_rng())
}

/// [`seal`] with a caller-supplied RNG: for deterministic test vectors only.
#[doc(hidden)]
pub fn seal_with_rng<R: rand_core::CryptoRng + ?Sized>(
    signer: &dyn Signer,
    sender: &VerifiedIdentity,
    recipients: &[&VerifiedIdentity],
    draft: &EnvelopeDraft<'_>,
    rng: &mut R,
) -> Result<VerifiedEnvelope> {
    let recipient_ids: Vec<Cid> = recipients.iter().map(|r| *r.id()).collect();
    check_unique(&recipient_ids)?;
    for link in draft.links {
        check_cid_form(link)?;
    }
    check_kind(draft.kind)?;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let mut wire = EnvelopeWire {
        version: ENVELOPE_VERSION,
        kind: draft.kind.to_owned(),
        sender: *sender.id(),
        time: draft.time_ms,
        id: ByteBuf::from(id.to_vec()),
        links: draft.links.to_vec(),
        recipients: recipient_ids,
        body: draft.body.map(|b| ByteBuf::from(b.to_vec())),
        sealed: None,
        sig: None,
    };
    if let Some(secret) = draft.secret_body {
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        let aad = wire.header_digest()?;
        let mut content_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut content_key[..]);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        // Reserve room for the tag so that encryption never reallocates
        // (a reallocation would leave a plaintext copy in freed memory).
        let mut ct = Vec::with_capacity(secret.len() + 16);
        ct.extend_from_slice(secret);
        Aes256Gcm::new((&*content_key).into())
            .encrypt_in_place(&Nonce::from(nonce), &aad, &mut ct)
            .map_err(|_| Error::Encode("AES-GCM encryption failed".into()))?;
        let mut keys = Vec::with_capacity(recipients.len());
        for r in recipients {
            let (hct, kek) = kem::encapsulate_with_rng(r.ecdh_key(), r.kem_key(), r.id(), rng)?;
            let mut wrapped = Vec::with_capacity(WRAPPED_KEY_LEN);
            wrapped.extend_from_slice(&content_key[..]);
            Aes256Gcm::new((&*kek).into())
                .encrypt_in_place(&Nonce::default(), &aad, &mut wrapped)
                .map_err(|_| Error::Encode("AES-GCM key wrap failed".into()))?;
            keys.push(StanzaWire {
                epk: ByteBuf::from(hct.epk.to_bytes().to_vec()),
                kem_ct: ByteBuf::from(hct.kem_ct),
                wrapped_key: ByteBuf::from(wrapped),
            });
        }
        wire.sealed = Some(SealedWire {
            nonce: ByteBuf::from(nonce.to_vec()),
            ct: ByteBuf::from(ct),
            keys,
        });
    }
    let sig = sign_document(
        signer,
        sender.signing_key(),
        SIGNATURE_LABEL,
        &wire.unsigned_bytes()?,
        "envelope sender",
    )?;
    wire.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
    let block = Block::encode(&wire)?;
    Ok(VerifiedEnvelope {
        envelope: Envelope { block, wire },
    })
}

fn check_unique(ids: &[Cid]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for id in ids {
        check_cid_form(id)?;
        if !seen.insert(*id) {
            return Err(Error::DuplicateRecipient(Box::new(*id)));
        }
    }
    Ok(())
}

/// A decoded envelope whose hash and structure are checked but whose
/// signature is not yet: read [`Envelope::sender`], resolve that identity,
/// then call [`Envelope::verify`].
#[derive(Debug, Clone)]
pub struct Envelope {
    block: Block,
    wire: EnvelopeWire,
}

impl Envelope {
    /// Decode the envelope `bytes` received as `cid`. Checks CID form, size,
    /// hash, version, canonical DAG-CBOR, field lengths and limits; not the
    /// signature.
    pub fn decode(cid: &Cid, bytes: &[u8], limits: &Limits) -> Result<Envelope> {
        let block = Block::from_parts(cid, bytes.to_vec(), limits.max_envelope_bytes)?;
        Self::from_block(block, limits)
    }

    /// As [`Envelope::decode`], for a [`Block`] already hash-checked.
    pub fn from_block(block: Block, limits: &Limits) -> Result<Envelope> {
        limits::check("envelope", block.bytes().len(), limits.max_envelope_bytes)?;
        check_version_of(block.bytes(), "envelope", ENVELOPE_VERSION)?;
        let wire: EnvelopeWire = from_dag_cbor_canonical(block.bytes())?;
        validate(&wire, limits)?;
        Ok(Envelope { block, wire })
    }

    /// Decode and verify in one step (see [`Envelope::decode`] and
    /// [`Envelope::verify`]).
    pub fn decode_and_verify(
        cid: &Cid,
        bytes: &[u8],
        sender: &VerifiedIdentity,
        limits: &Limits,
    ) -> Result<VerifiedEnvelope> {
        Self::decode(cid, bytes, limits)?.verify(sender)
    }

    /// The sender's identity CID as stated in the envelope (unverified).
    pub fn sender(&self) -> &Cid {
        &self.wire.sender
    }

    /// The envelope's CID.
    pub fn cid(&self) -> &Cid {
        self.block.cid()
    }

    /// The message id (unverified until [`Envelope::verify`]).
    pub fn id(&self) -> MessageId {
        message_id(&self.wire)
    }

    /// The sending time, Unix milliseconds (unverified).
    pub fn time_ms(&self) -> u64 {
        self.wire.time
    }

    /// The message kind (unverified).
    pub fn kind(&self) -> &str {
        &self.wire.kind
    }

    /// Check that `sender` is the identity the envelope names and that its
    /// signing key signed the envelope.
    pub fn verify(self, sender: &VerifiedIdentity) -> Result<VerifiedEnvelope> {
        if self.wire.sender != *sender.id() {
            return Err(Error::SenderMismatch {
                expected: Box::new(*sender.id()),
                found: Box::new(self.wire.sender),
            });
        }
        let sig_bytes = self.wire.sig.as_ref().ok_or(Error::InvalidField {
            field: "sig",
            reason: "missing",
        })?;
        let sig = Signature::from_bytes(sig_bytes, "sig")?;
        let digest = signing_digest(SIGNATURE_LABEL, &self.wire.unsigned_bytes()?);
        sender
            .signing_key()
            .verify_prehash(&digest, &sig, "envelope signature")?;
        Ok(VerifiedEnvelope { envelope: self })
    }
}

/// Checks a message kind: not empty, and only `a-z`, `0-9`, `/`, `.`,
/// `_` and `-`. A kind with NUL or control characters could otherwise end
/// a kind early in a key that joins it with other parts (the inbox's reply
/// index once did), or forge a log line.
pub fn check_kind(kind: &str) -> Result<()> {
    if kind.is_empty() {
        return Err(Error::InvalidField {
            field: "kind",
            reason: "empty",
        });
    }
    if !kind
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-'))
    {
        return Err(Error::InvalidField {
            field: "kind",
            reason: "only a-z, 0-9, '/', '.', '_' and '-' are allowed",
        });
    }
    Ok(())
}

fn validate(wire: &EnvelopeWire, limits: &Limits) -> Result<()> {
    check_kind(&wire.kind)?;
    check_text("kind", &wire.kind, limits)?;
    check_cid_form(&wire.sender)?;
    if wire.id.len() != 16 {
        return Err(Error::InvalidField {
            field: "id",
            reason: "must be 16 bytes",
        });
    }
    limits::check("links", wire.links.len(), limits.max_links)?;
    for link in &wire.links {
        check_cid_form(link)?;
    }
    limits::check("recipients", wire.recipients.len(), limits.max_recipients)?;
    check_unique(&wire.recipients)?;
    if let Some(sealed) = &wire.sealed {
        if wire.recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        if sealed.nonce.len() != 12 {
            return Err(Error::InvalidField {
                field: "sealed.nonce",
                reason: "must be 12 bytes",
            });
        }
        if sealed.ct.len() < 16 {
            return Err(Error::InvalidField {
                field: "sealed.ct",
                reason: "shorter than the GCM tag",
            });
        }
        if sealed.keys.len() != wire.recipients.len() {
            return Err(Error::InvalidField {
                field: "sealed.keys",
                reason: "one key stanza per recipient required",
            });
        }
        for k in &sealed.keys {
            // Form only: the point itself is decompressed and checked by the
            // recipient that opens this stanza (decompressing all of them
            // here would cost one square root per recipient on every decode).
            if k.epk.len() != EcPublicKey::LEN || !(k.epk[0] == 0x02 || k.epk[0] == 0x03) {
                return Err(Error::InvalidPublicKey {
                    field: "sealed.keys.epk",
                });
            }
            if k.kem_ct.len() != KEM_CIPHERTEXT_LEN {
                return Err(Error::InvalidField {
                    field: "sealed.keys.kem_ct",
                    reason: "must be 1088 bytes",
                });
            }
            if k.wrapped_key.len() != WRAPPED_KEY_LEN {
                return Err(Error::InvalidField {
                    field: "sealed.keys.wrapped_key",
                    reason: "must be 48 bytes",
                });
            }
        }
    }
    if wire.sig.is_none() {
        return Err(Error::InvalidField {
            field: "sig",
            reason: "missing",
        });
    }
    Ok(())
}

fn message_id(wire: &EnvelopeWire) -> MessageId {
    // Length checked by `validate` (16 bytes).
    let mut id = [0u8; 16];
    id.copy_from_slice(&wire.id);
    MessageId(id)
}

/// An envelope whose hash, structure and sender signature are checked.
/// Replay (message id) and clock-skew checks are the receiver's: use
/// [`VerifiedEnvelope::id`] and [`VerifiedEnvelope::time_ms`].
#[derive(Debug, Clone)]
pub struct VerifiedEnvelope {
    envelope: Envelope,
}

impl VerifiedEnvelope {
    fn wire(&self) -> &EnvelopeWire {
        &self.envelope.wire
    }
    /// The envelope's CID.
    pub fn cid(&self) -> &Cid {
        self.envelope.block.cid()
    }
    /// The encoded envelope.
    pub fn block(&self) -> &Block {
        &self.envelope.block
    }
    /// Envelope version.
    pub fn version(&self) -> u64 {
        self.wire().version
    }
    /// Message kind.
    pub fn kind(&self) -> &str {
        &self.wire().kind
    }
    /// Sender identity (verified).
    pub fn sender(&self) -> &Cid {
        &self.wire().sender
    }
    /// Sending time, Unix milliseconds (as claimed by the sender).
    pub fn time_ms(&self) -> u64 {
        self.wire().time
    }
    /// Random message id.
    pub fn id(&self) -> MessageId {
        message_id(self.wire())
    }
    /// Links to previous envelopes.
    pub fn links(&self) -> &[Cid] {
        &self.wire().links
    }
    /// Recipients, in order.
    pub fn recipients(&self) -> &[Cid] {
        &self.wire().recipients
    }
    /// Whether `id` is among the recipients.
    pub fn is_recipient(&self, id: &Cid) -> bool {
        self.wire().recipients.contains(id)
    }
    /// Plaintext body, if any.
    pub fn body(&self) -> Option<&[u8]> {
        self.wire().body.as_deref().map(|b| &b[..])
    }
    /// Whether there is a sealed body.
    pub fn is_sealed(&self) -> bool {
        self.wire().sealed.is_some()
    }

    /// Decrypt the sealed body as recipient `my_id`.
    pub fn open(
        &self,
        my_id: &Cid,
        my_ecdh: &dyn EcdhKey,
        my_kem: &DecapsulationKey,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let wire = self.wire();
        let sealed = wire.sealed.as_ref().ok_or(Error::NotSealed)?;
        let index = wire
            .recipients
            .iter()
            .position(|r| r == my_id)
            .ok_or_else(|| Error::NotARecipient(Box::new(*my_id)))?;
        let stanza = &sealed.keys[index];
        let hct = HybridCiphertext {
            epk: EcPublicKey::from_bytes(&stanza.epk, "sealed.keys.epk")?,
            kem_ct: stanza.kem_ct.to_vec(),
        };
        let kek = kem::decapsulate(&hct, my_id, my_ecdh, my_kem)?;
        let aad = wire.header_digest()?;
        let mut content_key = Zeroizing::new(stanza.wrapped_key.to_vec());
        Aes256Gcm::new((&*kek).into())
            .decrypt_in_place(&Nonce::default(), &aad, &mut *content_key)
            .map_err(|_| Error::KeyUnwrapFailed)?;
        let key: &[u8; 32] = content_key[..]
            .try_into()
            .map_err(|_| Error::KeyUnwrapFailed)?;
        let nonce: [u8; 12] = sealed.nonce[..]
            .try_into()
            .map_err(|_| Error::DecryptionFailed)?;
        let mut body = Zeroizing::new(sealed.ct.to_vec());
        Aes256Gcm::new(key.into())
            .decrypt_in_place(&Nonce::from(nonce), &aad, &mut *body)
            .map_err(|_| Error::DecryptionFailed)?;
        Ok(body)
    }
}

/// Decrypt the sealed body of `envelope` as recipient `my_id` (same as
/// [`VerifiedEnvelope::open`]).
pub fn open(
    envelope: &VerifiedEnvelope,
    my_id: &Cid,
    my_ecdh: &dyn EcdhKey,
    my_kem: &DecapsulationKey,
) -> Result<Zeroizing<Vec<u8>>> {
    envelope.open(my_id, my_ecdh, my_kem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdentityDraft, LocalEcdhKey, LocalSigner};

    struct Node {
        signer: LocalSigner,
        ecdh: LocalEcdhKey,
        kem: DecapsulationKey,
        id: VerifiedIdentity,
    }

    fn node(name: &str) -> Node {
        let signer = LocalSigner::generate().unwrap();
        let ecdh = LocalEcdhKey::generate().unwrap();
        let kem = DecapsulationKey::generate().unwrap();
        let id = IdentityDraft::new(
            name,
            1,
            signer.public_key(),
            ecdh.public_key(),
            kem.public_key(),
        )
        .sign(&signer)
        .unwrap();
        Node {
            signer,
            ecdh,
            kem,
            id,
        }
    }

    /// Re-sign a modified wire document as `by` and run it through the
    /// receiver's checks.
    fn resign(mut wire: EnvelopeWire, by: &Node) -> VerifiedEnvelope {
        wire.sig = None;
        let sig = by
            .signer
            .sign_prehash(&signing_digest(
                SIGNATURE_LABEL,
                &wire.unsigned_bytes().unwrap(),
            ))
            .unwrap();
        wire.sig = Some(ByteBuf::from(sig.to_bytes().to_vec()));
        let block = Block::encode(&wire).unwrap();
        Envelope::decode_and_verify(block.cid(), block.bytes(), &by.id, &Limits::default()).unwrap()
    }

    fn sealed(a: &Node, to: &[&Node]) -> VerifiedEnvelope {
        let ids: Vec<&VerifiedIdentity> = to.iter().map(|n| &n.id).collect();
        let d = EnvelopeDraft {
            secret_body: Some(b"k_i"),
            ..EnvelopeDraft::new("custody/release", 10)
        };
        seal(&a.signer, &a.id, &ids, &d).unwrap()
    }

    #[test]
    fn resigned_by_another_identity_fails_to_decrypt() {
        let alice = node("alice");
        let bob = node("bob");
        let mallory = node("mallory");
        let env = sealed(&alice, &[&bob]);
        let mut wire = env.envelope.wire.clone();
        wire.sender = *mallory.id.id();
        let stolen = resign(wire, &mallory);
        // The signature is valid (mallory's), but the header binding breaks.
        assert_eq!(
            stolen.open(bob.id.id(), &bob.ecdh, &bob.kem).unwrap_err(),
            Error::KeyUnwrapFailed
        );
    }

    #[test]
    fn readdressed_envelope_fails_to_decrypt() {
        let alice = node("alice");
        let bob = node("bob");
        let carol = node("carol");
        let env = sealed(&alice, &[&bob, &carol]);
        // Alice herself (or anyone who can sign as her) drops carol from the
        // list: bob can no longer open the old sealed body.
        let mut wire = env.envelope.wire.clone();
        wire.recipients.truncate(1);
        wire.sealed.as_mut().unwrap().keys.truncate(1);
        let readdressed = resign(wire, &alice);
        assert_eq!(
            readdressed
                .open(bob.id.id(), &bob.ecdh, &bob.kem)
                .unwrap_err(),
            Error::KeyUnwrapFailed
        );
        // Swapping the stanzas' order with the recipients' order.
        let mut wire = env.envelope.wire.clone();
        wire.recipients.swap(0, 1);
        wire.sealed.as_mut().unwrap().keys.swap(0, 1);
        let swapped = resign(wire, &alice);
        assert_eq!(
            swapped.open(bob.id.id(), &bob.ecdh, &bob.kem).unwrap_err(),
            Error::KeyUnwrapFailed
        );
    }

    #[test]
    fn redated_relinked_or_rekinded_envelope_fails_to_decrypt() {
        let alice = node("alice");
        let bob = node("bob");
        let env = sealed(&alice, &[&bob]);
        let edits: [fn(&mut EnvelopeWire); 5] = [
            |w| w.time += 1,
            |w| w.links.push(crate::block::cid_of(b"x")),
            |w| w.kind = "custody/other".into(),
            |w| w.id[0] ^= 1,
            |w| w.body = Some(ByteBuf::from(b"added".to_vec())),
        ];
        for edit in edits {
            let mut wire = env.envelope.wire.clone();
            edit(&mut wire);
            let e = resign(wire, &alice);
            assert_eq!(
                e.open(bob.id.id(), &bob.ecdh, &bob.kem).unwrap_err(),
                Error::KeyUnwrapFailed
            );
        }
        // The body ciphertext itself is authenticated too.
        let mut wire = env.envelope.wire.clone();
        wire.sealed.as_mut().unwrap().ct[0] ^= 1;
        let e = resign(wire, &alice);
        assert_eq!(
            e.open(bob.id.id(), &bob.ecdh, &bob.kem).unwrap_err(),
            Error::DecryptionFailed
        );
    }

    /// Unwrap `to`'s content key by hand.
    fn content_key(env: &VerifiedEnvelope, to: &Node) -> Vec<u8> {
        let wire = &env.envelope.wire;
        let i = wire
            .recipients
            .iter()
            .position(|r| r == to.id.id())
            .unwrap();
        let stanza = &wire.sealed.as_ref().unwrap().keys[i];
        let hct = HybridCiphertext {
            epk: EcPublicKey::from_bytes(&stanza.epk, "epk").unwrap(),
            kem_ct: stanza.kem_ct.to_vec(),
        };
        let kek = kem::decapsulate(&hct, to.id.id(), &to.ecdh, &to.kem).unwrap();
        let mut ck = stanza.wrapped_key.to_vec();
        Aes256Gcm::new((&*kek).into())
            .decrypt_in_place(&Nonce::default(), &wire.header_digest().unwrap(), &mut ck)
            .unwrap();
        ck
    }

    #[test]
    fn content_keys_are_fresh_and_shared() {
        let alice = node("alice");
        let bob = node("bob");
        let carol = node("carol");
        let e1 = sealed(&alice, &[&bob, &carol]);
        let e2 = sealed(&alice, &[&bob, &carol]);
        let k1 = content_key(&e1, &bob);
        assert_eq!(k1.len(), 32);
        // One content key per envelope, wrapped for every recipient...
        assert_eq!(k1, content_key(&e1, &carol));
        // ...and a fresh one for every seal.
        assert_ne!(k1, content_key(&e2, &bob));
        let (w1, w2) = (&e1.envelope.wire, &e2.envelope.wire);
        let (s1, s2) = (w1.sealed.as_ref().unwrap(), w2.sealed.as_ref().unwrap());
        assert_ne!(s1.nonce, s2.nonce);
        assert_ne!(w1.id, w2.id);
        for (a, b) in s1.keys.iter().zip(&s2.keys) {
            assert_ne!(a.epk, b.epk);
            assert_ne!(a.kem_ct, b.kem_ct);
        }
        // Within one envelope, each recipient gets its own ephemeral key.
        assert_ne!(s1.keys[0].epk, s1.keys[1].epk);
    }

    #[test]
    fn structural_rejections() {
        let alice = node("alice");
        let bob = node("bob");
        let env = sealed(&alice, &[&bob]);
        let limits = Limits::default();
        let check = |edit: fn(&mut EnvelopeWire)| {
            let mut wire = env.envelope.wire.clone();
            edit(&mut wire);
            validate(&wire, &limits).unwrap_err()
        };
        assert!(matches!(
            check(|w| w.id.truncate(8)),
            Error::InvalidField { field: "id", .. }
        ));
        assert!(matches!(
            check(|w| w.kind.clear()),
            Error::InvalidField { field: "kind", .. }
        ));
        for kind in ["test/note\0x", "Test/note", "a b", "k\n", "caf\u{e9}"] {
            let mut wire = env.envelope.wire.clone();
            wire.kind = kind.into();
            assert!(
                matches!(
                    validate(&wire, &limits),
                    Err(Error::InvalidField { field: "kind", .. })
                ),
                "{kind:?}"
            );
        }
        assert!(check_kind("custody/order").is_ok());
        assert!(check_kind("a-z_0.9/x").is_ok());
        assert!(matches!(
            check(|w| w.sig = None),
            Error::InvalidField { field: "sig", .. }
        ));
        assert!(matches!(
            check(|w| {
                let r = w.recipients[0];
                w.recipients.push(r);
            }),
            Error::DuplicateRecipient(_)
        ));
        assert!(matches!(
            check(|w| w.sealed.as_mut().unwrap().keys.clear()),
            Error::InvalidField {
                field: "sealed.keys",
                ..
            }
        ));
        assert!(matches!(
            check(|w| w.recipients.clear()),
            Error::NoRecipients
        ));
        assert!(matches!(
            check(|w| w.sealed.as_mut().unwrap().nonce.truncate(11)),
            Error::InvalidField {
                field: "sealed.nonce",
                ..
            }
        ));
        assert!(matches!(
            check(|w| w.sealed.as_mut().unwrap().keys[0].kem_ct.truncate(5)),
            Error::InvalidField {
                field: "sealed.keys.kem_ct",
                ..
            }
        ));
        assert!(matches!(
            check(|w| w.sealed.as_mut().unwrap().keys[0].epk[0] = 0x04),
            Error::InvalidPublicKey { .. }
        ));
        assert!(matches!(
            check(|w| w.sender = Cid::new_v1(0x55, *w.sender.hash())),
            Error::UnsupportedCid { .. }
        ));
    }

    #[test]
    fn high_s_envelope_signature_is_refused() {
        let alice = node("alice");
        let bob = node("bob");
        let env = sealed(&alice, &[&bob]);
        let mut wire = env.envelope.wire.clone();
        let sig = k256::ecdsa::Signature::from_slice(wire.sig.as_ref().unwrap()).unwrap();
        let (r, s) = sig.split_scalars();
        let high = k256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        wire.sig = Some(ByteBuf::from(high.to_bytes().to_vec()));
        let block = Block::encode(&wire).unwrap();
        assert_eq!(
            Envelope::decode_and_verify(block.cid(), block.bytes(), &alice.id, &Limits::default())
                .unwrap_err(),
            Error::HighS { what: "sig" }
        );
    }
}
