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

//! Identities: this node's (keys in the keystore, self-signed document on
//! IPFS, the document's CID is the node ID) and everyone else's, resolved
//! by CID, verified once and cached.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use milagro_ipfs::{DAG_CBOR, Ipfs, IpfsError};
use milagro_proto::{
    Cid, DecapsulationKey, EcPublicKey, Endpoints, IdentityDraft, Limits, LocalSigner, Signer,
    VerifiedIdentity,
};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{
    keystore::{KeyKind, Keystore, KeystoreEcdh, KeystoreError, KeystoreSigner},
    store::{Namespace, StoreError, Write},
};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("this node has no identity yet: run `milagro init --config <host.toml>`")]
    NotInitialised,
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error(transparent)]
    Ipfs(#[from] IpfsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("identity document {cid}: {source}")]
    Invalid {
        cid: String,
        source: milagro_proto::Error,
    },
    #[error("identity document {cid} is not a valid rotation of {previous}: {source}")]
    Rotation {
        cid: String,
        previous: String,
        source: milagro_proto::Error,
    },
    #[error("identity {0} has a rotation chain longer than {MAX_ROTATIONS}")]
    ChainTooLong(String),
    #[error("{0}")]
    Other(String),
}

/// `[identity]` in host.toml: what goes into this node's document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Publish a beneficiary EC key (needed to receive custody wallets).
    pub beneficiary: bool,
    /// HTTP base URLs peers can reach this node at (for the HTTP transport).
    pub http: Vec<String>,
}

/// Longest rotation chain followed when verifying an identity.
pub const MAX_ROTATIONS: usize = 32;

const CURRENT: &[u8] = b"identity/current";
const GENERATION: &[u8] = b"identity/generation";
/// Keystore label of the beneficiary key b.
pub const BENEFICIARY: &str = "node/beneficiary";
/// The one plugin instance that may read b (see `HostObj::beneficiary_secret`).
pub const BENEFICIARY_PLUGIN: &str = milagro_plugin_api::mount::BENEFICIARY_INSTANCE;

/// The keystore label of generation `generation`'s key `what` (`signing`,
/// `ecdh` or `kem`).
pub fn label(generation: u32, what: &str) -> String {
    format!("node/{generation}/{what}")
}

/// This node's identity and the keys that act for it.
pub struct NodeIdentity {
    pub document: VerifiedIdentity,
    pub signer: KeystoreSigner,
    pub ecdh: KeystoreEcdh,
    pub kem: DecapsulationKey,
    /// The earlier generations of this node's chain, newest first: envelopes
    /// still addressed to them are opened with their keys. Their signing
    /// keys are never used again.
    pub earlier: Vec<EarlierGeneration>,
}

/// One earlier generation of this node: its document and decryption keys
/// (`None` when they are gone from the keystore).
pub struct EarlierGeneration {
    pub document: VerifiedIdentity,
    pub keys: Option<(KeystoreEcdh, DecapsulationKey)>,
}

impl NodeIdentity {
    pub fn id(&self) -> &Cid {
        self.document.id()
    }

    /// Every ID of this node's chain, the current one first.
    pub fn ids(&self) -> Vec<Cid> {
        std::iter::once(*self.id())
            .chain(self.earlier.iter().map(|e| *e.document.id()))
            .collect()
    }

    /// Whether `id` is one of this node's chain (current or earlier).
    pub fn is_self(&self, id: &Cid) -> bool {
        self.id() == id || self.earlier.iter().any(|e| e.document.id() == id)
    }

    /// The documents of this node's chain, oldest first.
    pub fn documents(&self) -> impl Iterator<Item = &VerifiedIdentity> {
        self.earlier
            .iter()
            .rev()
            .map(|e| &e.document)
            .chain(std::iter::once(&self.document))
    }

    /// The decryption keys of chain member `id`, if it is one.
    pub fn decryption_keys(&self, id: &Cid) -> Option<(&KeystoreEcdh, &DecapsulationKey)> {
        if self.id() == id {
            return Some((&self.ecdh, &self.kem));
        }
        self.earlier
            .iter()
            .find(|e| e.document.id() == id)
            .and_then(|e| e.keys.as_ref())
            .map(|(ecdh, kem)| (ecdh, kem))
    }

