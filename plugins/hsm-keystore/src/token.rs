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

//! The token: module initialisation (once per process), slot lookup by
//! token label, login, the session pool and every PKCS#11 call.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    error::{Error as CkError, RvError},
    mechanism::{
        Mechanism, MechanismType,
        aead::GcmParams,
        elliptic_curve::{EcKdf, Ecdh1DeriveParams},
    },
    object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    slot::Slot,
    types::{AuthPin, Ulong},
};
use k256::elliptic_curve::sec1::ToSec1Point;
use milagro_plugin_api::zeroize::{Zeroize, Zeroizing};
use milagro_plugin_api::{Error, KeyType as KeyKind};

use crate::Config;

/// DER of the secp256k1 OID (1.3.132.0.10): `CKA_EC_PARAMS`.
const SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// Label (after the prefix) of the AES-256 key that encrypts secrets. It is
/// a `CKO_SECRET_KEY`, so it cannot collide with a key pair or a secret.
const AES_LABEL: &str = "keystore/aes-256-gcm";
/// Format of a stored secret: magic | 12-byte IV | AES-GCM ciphertext and tag.
const SECRET_MAGIC: &[u8; 4] = b"MHS1";
/// Bound into every secret's GCM tag with the object label, so a value
/// copied to another label does not decrypt.
const AAD_PREFIX: &[u8] = b"milagro/hsm-keystore/v1\0";
const APPLICATION: &[u8] = b"milagro-server";

/// Mechanisms the keystore cannot work without.
const NEEDED: [MechanismType; 5] = [
    MechanismType::ECC_KEY_PAIR_GEN,
    MechanismType::ECDSA,
    MechanismType::ECDH1_DERIVE,
    MechanismType::AES_KEY_GEN,
    MechanismType::AES_GCM,
];

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("hsm-keystore: set exactly one of pin_env and pin_file (never the PIN itself)")]
    PinSource,
    #[error("hsm-keystore: the PIN variable {0} is not set or empty")]
    PinEnv(String),
    #[error("hsm-keystore: cannot use the PIN file {path}: {reason}")]
    PinFile { path: PathBuf, reason: String },
    #[error("hsm-keystore: the PKCS#11 module {0} does not exist")]
    ModuleMissing(PathBuf),
    #[error("hsm-keystore: cannot load the PKCS#11 module {path}: {reason}")]
    ModuleLoad { path: PathBuf, reason: String },
    #[error("hsm-keystore: no token labelled {label:?} in {module} (tokens found: {found})")]
    NoToken {
        label: String,
        module: PathBuf,
        found: String,
    },
    #[error("hsm-keystore: token {label:?} refused the PIN from {source_name} ({ckr})")]
    Pin {
        label: String,
        source_name: String,
        ckr: String,
    },
    #[error("hsm-keystore: token {label:?} does not support {what}, which hsm-keystore needs")]
    Unsupported { label: String, what: String },
    #[error("hsm-keystore: no key or secret labelled {0:?}")]
    Missing(String),
    #[error("hsm-keystore: {label:?} is a {found}, not a {expected}")]
    WrongKind {
        label: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("hsm-keystore: invalid input: {0}")]
    Invalid(String),
    #[error(
        "hsm-keystore: {label:?} cannot be decrypted (damaged, or not encrypted by this token's key)"
    )]
    Decrypt { label: String },
    #[error("hsm-keystore: {op} failed: {ckr}")]
    Pkcs11 {
        op: &'static str,
        ckr: String,
        /// The token or session is gone, rather than the call refused.
        unavailable: bool,
    },
}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Error {
        let message = e.to_string();
        match e {
            TokenError::Missing(_) => Error::not_found(message),
            TokenError::WrongKind { .. } => Error::unprocessable(message),
            TokenError::Invalid(_) => Error::bad_request(message),
            TokenError::Pkcs11 {
                unavailable: true, ..
            } => Error::unavailable(message),
            _ => Error::internal(message),
        }
    }
}

/// `CKR_PIN_INCORRECT` for `RvError::PinIncorrect`, and so on.
fn ckr_name(rv: &RvError) -> String {
    let debug = format!("{rv:?}");
    let mut name = String::from("CKR");
    for c in debug.chars().take_while(|c| c.is_ascii_alphanumeric()) {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

fn rv(e: &CkError) -> Option<&RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(rv),
        _ => None,
    }
}

