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

//! Content-addressed blocks: DAG-CBOR bytes and their CIDv1 (sha2-256).
//!
//! Every Milagro document is one [`Block`]. Decoding checks, in order: the
//! CID's form, the size limit, that the bytes hash to the CID, that they are
//! well-formed DAG-CBOR of the expected shape, and that re-encoding the
//! decoded value gives the same bytes (one document, one encoding, one CID).

use ipld_core::cid::multihash::Multihash;
use serde::{Serialize, de::DeserializeOwned};
use serde_ipld_dagcbor::DecodeError;
use sha2::{Digest, Sha256};

use crate::{Error, Result, limits};

pub use ipld_core::cid::Cid;

/// Multicodec code of DAG-CBOR.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// A DAG-CBOR block: its CID and its bytes. The bytes always hash to the CID.
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("cid", &self.cid.to_string())
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// CIDv1, dag-cbor, sha2-256 of `bytes`.
pub fn cid_of(bytes: &[u8]) -> Cid {
    cid_v1(DAG_CBOR, bytes)
}

/// CIDv1, sha2-256 of `bytes` as a block of multicodec `codec` (the IPFS
/// facility stores raw blocks too).
pub fn cid_v1(codec: u64, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    let mh = Multihash::<64>::wrap(SHA2_256, digest.as_slice())
        .expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(codec, mh)
}

/// Check that a CID has the only form Milagro documents use.
pub fn check_cid_form(cid: &Cid) -> Result<()> {
    let ok = cid.version() == ipld_core::cid::Version::V1
        && cid.codec() == DAG_CBOR
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32;
    if ok {
        Ok(())
    } else {
        Err(Error::UnsupportedCid {
            cid: Box::new(*cid),
        })
    }
}

impl Block {
    /// Encode `value` as canonical DAG-CBOR and address it.
    pub fn encode<T: Serialize>(value: &T) -> Result<Block> {
        let bytes = to_dag_cbor(value)?;
        Ok(Block {
            cid: cid_of(&bytes),
            bytes,
        })
    }

    /// Accept `bytes` received under `cid`: checks the CID form, the size
    /// limit and the hash. Does not look inside the bytes.
    pub fn from_parts(cid: &Cid, bytes: Vec<u8>, max_bytes: usize) -> Result<Block> {
        check_cid_form(cid)?;
        limits::check("block", bytes.len(), max_bytes)?;
        let actual = cid_of(&bytes);
        if actual != *cid {
            return Err(Error::HashMismatch {
                expected: Box::new(*cid),
                actual: Box::new(actual),
            });
        }
        Ok(Block { cid: *cid, bytes })
    }

    /// Check `bytes` against `cid` (see [`Block::from_parts`]) and decode them
    /// as a `T`, refusing any encoding but the canonical one.
    pub fn decode<T: Serialize + DeserializeOwned>(
        cid: &Cid,
        bytes: &[u8],
        max_bytes: usize,
    ) -> Result<T> {
        let block = Block::from_parts(cid, bytes.to_vec(), max_bytes)?;
        block.decode_body()
    }

    /// Decode this block's bytes as a `T`, refusing any encoding but the
    /// canonical one.
    pub fn decode_body<T: Serialize + DeserializeOwned>(&self) -> Result<T> {
        from_dag_cbor_canonical(&self.bytes)
    }

    /// The block's CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The block's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Take the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Canonical DAG-CBOR encoding of `value`.
pub fn to_dag_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Decode DAG-CBOR and insist that the bytes are the canonical encoding:
/// the one strict decoder of every wire format here (this crate's and the
/// custody messages'). The re-encoding it compares with is wiped, as it
/// holds whatever secret the value does.
pub fn from_dag_cbor_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let value: T = serde_ipld_dagcbor::from_slice(bytes).map_err(map_decode_error)?;
    let again = zeroize::Zeroizing::new(to_dag_cbor(&value)?);
    if *again != bytes {
        return Err(Error::NonCanonical);
    }
    Ok(value)
}

fn map_decode_error<E: std::fmt::Debug>(err: DecodeError<E>) -> Error {
    match err {
        DecodeError::Eof { name, .. } => Error::Truncated(name),
        DecodeError::TrailingData => Error::TrailingData,
        DecodeError::NonMinimal { .. } | DecodeError::UnorderedKey => Error::NonCanonical,
        DecodeError::IndefiniteSize => Error::NonCanonical,
        other => Error::MalformedCbor(short_message(&other)),
    }
}

fn short_message<E: std::fmt::Debug>(err: &DecodeError<E>) -> String {
    // The decoder's messages name CBOR types and field names only; cap the
    // length so a hostile input cannot produce a huge error string.
    let mut s = match err {
        DecodeError::Msg(m) => m.clone(),
        other => format!("{other:?}"),
    };
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Doc {
        a: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        b: Option<String>,
    }

    #[test]
    fn roundtrip_and_cid() {
        let d = Doc {
            a: 7,
            b: Some("x".into()),
        };
        let block = Block::encode(&d).unwrap();
        assert_eq!(block.cid().codec(), DAG_CBOR);
        let back: Doc = Block::decode(block.cid(), block.bytes(), 1024).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn hash_mismatch() {
        let block = Block::encode(&Doc { a: 1, b: None }).unwrap();
        let other = Block::encode(&Doc { a: 2, b: None }).unwrap();
        let err = Block::decode::<Doc>(block.cid(), other.bytes(), 1024).unwrap_err();
        assert!(matches!(err, Error::HashMismatch { .. }), "{err:?}");
    }

    #[test]
    fn wrong_cid_form() {
        let block = Block::encode(&Doc { a: 1, b: None }).unwrap();
        let raw = Cid::new_v1(0x55, *block.cid().hash());
        let err = Block::decode::<Doc>(&raw, block.bytes(), 1024).unwrap_err();
        assert!(matches!(err, Error::UnsupportedCid { .. }), "{err:?}");
    }

    #[test]
    fn oversize() {
        let block = Block::encode(&Doc { a: 1, b: None }).unwrap();
        let err = Block::decode::<Doc>(block.cid(), block.bytes(), 2).unwrap_err();
        assert!(matches!(err, Error::Oversize { .. }), "{err:?}");
    }

    #[test]
    fn null_instead_of_absent_is_non_canonical() {
        // {"a": 1, "b": null}
        let bytes = [0xa2, 0x61, b'a', 0x01, 0x61, b'b', 0xf6];
        let err = Block::decode::<Doc>(&cid_of(&bytes), &bytes, 1024).unwrap_err();
        assert_eq!(err, Error::NonCanonical);
    }

    #[test]
    fn unsorted_keys_are_refused() {
        // {"b": "x", "a": 1}
        let bytes = [0xa2, 0x61, b'b', 0x61, b'x', 0x61, b'a', 0x01];
        let err = Block::decode::<Doc>(&cid_of(&bytes), &bytes, 1024).unwrap_err();
        assert_eq!(err, Error::NonCanonical);
    }

    #[test]
    fn truncated_and_trailing() {
        let block = Block::encode(&Doc {
            a: 1,
            b: Some("hello".into()),
        })
        .unwrap();
        let short = &block.bytes()[..block.bytes().len() - 2];
        let err = Block::decode::<Doc>(&cid_of(short), short, 1024).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)), "{err:?}");
        let mut long = block.bytes().to_vec();
        long.push(0);
        let err = Block::decode::<Doc>(&cid_of(&long), &long, 1024).unwrap_err();
        assert_eq!(err, Error::TrailingData);
    }
}