    /// Loads the current identity from the store and keystore, if any.
    pub fn load(
        node: &Namespace,
        keystore: &Arc<dyn Keystore>,
        limits: &Limits,
    ) -> Result<Option<NodeIdentity>, IdentityError> {
        let Some(bytes) = node.get(CURRENT)? else {
            return Ok(None);
        };
        let block = node
            .get(&block_key(&bytes))?
            .ok_or_else(|| IdentityError::Other("identity block missing from the store".into()))?;
        let cid = Cid::try_from(bytes.as_slice())
            .map_err(|e| IdentityError::Other(format!("stored identity CID is invalid: {e}")))?;
        let document = VerifiedIdentity::decode(&cid, &block, limits).map_err(|source| {
            IdentityError::Invalid {
                cid: cid.to_string(),
                source,
            }
        })?;
        let generation = generation(node)?;
        let kem = kem_key(keystore, generation)?
            .ok_or_else(|| KeystoreError::Missing(label(generation, "kem")))?;
        let earlier = load_earlier(node, keystore, limits, &document, generation)?;
        Ok(Some(NodeIdentity {
            document,
            signer: KeystoreSigner::new(Arc::clone(keystore), &label(generation, "signing"))?,
            ecdh: KeystoreEcdh::new(Arc::clone(keystore), &label(generation, "ecdh"))?,
            kem,
            earlier,
        }))
    }

    /// Creates keys and a first identity document, publishes it to IPFS and
    /// records it as current. Fails if the node already has one.
    pub async fn create(
        node: &Namespace,
        keystore: &Arc<dyn Keystore>,
        ipfs: &Ipfs,
        draft: DraftParts,
    ) -> Result<NodeIdentity, IdentityError> {
        if node.get(CURRENT)?.is_some() {
            return Err(IdentityError::Other(
                "this node already has an identity".into(),
            ));
        }
        let keys = generate_keys(keystore, 1, draft.beneficiary)?;
        let document =
            keys.draft(&draft)
                .sign(&keys.signer)
                .map_err(|source| IdentityError::Invalid {
                    cid: "(new)".into(),
                    source,
                })?;
        publish(node, ipfs, &document, 1).await?;
        Ok(keys.into_identity(document))
    }

    /// Replaces the keys and publishes a new document linked to this one and
    /// signed by both the new and the old signing key.
    pub async fn rotate(
        self,
        node: &Namespace,
        keystore: &Arc<dyn Keystore>,
        ipfs: &Ipfs,
        draft: DraftParts,
    ) -> Result<NodeIdentity, IdentityError> {
        let next = generation(node)? + 1;
        let keys = generate_keys(keystore, next, draft.beneficiary)?;
        let document = keys
            .draft(&draft)
            .sign_rotation(&keys.signer, &self.document, &self.signer)
            .map_err(|source| IdentityError::Invalid {
                cid: "(rotation)".into(),
                source,
            })?;
        publish(node, ipfs, &document, next).await?;
        Ok(keys.into_identity(document))
    }

    /// Puts the current document on IPFS again (pinned), e.g. at start-up.
    pub async fn republish(&self, ipfs: &Ipfs) -> Result<(), IdentityError> {
        ipfs.put(DAG_CBOR, self.document.block().bytes().to_vec())
            .await?;
        Ok(())
    }
}

/// What the operator chooses for a new document.
pub struct DraftParts {
    pub name: String,
    pub created_ms: u64,
    pub endpoints: Endpoints,
    pub beneficiary: bool,
}

struct NewKeys {
    signer: KeystoreSigner,
    ecdh: KeystoreEcdh,
    kem: DecapsulationKey,
    beneficiary: Option<EcPublicKey>,
}

impl NewKeys {
    fn draft(&self, parts: &DraftParts) -> IdentityDraft {
        let mut draft = IdentityDraft::new(
            parts.name.clone(),
            parts.created_ms,
            self.signer.public_key(),
            milagro_proto::EcdhKey::public_key(&self.ecdh),
            self.kem.public_key(),
        );
        draft.beneficiary_key = self.beneficiary;
        draft.endpoints = parts.endpoints.clone();
        draft
    }

    fn into_identity(self, document: VerifiedIdentity) -> NodeIdentity {
        NodeIdentity {
            document,
            signer: self.signer,
            ecdh: self.ecdh,
            kem: self.kem,
            earlier: Vec::new(),
        }
    }
}