fn describe_error(e: &CkError) -> String {
    match rv(e) {
        Some(rv) => ckr_name(rv),
        None => e.to_string(),
    }
}

/// Maps a failed call to an error naming the operation and the return code.
fn ck(op: &'static str) -> impl Fn(CkError) -> TokenError {
    move |e| TokenError::Pkcs11 {
        op,
        ckr: describe_error(&e),
        unavailable: matches!(
            rv(&e),
            Some(
                RvError::DeviceRemoved
                    | RvError::DeviceError
                    | RvError::DeviceMemory
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::SessionClosed
                    | RvError::SessionHandleInvalid
                    | RvError::UserNotLoggedIn
                    | RvError::CryptokiNotInitialized
            )
        ),
    }
}

/// A stale object handle (the object was destroyed or the token reset):
/// look the label up again.
fn stale_handle(e: &CkError) -> bool {
    matches!(
        rv(e),
        Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid)
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The modules this process has loaded and initialised, by canonical path:
/// `C_Initialize` runs once per module and process, libraries are never
/// unloaded (so never finalised under another user's feet).
static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

fn module(path: &Path) -> Result<Pkcs11, TokenError> {
    let canonical = path
        .canonicalize()
        .map_err(|_| TokenError::ModuleMissing(path.to_owned()))?;
    let mut modules = lock(&MODULES);
    if let Some((_, pkcs11)) = modules.iter().find(|(p, _)| *p == canonical) {
        return Ok(pkcs11.clone());
    }
    let load_error = |e: CkError| TokenError::ModuleLoad {
        path: path.to_owned(),
        reason: describe_error(&e).replace('\n', " "),
    };
    let pkcs11 = Pkcs11::new(&canonical).map_err(load_error)?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Err(e) if !matches!(rv(&e), Some(RvError::CryptokiAlreadyInitialized)) => {
            return Err(load_error(e));
        }
        _ => {}
    }
    modules.push((canonical, pkcs11.clone()));
    Ok(pkcs11)
}

/// Reads the user PIN from the configured variable or file.
fn read_pin(config: &Config) -> Result<(AuthPin, String), TokenError> {
    match (&config.pin_env, &config.pin_file) {
        (Some(var), None) => {
            let pin = Zeroizing::new(std::env::var(var).unwrap_or_default());
            if pin.is_empty() {
                return Err(TokenError::PinEnv(var.clone()));
            }
            Ok((AuthPin::from(pin.as_str()), format!("${var}")))
        }
        (None, Some(path)) => {
            let bad = |reason: String| TokenError::PinFile {
                path: path.clone(),
                reason,
            };
            let mode = std::fs::metadata(path)
                .map_err(|e| bad(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "its mode is {:o}, others can read it; run chmod 600",
                    mode & 0o777
                )));
            }
            let text =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?);
            let pin = text.trim_end_matches(['\r', '\n']);
            if pin.is_empty() {
                return Err(bad("it is empty".into()));
            }
            Ok((AuthPin::from(pin), path.display().to_string()))
        }
        _ => Err(TokenError::PinSource),
    }
}

/// A key pair found in the token.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub private: ObjectHandle,
    pub kind: KeyKind,
    /// SEC1-compressed.
    pub public: [u8; 33],
}

fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Secp256k1Signing => "signing key",
        KeyKind::Secp256k1Ecdh => "ECDH key",
    }
}

/// An open, logged-in token.
pub struct Token {
    pkcs11: Pkcs11,
    slot: Slot,
    token_label: String,
    description: String,
    prefix: String,
    /// Holds the login: PKCS#11 login state lasts while the application
    /// has a session open with the token.
    _login: Mutex<Session>,
    /// Idle sessions (all logged in through `_login`), reused by calls.
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
    /// Key pairs already looked up: label -> handles and public key.
    /// In memory only; after a restart keys are found by label again.
    keys: Mutex<HashMap<String, Key>>,
    aes: Mutex<Option<ObjectHandle>>,
    /// Token objects are looked up under the read side and created or
    /// destroyed under the write side. SoftHSM2 (OS locking on) failed a
    /// C_CreateObject with CKR_GENERAL_ERROR now and then while another
    /// thread's C_FindObjects re-read the token directory (the file store
    /// indexing an object still being written): a beneficiary lost a
    /// release share in a test of 16 concurrent orders. Lookups are rare
    /// (handles are cached) and signing and ECDH take no lock.
    objects: RwLock<()>,
}

