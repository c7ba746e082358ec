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

//! Signatures: ECDSA over secp256k1 with SHA-256, low-S only.
//!
//! A document is signed over `SHA-256(label || canonical DAG-CBOR of the
//! unsigned document)`, where `label` is a NUL-terminated domain-separation
//! string per signature purpose (see [`signing_digest`]). The private key
//! sits behind the [`Signer`] trait (in-memory [`LocalSigner`] here; a file
//! keystore or a PKCS#11 token elsewhere).

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::elliptic_curve::Generate;
use k256::elliptic_curve::sec1::ToSec1Point;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Error, KeyError, Result};

/// A secp256k1 public key (signing, ECDH or beneficiary key).
///
/// On the wire: the 33-byte compressed SEC1 encoding; no other encoding is
/// accepted, so each key has exactly one byte representation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EcPublicKey(k256::PublicKey);

impl std::fmt::Debug for EcPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcPublicKey(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl EcPublicKey {
    /// Length of the compressed encoding.
    pub const LEN: usize = 33;

    /// Parse a 33-byte compressed SEC1 point. `field` names the document
    /// field for the error.
    pub fn from_bytes(bytes: &[u8], field: &'static str) -> Result<Self> {
        if bytes.len() != Self::LEN || !(bytes[0] == 0x02 || bytes[0] == 0x03) {
            return Err(Error::InvalidPublicKey { field });
        }
        k256::PublicKey::from_sec1_bytes(bytes)
            .map(EcPublicKey)
            .map_err(|_| Error::InvalidPublicKey { field })
    }

    /// The 33-byte compressed SEC1 encoding.
    pub fn to_bytes(&self) -> [u8; 33] {
        let point = self.0.as_affine().to_sec1_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The underlying `k256` key.
    pub fn as_k256(&self) -> &k256::PublicKey {
        &self.0
    }

    /// Verify a signature over a 32-byte prehash (low-S required).
    pub fn verify_prehash(
        &self,
        digest: &[u8; 32],
        sig: &Signature,
        what: &'static str,
    ) -> Result<()> {
        let vk = k256::ecdsa::VerifyingKey::from(self.0);
        vk.verify_prehash(digest, &sig.0)
            .map_err(|_| Error::BadSignature { what })
    }
}

impl From<k256::PublicKey> for EcPublicKey {
    fn from(pk: k256::PublicKey) -> Self {
        EcPublicKey(pk)
    }
}

/// An ECDSA secp256k1 signature with a low S value (64 bytes `r || s` on
/// the wire). A high-S signature cannot be represented by this type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature(k256::ecdsa::Signature);

impl Signature {
    /// Length of the wire encoding.
    pub const LEN: usize = 64;

    /// Parse `r || s`, refusing high-S. `what` names the signature for the error.
    pub fn from_bytes(bytes: &[u8], what: &'static str) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(Error::InvalidField {
                field: what,
                reason: "signature must be 64 bytes (r || s)",
            });
        }
        let sig = k256::ecdsa::Signature::from_slice(bytes).map_err(|_| Error::InvalidField {
            field: what,
            reason: "r or s out of range",
        })?;
        if sig.normalize_s() != sig {
            return Err(Error::HighS { what });
        }
        Ok(Signature(sig))
    }

    /// Parse `r || s` as produced by a signing backend (e.g. PKCS#11
    /// `CKM_ECDSA`) and normalise it to low-S.
    pub fn from_raw_normalizing(bytes: &[u8]) -> std::result::Result<Self, KeyError> {
        k256::ecdsa::Signature::from_slice(bytes)
            .map(|s| Signature(s.normalize_s()))
            .map_err(|_| KeyError::MalformedSignature)
    }

    /// The 64-byte `r || s` encoding.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }
}

impl From<k256::ecdsa::Signature> for Signature {
    fn from(sig: k256::ecdsa::Signature) -> Self {
        Signature(sig.normalize_s())
    }
}

/// A private ECDSA secp256k1 key, wherever it lives.
///
/// Implementations hash nothing: they sign the 32-byte SHA-256 digest they
/// are given (a PKCS#11 token uses `CKM_ECDSA` on the digest).
pub trait Signer {
    /// The public key of this signer.
    fn public_key(&self) -> EcPublicKey;
    /// Sign a 32-byte prehash. The result is low-S (use
    /// [`Signature::from_raw_normalizing`] on raw backend output).
    fn sign_prehash(&self, digest: &[u8; 32]) -> std::result::Result<Signature, KeyError>;
}