/// The ML-KEM key of `generation`, if the keystore holds its seed.
fn kem_key(
    keystore: &Arc<dyn Keystore>,
    generation: u32,
) -> Result<Option<DecapsulationKey>, IdentityError> {
    let Some(seed) = keystore.get_secret(&label(generation, "kem"))? else {
        return Ok(None);
    };
    let seed: &[u8; 64] = seed
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::Other("ML-KEM seed has the wrong length".into()))?;
    Ok(Some(DecapsulationKey::from_seed(seed)))
}

/// The earlier generations of the chain ending at `current` (generation
/// `generation`), newest first, each checked to be rotated into the next.
/// A generation whose keys are gone from the keystore is left out (what
/// was addressed to it can no longer be opened) and logged.
fn load_earlier(
    node: &Namespace,
    keystore: &Arc<dyn Keystore>,
    limits: &Limits,
    current: &VerifiedIdentity,
    generation: u32,
) -> Result<Vec<EarlierGeneration>, IdentityError> {
    let mut earlier = Vec::new();
    let mut next = current.clone();
    let mut generation = generation;
    while let Some(previous) = next.previous().copied() {
        generation = generation.saturating_sub(1);
        if generation == 0 || earlier.len() > MAX_ROTATIONS {
            return Err(IdentityError::ChainTooLong(current.id().to_string()));
        }
        let block = node.get(&block_key(&previous.to_bytes()))?.ok_or_else(|| {
            IdentityError::Other(format!("identity block {previous} missing from the store"))
        })?;
        let document = VerifiedIdentity::decode(&previous, &block, limits).map_err(|source| {
            IdentityError::Invalid {
                cid: previous.to_string(),
                source,
            }
        })?;
        next.verify_rotation(&document)
            .map_err(|source| IdentityError::Rotation {
                cid: next.id().to_string(),
                previous: previous.to_string(),
                source,
            })?;
        let ecdh = keystore
            .public_key(&label(generation, "ecdh"))?
            .map(|_| KeystoreEcdh::new(Arc::clone(keystore), &label(generation, "ecdh")))
            .transpose()?;
        let keys = ecdh.zip(kem_key(keystore, generation)?);
        if keys.is_none() {
            tracing::warn!(
                id = %previous,
                generation,
                "the keys of an earlier generation are gone: envelopes addressed to it cannot be opened"
            );
        }
        earlier.push(EarlierGeneration {
            document: document.clone(),
            keys,
        });
        next = document;
    }
    Ok(earlier)
}

fn generate_keys(
    keystore: &Arc<dyn Keystore>,
    generation: u32,
    beneficiary: bool,
) -> Result<NewKeys, IdentityError> {
    let signing = label(generation, "signing");
    let ecdh = label(generation, "ecdh");
    let kem_label = label(generation, "kem");
    // A half-finished earlier attempt may have left some keys: reuse them.
    if keystore.public_key(&signing)?.is_none() {
        keystore.generate(&signing, KeyKind::Secp256k1Signing)?;
    }
    if keystore.public_key(&ecdh)?.is_none() {
        keystore.generate(&ecdh, KeyKind::Secp256k1Ecdh)?;
    }
    let kem = match kem_key(keystore, generation)? {
        Some(kem) => kem,
        None => {
            let kem = DecapsulationKey::generate().map_err(|e| {
                IdentityError::Other(format!("cannot generate the ML-KEM key: {e}"))
            })?;
            keystore.put_secret(&kem_label, kem.to_seed().as_slice())?;
            kem
        }
    };
    let beneficiary = beneficiary
        .then(|| beneficiary_public_key(keystore))
        .transpose()?;
    Ok(NewKeys {
        signer: KeystoreSigner::new(Arc::clone(keystore), &signing)?,
        ecdh: KeystoreEcdh::new(Arc::clone(keystore), &ecdh)?,
        kem,
        beneficiary,
    })
}