impl Token {
    /// Loads the module, finds the token, logs in and checks that the
    /// token can do what the keystore needs (mechanisms, the secp256k1
    /// curve). Every failure is one line saying what to fix.
    pub fn open(config: &Config) -> Result<Token, TokenError> {
        let (pin, source_name) = read_pin(config)?;
        if !config.module.is_file() {
            return Err(TokenError::ModuleMissing(config.module.clone()));
        }
        let pkcs11 = module(&config.module)?;
        let mut found = Vec::new();
        let mut chosen = None;
        for slot in pkcs11
            .get_slots_with_initialized_token()
            .map_err(ck("C_GetSlotList"))?
        {
            let info = pkcs11.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            if info.label() == config.token_label {
                chosen = Some((slot, info));
                break;
            }
            found.push(format!("{:?}", info.label()));
        }
        let Some((slot, info)) = chosen else {
            return Err(TokenError::NoToken {
                label: config.token_label.clone(),
                module: config.module.clone(),
                found: if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                },
            });
        };
        let unsupported = |what: String| TokenError::Unsupported {
            label: config.token_label.clone(),
            what,
        };
        let mechanisms = pkcs11
            .get_mechanism_list(slot)
            .map_err(ck("C_GetMechanismList"))?;
        let missing: Vec<String> = NEEDED
            .iter()
            .filter(|m| !mechanisms.contains(m))
            .map(|m| m.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(unsupported(missing.join(", ")));
        }

