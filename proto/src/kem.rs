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

//! Hybrid KEM: secp256k1 ECDH (fresh ephemeral key) + ML-KEM-768,
//! combined with HKDF-SHA256 into a 32-byte key-encryption key (KEK).
//!
//! ```text
//! ss_ec   = x-coordinate of ECDH(ephemeral, recipient ECDH key)   (32 bytes)
//! ct, ss_kem = ML-KEM-768.Encaps(recipient KEM key)               (1088, 32 bytes)
//! KEK     = HKDF-SHA256(salt = KEK_SALT,
//!                       ikm  = ss_kem || ss_ec,
//!                       info = KEK_INFO || epk(33) || ct(1088) || recipient CID(36),
//!                       L = 32)
//! ```
//!
//! The KEK stays secure while either secp256k1 ECDH or ML-KEM-768 holds.
//! The recipient's private keys sit behind [`EcdhKey`] (in-memory
//! [`LocalEcdhKey`] here) and the [`DecapsulationKey`] value type.

use hkdf::Hkdf;
use k256::elliptic_curve::Generate;
use ml_kem::{
    DecapsulationKey768, EncapsulationKey768, KeyExport,
    kem::{Decapsulate, Encapsulate},
};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::block::{Cid, check_cid_form};
use crate::sign::EcPublicKey;
use crate::{Error, KeyError, Result, rng};

/// HKDF salt of the hybrid KEM.
pub const KEK_SALT: &[u8] = b"milagro/hybrid-kem/v1";
/// Prefix of the HKDF info of the hybrid KEM (NUL-terminated label).
pub const KEK_INFO: &[u8] = b"milagro/hybrid-kem/v1/kek\0";
/// Length of an ML-KEM-768 encapsulation key.
pub const KEM_PUBLIC_KEY_LEN: usize = 1184;
/// Length of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;

/// A private secp256k1 ECDH key, wherever it lives.
pub trait EcdhKey {
    /// The public key of this key.
    fn public_key(&self) -> EcPublicKey;
    /// The x-coordinate of `secret * peer` (what PKCS#11 `CKM_ECDH1_DERIVE`
    /// with `CKD_NULL` returns).
    fn diffie_hellman(
        &self,
        peer: &EcPublicKey,
    ) -> std::result::Result<Zeroizing<[u8; 32]>, KeyError>;
}

/// An in-memory secp256k1 ECDH key (tests, file keystore). Zeroized on drop.
#[derive(Clone)]
pub struct LocalEcdhKey {
    secret: k256::SecretKey,
    public: EcPublicKey,
}

impl std::fmt::Debug for LocalEcdhKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEcdhKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl LocalEcdhKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        k256::SecretKey::try_generate_from_rng(&mut getrandom::SysRng)
            .map(Self::from_secret)
            .map_err(|_| Error::Randomness)
    }

    /// A fresh key from the given RNG (deterministic test vectors).
    #[doc(hidden)]
    pub fn generate_with_rng<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(k256::SecretKey::generate_from_rng(rng))
    }

    /// Load a 32-byte big-endian secret scalar.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self> {
        k256::SecretKey::from_slice(secret)
            .map(Self::from_secret)
            .map_err(|_| Error::InvalidField {
                field: "secret key",
                reason: "not a valid secp256k1 scalar",
            })
    }

    /// The 32-byte secret scalar, for storage by a keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    fn from_secret(secret: k256::SecretKey) -> Self {
        let public = EcPublicKey::from(secret.public_key());
        LocalEcdhKey { secret, public }
    }
}

impl EcdhKey for LocalEcdhKey {
    fn public_key(&self) -> EcPublicKey {
        self.public
    }

    fn diffie_hellman(
        &self,
        peer: &EcPublicKey,
    ) -> std::result::Result<Zeroizing<[u8; 32]>, KeyError> {
        let shared = self.secret.diffie_hellman(peer.as_k256());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }
}

/// An ML-KEM-768 encapsulation (public) key, 1184 bytes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublicKey(EncapsulationKey768);

impl std::fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KemPublicKey(ML-KEM-768)")
    }
}

