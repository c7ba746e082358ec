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

//! Envelopes crafted by the test itself: identities whose keys the test
//! holds (their documents published through a node's IPFS), genuine sealed
//! envelopes, and the CBOR-level edits and re-signing that forge bad ones;
//! plus delivery to a node over HTTP and what its probe plugin processed.

use std::{
    collections::BTreeMap,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use ipld_core::ipld::Ipld;
use milagro_proto::{
    Cid, DecapsulationKey, Endpoints, EnvelopeDraft, IdentityDraft, Limits, LocalEcdhKey,
    LocalSigner, Signer, VerifiedIdentity, envelope::SIGNATURE_LABEL, seal, sign::signing_digest,
};

use crate::{Node, json, request};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An identity the test holds the keys of.
pub struct Party {
    pub signer: LocalSigner,
    pub doc: VerifiedIdentity,
}

pub fn party(name: &str) -> Party {
    party_with(name, |_| {})
}

/// An identity the test holds the keys of, whose document claims the
/// endpoints `claim` writes (addresses, a peer ID: anything an attacker may
/// put in its own document).
pub fn party_with(name: &str, claim: impl FnOnce(&mut Endpoints)) -> Party {
    let signer = LocalSigner::generate().unwrap();
    let ecdh = LocalEcdhKey::generate().unwrap();
    let kem = DecapsulationKey::generate().unwrap();
    let mut draft = IdentityDraft::new(
        name,
        now_ms(),
        signer.public_key(),
        milagro_proto::EcdhKey::public_key(&ecdh),
        kem.public_key(),
    );
    claim(&mut draft.endpoints);
    let doc = draft.sign(&signer).unwrap();
    Party { signer, doc }
}

/// Puts a DAG-CBOR block on the node's IPFS (through its probe plugin);
/// returns its CID.
pub fn publish(node: &Node, bytes: &[u8]) -> String {
    let r = node.call("POST", "/v1/probe/ipfs/put", Some(bytes));
    assert_eq!(r.0, 200, "{}", r.1);
    json(&r.1)["cid"].as_str().unwrap().to_string()
}

/// Fetches and verifies an identity document through the node's probe plugin.
pub fn fetch_identity(node: &Node, id: &str) -> VerifiedIdentity {
    let response = node
        .agent()
        .get(&node.url(&format!("/v1/probe/ipfs/get/{id}")))
        .set("Authorization", &format!("Bearer {}", node.token()))
        .call()
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    VerifiedIdentity::decode(&Cid::try_from(id).unwrap(), &bytes, &Limits::default()).unwrap()
}

/// A genuine `test/note` envelope from `from` sealed to `to`: its block bytes.
pub fn sealed(from: &Party, to: &[&VerifiedIdentity], body: &str, time_ms: u64) -> Vec<u8> {
    note(from, to, body, Some(b"secret"), time_ms)
}

/// A genuine `test/note` envelope from `from` to `to`, with a sealed part
/// only if `secret` is given: its block bytes.
pub fn note(
    from: &Party,
    to: &[&VerifiedIdentity],
    body: &str,
    secret: Option<&[u8]>,
    time_ms: u64,
) -> Vec<u8> {
    let draft = EnvelopeDraft {
        body: Some(body.as_bytes()),
        secret_body: secret,
        ..EnvelopeDraft::new("test/note", time_ms)
    };
    seal_draft(from, to, &draft)
}

/// `draft` signed by `from` and sealed to `to`: its block bytes.
pub fn seal_draft(from: &Party, to: &[&VerifiedIdentity], draft: &EnvelopeDraft) -> Vec<u8> {
    seal(&from.signer, &from.doc, to, draft)
        .unwrap()
        .block()
        .bytes()
        .to_vec()
}

/// A plaintext envelope of `kind` from `from` to `to`, linked to `links`:
/// its block bytes.
pub fn envelope(
    from: &Party,
    to: &VerifiedIdentity,
    kind: &str,
    links: &[Cid],
    body: &[u8],
) -> Vec<u8> {
    let draft = EnvelopeDraft {
        body: Some(body),
        links,
        ..EnvelopeDraft::new(kind, now_ms())
    };
    seal_draft(from, &[to], &draft)
}

/// A DAG-CBOR map's entries.
pub fn to_map(bytes: &[u8]) -> BTreeMap<String, Ipld> {
    match serde_ipld_dagcbor::from_slice(bytes).unwrap() {
        Ipld::Map(map) => map,
        other => panic!("not a map: {other:?}"),
    }
}

/// Canonical DAG-CBOR of a map.
pub fn encode(map: &BTreeMap<String, Ipld>) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(&Ipld::Map(map.clone())).unwrap()
}

/// Signs the map again with `signer`, as its holder could.
pub fn resign(mut map: BTreeMap<String, Ipld>, signer: &LocalSigner) -> Vec<u8> {
    map.remove("sig");
    let digest = signing_digest(SIGNATURE_LABEL, &encode(&map));
    let sig = signer.sign_prehash(&digest).unwrap();
    map.insert("sig".into(), Ipld::Bytes(sig.to_bytes().to_vec()));
    encode(&map)
}

pub fn link(id: &str) -> Ipld {
    Ipld::Link(Cid::try_from(id).unwrap())
}

/// `POST /v1/inbox` with the block, and its CID in `milagro-cid` if given.
pub fn deliver(node: &Node, bytes: &[u8], cid: Option<&str>) -> (u16, String) {
    let mut req = ureq::post(&node.url("/v1/inbox"));
    if let Some(cid) = cid {
        req = req.set("milagro-cid", cid);
    }
    request(req, Some(bytes))
}

/// How many envelopes the node's probe plugin has recorded.
pub fn processed(node: &Node) -> usize {
    json(&node.get_auth("/v1/probe/received").1)
        .as_array()
        .unwrap()
        .len()
}

/// Waits (up to 20 s) until the probe plugin has recorded `n` envelopes.
pub fn wait_processed(node: &Node, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = processed(node);
        if seen >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited 20 s for {n} envelopes processed by the probe plugin, saw {seen}:\n{}",
            node.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}