/// The beneficiary key b is a secret (custody adds the fiduciaries' shares
/// to it to rebuild a wallet key), so it is kept as an encrypted secret, not
/// as a non-extractable key pair. It survives rotations: wallets depend on it.
fn beneficiary_public_key(keystore: &Arc<dyn Keystore>) -> Result<EcPublicKey, IdentityError> {
    let secret: Zeroizing<Vec<u8>> = match keystore.get_secret(BENEFICIARY)? {
        Some(s) => s,
        None => {
            let key = LocalSigner::generate().map_err(|e| {
                IdentityError::Other(format!("cannot generate the beneficiary key: {e}"))
            })?;
            keystore.put_secret(BENEFICIARY, key.to_bytes().as_slice())?;
            Zeroizing::new(key.to_bytes().to_vec())
        }
    };
    let scalar: &[u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::Other("beneficiary key has the wrong length".into()))?;
    let key = LocalSigner::from_bytes(scalar)
        .map_err(|e| IdentityError::Other(format!("beneficiary key is invalid: {e}")))?;
    Ok(key.public_key())
}

fn generation(node: &Namespace) -> Result<u32, IdentityError> {
    stored_generation(&|key| node.get(key))
}

/// A read of the `node` namespace (a live one, or a store snapshot's).
pub type NodeRead<'a> = &'a dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>;

/// The generation of this node's current keys (1 before any rotation).
pub fn stored_generation(get: NodeRead<'_>) -> Result<u32, IdentityError> {
    Ok(get(GENERATION)?
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(1))
}

fn block_key(cid_bytes: &[u8]) -> Vec<u8> {
    [b"identity/block/".as_slice(), cid_bytes].concat()
}

/// This node's identity chain as its `node` namespace holds it, read
/// through `get`: the current document first, then each one it rotated
/// from, every block decoded (self-signature checked) and every rotation
/// verified. Empty when the node has no identity.
pub fn stored_chain(
    get: NodeRead<'_>,
    limits: &Limits,
) -> Result<Vec<VerifiedIdentity>, IdentityError> {
    let Some(current) = get(CURRENT)? else {
        return Ok(Vec::new());
    };
    let mut next = Cid::try_from(current.as_slice())
        .map_err(|e| IdentityError::Other(format!("stored identity CID is invalid: {e}")))?;
    let mut chain: Vec<VerifiedIdentity> = Vec::new();
    loop {
        if chain.len() > MAX_ROTATIONS {
            return Err(IdentityError::ChainTooLong(next.to_string()));
        }
        let block = get(&block_key(&next.to_bytes()))?.ok_or_else(|| {
            IdentityError::Other(format!("identity block {next} missing from the store"))
        })?;
        let document = VerifiedIdentity::decode(&next, &block, limits).map_err(|source| {
            IdentityError::Invalid {
                cid: next.to_string(),
                source,
            }
        })?;
        if let Some(newer) = chain.last() {
            newer
                .verify_rotation(&document)
                .map_err(|source| IdentityError::Rotation {
                    cid: newer.id().to_string(),
                    previous: document.id().to_string(),
                    source,
                })?;
        }
        let previous = document.previous().copied();
        chain.push(document);
        match previous {
            Some(p) => next = p,
            None => return Ok(chain),
        }
    }
}

/// Puts the document on IPFS, then records it as current (one atomic write).
async fn publish(
    node: &Namespace,
    ipfs: &Ipfs,
    document: &VerifiedIdentity,
    generation: u32,
) -> Result<(), IdentityError> {
    ipfs.put(DAG_CBOR, document.block().bytes().to_vec())
        .await?;
    let cid = document.id().to_bytes();
    node.write(&[
        Write::Put(block_key(&cid), document.block().bytes().to_vec()),
        Write::Put(CURRENT.to_vec(), cid),
        Write::Put(GENERATION.to_vec(), generation.to_be_bytes().to_vec()),
    ])?;
    Ok(())
}

/// Resolves node IDs to verified identity documents: memory cache, then the
/// store, then IPFS. A document is verified (signature, and the rotation
/// chain back to its first version) before it enters either cache.
pub struct Resolver {
    ipfs: Ipfs,
    cache: Namespace,
    memory: Mutex<HashMap<Cid, VerifiedIdentity>>,
    limits: Limits,
}