impl KemPublicKey {
    /// Parse and validate (FIPS 203 modulus check) a 1184-byte key.
    pub fn from_bytes(bytes: &[u8], field: &'static str) -> Result<Self> {
        let arr = bytes
            .try_into()
            .map_err(|_| Error::InvalidPublicKey { field })?;
        EncapsulationKey768::new(arr)
            .map(KemPublicKey)
            .map_err(|_| Error::InvalidPublicKey { field })
    }

    /// The 1184-byte encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }
}

/// An ML-KEM-768 decapsulation (private) key, kept as its 64-byte seed
/// `d || z` (FIPS 203). Zeroized on drop.
#[derive(Clone)]
pub struct DecapsulationKey {
    inner: DecapsulationKey768,
    seed: Zeroizing<[u8; 64]>,
}

impl std::fmt::Debug for DecapsulationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecapsulationKey(ML-KEM-768, redacted)")
    }
}

impl DecapsulationKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng::fill(&mut seed[..])?;
        Ok(Self::from_seed(&seed))
    }

    /// A fresh key from the given RNG (deterministic test vectors).
    #[doc(hidden)]
    pub fn generate_with_rng<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// Expand a 64-byte seed `d || z`.
    pub fn from_seed(seed: &[u8; 64]) -> Self {
        let mut arr = ml_kem::Seed::default();
        arr.copy_from_slice(seed);
        let inner = DecapsulationKey768::from_seed(arr);
        arr.zeroize();
        DecapsulationKey {
            inner,
            seed: Zeroizing::new(*seed),
        }
    }

    /// The 64-byte seed, for storage by a keystore.
    pub fn to_seed(&self) -> Zeroizing<[u8; 64]> {
        self.seed.clone()
    }

    /// The matching encapsulation key.
    pub fn public_key(&self) -> KemPublicKey {
        KemPublicKey(self.inner.encapsulation_key().clone())
    }

    /// ML-KEM-768 decapsulation of a 1088-byte ciphertext. Never fails on a
    /// well-sized ciphertext (implicit rejection gives a pseudorandom key).
    pub fn decapsulate(&self, ct: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let ct: &ml_kem::ml_kem_768::Ciphertext =
            ct.try_into().map_err(|_| Error::InvalidField {
                field: "kem_ct",
                reason: "ML-KEM-768 ciphertext must be 1088 bytes",
            })?;
        let mut ss = self.inner.decapsulate(ct);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&ss);
        ss.zeroize();
        Ok(out)
    }
}

/// The public part of one hybrid encapsulation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HybridCiphertext {
    /// Ephemeral secp256k1 public key (33 bytes compressed).
    pub epk: EcPublicKey,
    /// ML-KEM-768 ciphertext (1088 bytes).
    pub kem_ct: Vec<u8>,
}

/// Encapsulate a fresh KEK to a recipient (ECDH key, KEM key, identity CID),
/// drawing the ephemeral key and the ML-KEM randomness from the OS CSPRNG.
pub fn encapsulate(
    recipient_ecdh: &EcPublicKey,
    recipient_kem: &KemPublicKey,
    recipient_id: &Cid,
) -> Result<(HybridCiphertext, Zeroizing<[u8; 32]>)> {
    rng::check_os_rng()?;
    encapsulate_with_rng(
        recipient_ecdh,
        recipient_kem,
        recipient_id,
        &mut rng::os_rng(),
    )
}

/// [`encapsulate`] with a caller-supplied RNG (deterministic test vectors only).
#[doc(hidden)]
pub fn encapsulate_with_rng<R: rand_core::CryptoRng + ?Sized>(
    recipient_ecdh: &EcPublicKey,
    recipient_kem: &KemPublicKey,
    recipient_id: &Cid,
    rng: &mut R,
) -> Result<(HybridCiphertext, Zeroizing<[u8; 32]>)> {
    check_cid_form(recipient_id)?;
    let eph = k256::ecdh::EphemeralSecret::generate_from_rng(rng);
    let epk = EcPublicKey::from(eph.public_key());
    let shared = eph.diffie_hellman(recipient_ecdh.as_k256());
    let mut ss_ec = Zeroizing::new([0u8; 32]);
    ss_ec.copy_from_slice(shared.raw_secret_bytes());
    drop(shared);
    drop(eph);

    let (ct, mut ss_kem_arr) = recipient_kem.0.encapsulate_with_rng(rng);
    let mut ss_kem = Zeroizing::new([0u8; 32]);
    ss_kem.copy_from_slice(&ss_kem_arr);
    ss_kem_arr.zeroize();

    let ct = HybridCiphertext {
        epk,
        kem_ct: ct.to_vec(),
    };
    let kek = derive_kek(&ss_kem, &ss_ec, &ct, recipient_id);
    Ok((ct, kek))
}