/// An in-memory secp256k1 signing key (tests, file keystore).
/// Zeroized on drop.
#[derive(Clone)]
pub struct LocalSigner {
    key: k256::ecdsa::SigningKey,
    public: EcPublicKey,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl LocalSigner {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        k256::ecdsa::SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
            .map(Self::from_key)
            .map_err(|_| Error::Randomness)
    }

    /// A fresh key from the given RNG (deterministic test vectors).
    #[doc(hidden)]
    pub fn generate_with_rng<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_key(k256::ecdsa::SigningKey::generate_from_rng(rng))
    }

    /// Load a 32-byte big-endian secret scalar.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self> {
        k256::ecdsa::SigningKey::from_slice(secret)
            .map(Self::from_key)
            .map_err(|_| Error::InvalidField {
                field: "secret key",
                reason: "not a valid secp256k1 scalar",
            })
    }

    /// The 32-byte secret scalar, for storage by a keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.key.to_bytes());
        out
    }

    fn from_key(key: k256::ecdsa::SigningKey) -> Self {
        let public = EcPublicKey(k256::PublicKey::from(key.verifying_key()));
        LocalSigner { key, public }
    }
}

impl Signer for LocalSigner {
    fn public_key(&self) -> EcPublicKey {
        self.public
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> std::result::Result<Signature, KeyError> {
        let sig: k256::ecdsa::Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|_| KeyError::Backend("ECDSA signing failed".into()))?;
        Ok(Signature::from(sig))
    }
}

/// `SHA-256(label || body)`: the prehash every Milagro signature is made over.
///
/// `label` is one of the NUL-terminated domain-separation strings defined by
/// the document modules, so a signature made for one purpose never verifies
/// for another.
pub fn signing_digest(label: &[u8], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(body);
    h.finalize().into()
}

/// Sign `label || body` with `signer`, checking the result verifies under
/// `expected` (catches a backend that signed with the wrong key).
pub(crate) fn sign_document(
    signer: &dyn Signer,
    expected: &EcPublicKey,
    label: &[u8],
    body: &[u8],
    what: &'static str,
) -> Result<Signature> {
    if signer.public_key() != *expected {
        return Err(Error::SignerMismatch { what });
    }
    let digest = signing_digest(label, body);
    let sig = signer.sign_prehash(&digest)?;
    expected.verify_prehash(&digest, &sig, what)?;
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_low_s() {
        let s = LocalSigner::generate().unwrap();
        let d = signing_digest(b"test\0", b"hello");
        let sig = s.sign_prehash(&d).unwrap();
        s.public_key().verify_prehash(&d, &sig, "t").unwrap();
        // The same signature with S negated is high-S: refused at parse time.
        let (r, s_scalar) = sig.0.split_scalars();
        let high =
            k256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s_scalar).to_bytes()).unwrap();
        let err = Signature::from_bytes(&high.to_bytes(), "t").unwrap_err();
        assert_eq!(err, Error::HighS { what: "t" });
        // and k256 itself refuses it too
        let vk = k256::ecdsa::VerifyingKey::from(*s.public_key().as_k256());
        assert!(vk.verify_prehash(&d, &high).is_err());
        // normalising recovers the low-S form
        assert_eq!(
            Signature::from_raw_normalizing(&high.to_bytes()).unwrap(),
            sig
        );
    }

    #[test]
    fn wrong_key_or_digest_fails() {
        let a = LocalSigner::generate().unwrap();
        let b = LocalSigner::generate().unwrap();
        let d = signing_digest(b"test\0", b"hello");
        let sig = a.sign_prehash(&d).unwrap();
        assert!(b.public_key().verify_prehash(&d, &sig, "t").is_err());
        let d2 = signing_digest(b"test\0", b"hellp");
        assert!(a.public_key().verify_prehash(&d2, &sig, "t").is_err());
    }

    #[test]
    fn public_key_encoding() {
        let a = LocalSigner::generate().unwrap();
        let bytes = a.public_key().to_bytes();
        assert_eq!(
            EcPublicKey::from_bytes(&bytes, "k").unwrap(),
            a.public_key()
        );
        let uncompressed = a.public_key().0.as_affine().to_sec1_point(false);
        assert!(EcPublicKey::from_bytes(uncompressed.as_bytes(), "k").is_err());
        assert!(EcPublicKey::from_bytes(&[0u8; 33], "k").is_err());
    }

    #[test]
    fn secret_roundtrip() {
        let a = LocalSigner::generate().unwrap();
        let b = LocalSigner::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(LocalSigner::from_bytes(&[0u8; 32]).is_err());
    }
}