        let login = pkcs11.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        match login.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            // Another keystore of this process logged in to this token.
            Err(e) if matches!(rv(&e), Some(RvError::UserAlreadyLoggedIn)) => {}
            Err(e)
                if matches!(
                    rv(&e),
                    Some(
                        RvError::PinIncorrect
                            | RvError::PinInvalid
                            | RvError::PinLenRange
                            | RvError::PinLocked
                            | RvError::PinExpired
                    )
                ) =>
            {
                return Err(TokenError::Pin {
                    label: config.token_label.clone(),
                    source_name,
                    ckr: describe_error(&e),
                });
            }
            Err(e) => return Err(ck("C_Login")(e)),
        }
        drop(pin);

        // The curve: a session key pair, thrown away at once.
        match login.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(SECP256K1.to_vec()),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ],
        ) {
            Ok((public, private)) => {
                let _ = login.destroy_object(public);
                let _ = login.destroy_object(private);
            }
            Err(e) => {
                return Err(unsupported(format!(
                    "the secp256k1 curve ({})",
                    describe_error(&e)
                )));
            }
        }

        let description = format!(
            "PKCS#11 token {:?} ({} {}, serial {}) via {}, labels prefixed {:?}",
            info.label(),
            info.manufacturer_id(),
            info.model(),
            info.serial_number(),
            config.module.display(),
            config.key_prefix
        );
        Ok(Token {
            pkcs11,
            slot,
            token_label: config.token_label.clone(),
            description,
            prefix: config.key_prefix.clone(),
            _login: Mutex::new(login),
            idle: Mutex::new(Vec::new()),
            max_idle: config.sessions.max(1),
            keys: Mutex::new(HashMap::new()),
            aes: Mutex::new(None),
            objects: RwLock::new(()),
        })
    }

    pub fn describe(&self) -> String {
        self.description.clone()
    }

    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The object label of a host label.
    pub fn object_label(&self, label: &str) -> Vec<u8> {
        format!("{}{label}", self.prefix).into_bytes()
    }

    /// Held while token objects are looked up (see `Token::objects`).
    fn looking_up(&self) -> RwLockReadGuard<'_, ()> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held while token objects are created or destroyed.
    fn changing(&self) -> RwLockWriteGuard<'_, ()> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a pooled session (opening one if none is idle); the
    /// session goes back to the pool unless the call found it broken.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(session) => session,
            None => self
                .pkcs11
                .open_rw_session(self.slot)
                .map_err(ck("C_OpenSession"))?,
        };
        let result = f(&session);
        let broken = matches!(
            result,
            Err(TokenError::Pkcs11 {
                unavailable: true,
                ..
            })
        );
        if !broken {
            let mut idle = lock(&self.idle);
            if idle.len() < self.max_idle {
                idle.push(session);
            }
        }
        result
    }

    fn find_one(
        session: &Session,
        class: ObjectClass,
        label: &[u8],
    ) -> Result<Option<ObjectHandle>, TokenError> {
        Ok(session
            .find_objects(&[Attribute::Class(class), Attribute::Label(label.to_vec())])
            .map_err(ck("C_FindObjects"))?
            .first()
            .copied())
    }

    /// Looks a key pair up by label (cached after the first time).
    pub fn key(&self, label: &str) -> Result<Option<Key>, TokenError> {
        if let Some(key) = lock(&self.keys).get(label) {
            return Ok(Some(*key));
        }
        let object_label = self.object_label(label);
        let _looking_up = self.looking_up();
        let key = self.with_session(|s| {
            let Some(private) = Self::find_one(s, ObjectClass::PRIVATE_KEY, &object_label)? else {
                return Ok(None);
            };
            let usage = s
                .get_attributes(private, &[AttributeType::Sign, AttributeType::Derive])
                .map_err(ck("C_GetAttributeValue"))?;
            let kind = if usage.iter().any(|a| matches!(a, Attribute::Sign(true))) {
                KeyKind::Secp256k1Signing
            } else if usage.iter().any(|a| matches!(a, Attribute::Derive(true))) {
                KeyKind::Secp256k1Ecdh
            } else {
                return Err(TokenError::Invalid(format!(
                    "the private key {label:?} can neither sign nor derive"
                )));
            };
            let public =
                Self::find_one(s, ObjectClass::PUBLIC_KEY, &object_label)?.ok_or_else(|| {
                    TokenError::Invalid(format!("the public half of {label:?} is missing"))
                })?;
            let point = s
                .get_attributes(public, &[AttributeType::EcPoint])
                .map_err(ck("C_GetAttributeValue"))?;
            let point = point
                .iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p.as_slice()),
                    _ => None,
                })
                .ok_or_else(|| TokenError::Invalid(format!("{label:?} has no CKA_EC_POINT")))?;
            Ok(Some(Key {
                private,
                kind,
                public: compress(point)
                    .ok_or_else(|| TokenError::Invalid(format!("{label:?}: bad CKA_EC_POINT")))?,
            }))
        })?;
        if let Some(key) = key {
            lock(&self.keys).insert(label.to_owned(), key);
        }
        Ok(key)
    }

    /// Whether a key pair or a secret already has `label`.
    pub fn label_taken(&self, label: &str) -> Result<bool, TokenError> {
        if self.key(label)?.is_some() {
            return Ok(true);
        }
        let object_label = self.object_label(label);
        let _looking_up = self.looking_up();
        self.with_session(|s| Ok(Self::find_one(s, ObjectClass::DATA, &object_label)?.is_some()))
    }

    /// Generates a secp256k1 key pair in the token: token objects, private
    /// half sensitive and never extractable, usable only for `kind`.
    pub fn generate(&self, label: &str, kind: KeyKind) -> Result<[u8; 33], TokenError> {
        let object_label = self.object_label(label);
        let signing = kind == KeyKind::Secp256k1Signing;
        let changing = self.changing();
        let (private, public) = self.with_session(|s| {
            let (public, private) = s
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::EcParams(SECP256K1.to_vec()),
                        Attribute::Verify(signing),
                        Attribute::Label(object_label.clone()),
                        Attribute::Id(object_label.clone()),
                    ],
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(signing),
                        Attribute::Derive(!signing),
                        Attribute::Label(object_label.clone()),
                        Attribute::Id(object_label.clone()),
                    ],
                )
                .map_err(ck("C_GenerateKeyPair"))?;
            let point = s
                .get_attributes(public, &[AttributeType::EcPoint])
                .map_err(ck("C_GetAttributeValue"))?;
            let public = point
                .iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => compress(p),
                    _ => None,
                })
                .ok_or_else(|| {
                    TokenError::Invalid("the new key has no usable CKA_EC_POINT".into())
                })?;
            Ok((private, public))
        })?;
        drop(changing);
        lock(&self.keys).insert(
            label.to_owned(),
            Key {
                private,
                kind,
                public,
            },
        );
        Ok(public)
    }

    /// Runs `f` with the key pair `label` of `kind`, looking the label up
    /// again once if the cached handle went stale.
    fn with_key<T>(
        &self,
        label: &str,
        kind: KeyKind,
        op: &'static str,
        f: impl Fn(&Session, &Key) -> Result<T, CkError>,
    ) -> Result<T, TokenError> {
        for attempt in 0..2 {
            let key = self
                .key(label)?
                .ok_or_else(|| TokenError::Missing(label.into()))?;
            if key.kind != kind {
                return Err(TokenError::WrongKind {
                    label: label.into(),
                    expected: kind_name(kind),
                    found: kind_name(key.kind),
                });
            }
            match self.with_session(|s| Ok(f(s, &key)))? {
                Err(e) if attempt == 0 && stale_handle(&e) => {
                    lock(&self.keys).remove(label);
                }
                result => return result.map_err(ck(op)),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// `CKM_ECDSA` over the digest, normalised to low-S.
    pub fn sign_prehash(&self, label: &str, digest: &[u8; 32]) -> Result<[u8; 64], TokenError> {
        let raw = self.with_key(label, KeyKind::Secp256k1Signing, "C_Sign", |s, key| {
            s.sign(&Mechanism::Ecdsa, key.private, digest)
        })?;
        let signature = k256::ecdsa::Signature::from_slice(&raw)
            .map_err(|_| TokenError::Invalid("the token returned a malformed signature".into()))?;
        Ok(signature.normalize_s().to_bytes().into())
    }

    /// `CKM_ECDH1_DERIVE` with `CKD_NULL`: the shared x-coordinate, derived
    /// into a short-lived session object, read and destroyed.
    pub fn ecdh(&self, label: &str, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        let peer = k256::PublicKey::from_sec1_bytes(peer)
            .map_err(|_| TokenError::Invalid("the peer key is not a secp256k1 point".into()))?;
        let peer = peer.to_sec1_point(false);
        let mut value = self.with_key(label, KeyKind::Secp256k1Ecdh, "C_DeriveKey", |s, key| {
            let params = Ecdh1DeriveParams::new(EcKdf::null(), peer.as_bytes());
            let derived = s.derive_key(
                &Mechanism::Ecdh1Derive(params),
                key.private,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(Ulong::from(32)),
                    Attribute::Token(false),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )?;
            let value = s.get_attributes(derived, &[AttributeType::Value]);
            let _ = s.destroy_object(derived);
            Ok(value?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                })
                .unwrap_or_default())
        })?;
        let shared = <[u8; 32]>::try_from(value.as_slice()).map(Zeroizing::new);
        value.zeroize();
        shared.map_err(|_| {
            TokenError::Invalid("the token derived a value of the wrong length".into())
        })
    }

    /// The AES-256 key that encrypts secrets; created if `create` and absent.
    fn aes_key(&self, s: &Session, create: bool) -> Result<Option<ObjectHandle>, TokenError> {
        let mut cached = lock(&self.aes);
        if cached.is_some() {
            return Ok(*cached);
        }
        let label = self.object_label(AES_LABEL);
        let mut handle = Self::find_one(s, ObjectClass::SECRET_KEY, &label)?;
        if handle.is_none() && create {
            handle = Some(
                s.generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(Ulong::from(32)),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Label(label.clone()),
                        Attribute::Id(label),
                    ],
                )
                .map_err(ck("C_GenerateKey"))?,
            );
        }
        *cached = handle;
        Ok(handle)
    }

    fn aad(object_label: &[u8]) -> Vec<u8> {
        [AAD_PREFIX, object_label].concat()
    }

    /// Encrypts `secret` under the token's AES key and stores the
    /// ciphertext as a private `CKO_DATA` token object (replacing any).
    pub fn put_secret(&self, label: &str, secret: &[u8]) -> Result<(), TokenError> {
        if let Some(key) = self.key(label)? {
            return Err(TokenError::WrongKind {
                label: label.into(),
                expected: "secret",
                found: kind_name(key.kind),
            });
        }
        let object_label = self.object_label(label);
        let _changing = self.changing();
        self.with_session(|s| {
            let aes = self.aes_key(s, true)?.expect("created when absent");
            let mut iv = [0u8; 12];
            s.generate_random_slice(&mut iv)
                .map_err(ck("C_GenerateRandom"))?;
            let mut gcm_iv = iv;
            let aad = Self::aad(&object_label);
            let params =
                GcmParams::new(&mut gcm_iv, &aad, Ulong::from(128)).map_err(ck("C_EncryptInit"))?;
            let ciphertext = s
                .encrypt(&Mechanism::AesGcm(params), aes, secret)
                .map_err(ck("C_Encrypt"))?;
            // Stored as the token left it: some HSMs (AWS CloudHSM) choose
            // the IV themselves and write it back into the parameters.
            let value = [SECRET_MAGIC.as_slice(), &gcm_iv, &ciphertext].concat();
            match Self::find_one(s, ObjectClass::DATA, &object_label)? {
                Some(existing) => {
                    if s.update_attributes(existing, &[Attribute::Value(value.clone())])
                        .is_err()
                    {
                        // Not modifiable on this token: write the new
                        // object first, so a crash never leaves none.
                        self.create_data(s, &object_label, value)?;
                        s.destroy_object(existing).map_err(ck("C_DestroyObject"))?;
                    }
                    Ok(())
                }
                None => self.create_data(s, &object_label, value),
            }
        })
    }

    fn create_data(
        &self,
        s: &Session,
        object_label: &[u8],
        value: Vec<u8>,
    ) -> Result<(), TokenError> {
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Modifiable(true),
            Attribute::Label(object_label.to_vec()),
            Attribute::Application(APPLICATION.to_vec()),
            Attribute::Value(value),
        ])
        .map_err(ck("C_CreateObject"))?;
        Ok(())
    }

    /// Destroys a secret's data object, if there is one.
    pub fn delete_secret(&self, label: &str) -> Result<(), TokenError> {
        let object_label = self.object_label(label);
        let _changing = self.changing();
        self.with_session(
            |s| match Self::find_one(s, ObjectClass::DATA, &object_label)? {
                Some(object) => s.destroy_object(object).map_err(ck("C_DestroyObject")),
                None => Ok(()),
            },
        )
    }

    /// Reads and decrypts a secret, if there is one.
    pub fn get_secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, TokenError> {
        let object_label = self.object_label(label);
        let damaged = || TokenError::Decrypt {
            label: label.into(),
        };
        let _looking_up = self.looking_up();
        self.with_session(|s| {
            let Some(object) = Self::find_one(s, ObjectClass::DATA, &object_label)? else {
                return Ok(None);
            };
            let value = s
                .get_attributes(object, &[AttributeType::Value])
                .map_err(ck("C_GetAttributeValue"))?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                })
                .ok_or_else(damaged)?;
            let rest = value
                .strip_prefix(SECRET_MAGIC.as_slice())
                .ok_or_else(damaged)?;
            let (iv, ciphertext) = rest.split_at_checked(12).ok_or_else(damaged)?;
            let mut iv: [u8; 12] = iv.try_into().expect("12 bytes");
            let aes = self.aes_key(s, false)?.ok_or_else(damaged)?;
            let aad = Self::aad(&object_label);
            let params =
                GcmParams::new(&mut iv, &aad, Ulong::from(128)).map_err(ck("C_DecryptInit"))?;
            // A bad tag comes back as CKR_GENERAL_ERROR from SoftHSM, as
            // CKR_ENCRYPTED_DATA_INVALID from others: damaged either way.
            let plaintext = s
                .decrypt(&Mechanism::AesGcm(params), aes, ciphertext)
                .map_err(|_| damaged())?;
            Ok(Some(Zeroizing::new(plaintext)))
        })
    }
}

/// The SEC1-compressed form of a `CKA_EC_POINT` (a DER OCTET STRING around
/// the uncompressed point, or the bare point from some tokens).
fn compress(ec_point: &[u8]) -> Option<[u8; 33]> {
    let bare = match ec_point {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        other => other,
    };
    let public = k256::PublicKey::from_sec1_bytes(bare).ok()?;
    public.to_sec1_point(true).as_bytes().try_into().ok()
}
