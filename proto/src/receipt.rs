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

//! Delivery receipts: how a recipient tells a pubsub sender that it holds an
//! envelope.
//!
//! Pubsub gives no acknowledgement: a message published while the
//! recipient's subscription is still propagating, or while its listener
//! lags, is silently lost. So a recipient that has persisted an envelope
//! (or already had it) publishes a receipt on the sender's receipt topic
//! `/milagro/1/receipts/<sender-id>`, and the sender publishes the delivery
//! again until the receipt comes back or its delivery timeout ends.
//!
//! A receipt is the DAG-CBOR map `{"envelope": <link>, "recipient": <link>,
//! "signature": <64 bytes>}`: the recipient's ECDSA signature over
//! `SHA-256(RECEIPT_LABEL || envelope CID bytes || recipient ID bytes)`, so
//! nobody else can stop a sender's retries by forging one. Over HTTP the
//! `2xx` answer to `POST /v1/inbox` is the receipt.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    Cid, Error, Result, Signer, VerifiedIdentity,
    block::{from_dag_cbor_canonical, to_dag_cbor},
    limits,
    sign::{Signature, sign_document, signing_digest},
};

/// Prefix of every node's receipt topic; the node ID follows.
pub const RECEIPT_TOPIC_PREFIX: &str = "/milagro/1/receipts/";
/// Domain separation for receipt signatures.
pub const RECEIPT_LABEL: &[u8] = b"milagro/receipt/v1/signature\0";
/// Largest receipt accepted: two CIDs, a signature and the map framing.
const MAX_RECEIPT_BYTES: usize = 512;

/// The pubsub topic on which a node that sent envelopes hears receipts.
pub fn receipt_topic(node: &Cid) -> String {
    format!("{RECEIPT_TOPIC_PREFIX}{node}")
}

/// A signed statement by `recipient` that it holds `envelope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    envelope: Cid,
    recipient: Cid,
    signature: Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptWire {
    envelope: Cid,
    recipient: Cid,
    signature: ByteBuf,
}

/// What the signature covers, after [`RECEIPT_LABEL`]. CIDs are
/// self-delimiting (varint-prefixed), so the concatenation is unambiguous.
fn signed_bytes(envelope: &Cid, recipient: &Cid) -> Vec<u8> {
    [envelope.to_bytes(), recipient.to_bytes()].concat()
}

impl Receipt {
    /// `recipient` (this node, whose identity `signer` holds the key of)
    /// acknowledges `envelope`.
    pub fn sign(signer: &dyn Signer, recipient: &VerifiedIdentity, envelope: &Cid) -> Result<Self> {
        let signature = sign_document(
            signer,
            recipient.signing_key(),
            RECEIPT_LABEL,
            &signed_bytes(envelope, recipient.id()),
            "receipt signature",
        )?;
        Ok(Receipt {
            envelope: *envelope,
            recipient: *recipient.id(),
            signature,
        })
    }

    /// The envelope acknowledged.
    pub fn envelope(&self) -> &Cid {
        &self.envelope
    }

    /// The node that claims to hold it (not yet verified).
    pub fn recipient(&self) -> &Cid {
        &self.recipient
    }

    /// Checks the signature against the recipient's identity document.
    pub fn verify(&self, recipient: &VerifiedIdentity) -> Result<()> {
        if recipient.id() != &self.recipient {
            return Err(Error::ReceiptMismatch {
                found: Box::new(self.recipient),
                expected: Box::new(*recipient.id()),
            });
        }
        recipient.signing_key().verify_prehash(
            &signing_digest(
                RECEIPT_LABEL,
                &signed_bytes(&self.envelope, &self.recipient),
            ),
            &self.signature,
            "receipt signature",
        )
    }

    /// The wire encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        to_dag_cbor(&ReceiptWire {
            envelope: self.envelope,
            recipient: self.recipient,
            signature: ByteBuf::from(self.signature.to_bytes().to_vec()),
        })
    }

    /// Decodes a receipt strictly (size, canonical form, signature shape);
    /// [`Receipt::verify`] then checks who signed it.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        limits::check("receipt", bytes.len(), MAX_RECEIPT_BYTES)?;
        let wire: ReceiptWire = from_dag_cbor_canonical(bytes)?;
        Ok(Receipt {
            envelope: wire.envelope,
            recipient: wire.recipient,
            signature: Signature::from_bytes(&wire.signature, "receipt signature")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, EcdhKey, IdentityDraft, LocalEcdhKey, LocalSigner, kem::DecapsulationKey};

    fn node(name: &str) -> (LocalSigner, VerifiedIdentity) {
        let signer = LocalSigner::generate().unwrap();
        let draft = IdentityDraft::new(
            name,
            1_700_000_000_000,
            signer.public_key(),
            LocalEcdhKey::generate().unwrap().public_key(),
            DecapsulationKey::generate().unwrap().public_key(),
        );
        let id = draft.sign(&signer).unwrap();
        (signer, id)
    }

    #[test]
    fn a_receipt_round_trips_and_verifies_only_for_its_signer() {
        let (bob_signer, bob) = node("bob");
        let (mallory_signer, mallory) = node("mallory");
        let envelope = *Block::encode(&"an envelope").unwrap().cid();

        let receipt = Receipt::sign(&bob_signer, &bob, &envelope).unwrap();
        let decoded = Receipt::decode(&receipt.encode().unwrap()).unwrap();
        assert_eq!(decoded, receipt);
        assert_eq!(decoded.envelope(), &envelope);
        assert_eq!(decoded.recipient(), bob.id());
        decoded.verify(&bob).unwrap();
        assert!(matches!(
            decoded.verify(&mallory),
            Err(Error::ReceiptMismatch { .. })
        ));

        // Mallory cannot acknowledge in Bob's name: her signature under
        // Bob's ID does not verify.
        let forged = Receipt {
            recipient: *bob.id(),
            ..Receipt::sign(&mallory_signer, &mallory, &envelope).unwrap()
        };
        assert!(matches!(
            forged.verify(&bob),
            Err(Error::BadSignature { .. })
        ));
        // Nor does Bob's receipt for one envelope cover another.
        let other = *Block::encode(&"another").unwrap().cid();
        let moved = Receipt {
            envelope: other,
            ..receipt.clone()
        };
        assert!(matches!(
            moved.verify(&bob),
            Err(Error::BadSignature { .. })
        ));
        // A signer that is not the identity's key is refused at signing.
        assert!(matches!(
            Receipt::sign(&mallory_signer, &bob, &envelope),
            Err(Error::SignerMismatch { .. })
        ));
    }

    #[test]
    fn malformed_receipts_are_refused() {
        let (signer, bob) = node("bob");
        let envelope = *Block::encode(&1u8).unwrap().cid();
        let bytes = Receipt::sign(&signer, &bob, &envelope)
            .unwrap()
            .encode()
            .unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(Receipt::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            Receipt::decode(&vec![0u8; MAX_RECEIPT_BYTES + 1]),
            Err(Error::Oversize { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Receipt::decode(&trailing).is_err());
    }

    #[test]
    fn topic_names_the_node() {
        let (_, bob) = node("bob");
        assert_eq!(
            receipt_topic(bob.id()),
            format!("/milagro/1/receipts/{}", bob.id())
        );
    }
}
