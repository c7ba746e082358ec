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

//! Test helpers: a node's keys and identity.

#![allow(dead_code)]

use milagro_proto::{
    DecapsulationKey, EcdhKey, IdentityDraft, LocalEcdhKey, LocalSigner, Signer, VerifiedIdentity,
};

pub struct Node {
    pub signer: LocalSigner,
    pub ecdh: LocalEcdhKey,
    pub kem: DecapsulationKey,
    pub identity: VerifiedIdentity,
}

impl Node {
    pub fn new(name: &str) -> Node {
        let signer = LocalSigner::generate().unwrap();
        let ecdh = LocalEcdhKey::generate().unwrap();
        let kem = DecapsulationKey::generate().unwrap();
        let draft = IdentityDraft::new(
            name,
            1_700_000_000_000,
            signer.public_key(),
            ecdh.public_key(),
            kem.public_key(),
        );
        let identity = draft.sign(&signer).unwrap();
        Node {
            signer,
            ecdh,
            kem,
            identity,
        }
    }
}

/// Flip one bit of byte `i`.
pub fn flipped(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[i] ^= 0x01;
    out
}