/// Recover the KEK from a hybrid ciphertext addressed to `my_id`.
///
/// ML-KEM decapsulation never fails (implicit rejection): a wrong key or a
/// tampered ciphertext gives a wrong KEK, which the caller's AEAD detects.
pub fn decapsulate(
    ct: &HybridCiphertext,
    my_id: &Cid,
    my_ecdh: &dyn EcdhKey,
    my_kem: &DecapsulationKey,
) -> Result<Zeroizing<[u8; 32]>> {
    check_cid_form(my_id)?;
    let ss_ec = my_ecdh.diffie_hellman(&ct.epk)?;
    let ss_kem = my_kem.decapsulate(&ct.kem_ct)?;
    Ok(derive_kek(&ss_kem, &ss_ec, ct, my_id))
}

/// `HKDF-SHA256(KEK_SALT, ss_kem || ss_ec, KEK_INFO || epk || kem_ct || cid)`.
pub fn derive_kek(
    ss_kem: &[u8; 32],
    ss_ec: &[u8; 32],
    ct: &HybridCiphertext,
    recipient_id: &Cid,
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(ss_kem);
    ikm[32..].copy_from_slice(ss_ec);
    let hk = Hkdf::<Sha256>::new(Some(KEK_SALT), &ikm[..]);
    let epk = ct.epk.to_bytes();
    let cid = recipient_id.to_bytes();
    let info: [&[u8]; 4] = [KEK_INFO, &epk, &ct.kem_ct, &cid];
    let mut kek = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(&info, &mut kek[..])
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    kek
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::cid_of;

    #[test]
    fn roundtrip_and_freshness() {
        let ecdh = LocalEcdhKey::generate().unwrap();
        let kem = DecapsulationKey::generate().unwrap();
        let id = cid_of(b"someone");
        let (ct1, k1) = encapsulate(&ecdh.public_key(), &kem.public_key(), &id).unwrap();
        let (ct2, k2) = encapsulate(&ecdh.public_key(), &kem.public_key(), &id).unwrap();
        assert_ne!(ct1.epk, ct2.epk);
        assert_ne!(ct1.kem_ct, ct2.kem_ct);
        assert_ne!(*k1, *k2);
        assert_eq!(ct1.kem_ct.len(), KEM_CIPHERTEXT_LEN);
        assert_eq!(*decapsulate(&ct1, &id, &ecdh, &kem).unwrap(), *k1);
        // another recipient ID derives another KEK
        let other = cid_of(b"someone else");
        assert_ne!(*decapsulate(&ct1, &other, &ecdh, &kem).unwrap(), *k1);
        // a wrong ECDH key or KEM key derives another KEK
        let ecdh2 = LocalEcdhKey::generate().unwrap();
        let kem2 = DecapsulationKey::generate().unwrap();
        assert_ne!(*decapsulate(&ct1, &id, &ecdh2, &kem).unwrap(), *k1);
        assert_ne!(*decapsulate(&ct1, &id, &ecdh, &kem2).unwrap(), *k1);
    }

    #[test]
    fn kem_key_encoding() {
        let kem = DecapsulationKey::generate().unwrap();
        let pk = kem.public_key();
        let bytes = pk.to_bytes();
        assert_eq!(bytes.len(), KEM_PUBLIC_KEY_LEN);
        assert_eq!(KemPublicKey::from_bytes(&bytes, "k").unwrap(), pk);
        assert!(KemPublicKey::from_bytes(&bytes[1..], "k").is_err());
        // coefficients >= q fail the FIPS 203 modulus check
        let mut bad = bytes.clone();
        bad[0] = 0xff;
        bad[1] = 0xff;
        assert!(KemPublicKey::from_bytes(&bad, "k").is_err());
        let again = DecapsulationKey::from_seed(&kem.to_seed());
        assert_eq!(again.public_key(), pk);
    }
}