impl Resolver {
    pub fn new(ipfs: Ipfs, cache: Namespace, limits: Limits) -> Resolver {
        Resolver {
            ipfs,
            cache,
            memory: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// Seeds the cache with a document known to be good (this node's own).
    pub fn remember(&self, document: &VerifiedIdentity) {
        self.memory
            .lock()
            .expect("identity cache lock")
            .insert(*document.id(), document.clone());
    }

    /// Whether `id` resolves without fetching it from IPFS (verified in
    /// this run, or cached in the store by an earlier one).
    pub fn is_cached(&self, id: &Cid) -> bool {
        self.memory
            .lock()
            .expect("identity cache lock")
            .contains_key(id)
            || matches!(self.cache.get(&id.to_bytes()), Ok(Some(_)))
    }

    pub async fn resolve(&self, id: &Cid) -> Result<VerifiedIdentity, IdentityError> {
        let mut chain = Vec::new();
        let mut next = *id;
        // Walk back to the first document or to one already verified.
        let verified_base = loop {
            if let Some(known) = self.memory.lock().expect("identity cache lock").get(&next) {
                break Some(known.clone());
            }
            if chain.len() > MAX_ROTATIONS {
                return Err(IdentityError::ChainTooLong(id.to_string()));
            }
            let document = self.fetch(&next).await?;
            let previous = document.previous().copied();
            chain.push(document);
            match previous {
                Some(p) => next = p,
                None => break None,
            }
        };
        // Verify rotations oldest first, caching each verified document.
        let mut previous = verified_base;
        for document in chain.into_iter().rev() {
            if let Some(prev) = &previous {
                document
                    .verify_rotation(prev)
                    .map_err(|source| IdentityError::Rotation {
                        cid: document.id().to_string(),
                        previous: prev.id().to_string(),
                        source,
                    })?;
            }
            self.cache.write(&[Write::Put(
                document.id().to_bytes(),
                document.block().bytes().to_vec(),
            )])?;
            self.remember(&document);
            previous = Some(document);
        }
        previous.ok_or_else(|| IdentityError::Other("empty identity chain".into()))
    }

    /// `id` and the IDs it was rotated from, newest first: its verified
    /// rotation chain back to the first document.
    pub async fn lineage(&self, id: &Cid) -> Result<Vec<Cid>, IdentityError> {
        let document = self.resolve(id).await?;
        let mut ids = vec![*document.id()];
        let mut next = document.previous().copied();
        while let Some(previous) = next {
            if ids.len() > MAX_ROTATIONS + 1 {
                return Err(IdentityError::ChainTooLong(id.to_string()));
            }
            ids.push(previous);
            let known = self
                .memory
                .lock()
                .expect("identity cache lock")
                .get(&previous)
                .map(|d| d.previous().copied());
            next = match known {
                Some(previous) => previous,
                None => self.resolve(&previous).await?.previous().copied(),
            };
        }
        Ok(ids)
    }

    /// The earlier IDs of `id`'s chain verified in this run, newest first
    /// (without `id`); empty if `id` was not verified in this run.
    pub fn known_lineage(&self, id: &Cid) -> Vec<Cid> {
        let memory = self.memory.lock().expect("identity cache lock");
        let mut ids = Vec::new();
        let mut next = memory.get(id).and_then(|d| d.previous().copied());
        while let Some(previous) = next
            && ids.len() <= MAX_ROTATIONS
        {
            ids.push(previous);
            next = memory.get(&previous).and_then(|d| d.previous().copied());
        }
        ids
    }

    /// Fetches and decodes one document (self-signature checked by decode).
    async fn fetch(&self, id: &Cid) -> Result<VerifiedIdentity, IdentityError> {
        let bytes = match self.cache.get(&id.to_bytes())? {
            Some(bytes) => bytes,
            None => self.ipfs.get(id).await?,
        };
        VerifiedIdentity::decode(id, &bytes, &self.limits).map_err(|source| {
            IdentityError::Invalid {
                cid: id.to_string(),
                source,
            }
        })
    }
}

/// The JSON view of an identity document served by the REST API.
pub fn to_json(document: &VerifiedIdentity) -> Value {
    json!({
        "id": document.id().to_string(),
        "version": document.version(),
        "name": document.name(),
        "created_ms": document.created_ms(),
        "signing_key": hex::encode(document.signing_key().to_bytes()),
        "ecdh_key": hex::encode(document.ecdh_key().to_bytes()),
        "kem_key": hex::encode(document.kem_key().to_bytes()),
        "beneficiary_key": document.beneficiary_key().map(|k| hex::encode(k.to_bytes())),
        "endpoints": {
            "http": document.endpoints().http,
            "peer_id": document.endpoints().peer_id,
            "multiaddrs": document.endpoints().multiaddrs,
        },
        "previous": document.previous().map(|c| c.to_string()),
    })
}
