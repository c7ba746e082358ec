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

//! The canonical DAG-CBOR codec of the bodies: CIDs, validated encoding,
//! and strict decoding (size first, exact shape, canonical bytes, then the
//! body's own checks).

use super::*;

/// CIDv1 (dag-cbor, sha2-256) of `bytes`: the wire format's own.
pub use milagro_proto::cid_of;

/// The order CID: the CID of the order body's canonical DAG-CBOR bytes.
pub fn order_cid(order: &Order) -> Result<Cid> {
    Ok(cid_of(
        &serde_ipld_dagcbor::to_vec(order).map_err(|e| Error::Encode(e.to_string()))?,
    ))
}

/// Validate (with default limits) and encode a body as canonical DAG-CBOR.
pub fn encode<T: Body>(body: &T) -> Result<Vec<u8>> {
    encode_with(body, &Limits::default())
}

/// Validate with `limits` and encode a body as canonical DAG-CBOR.
pub fn encode_with<T: Body>(body: &T, limits: &Limits) -> Result<Vec<u8>> {
    body.validate(limits)?;
    let bytes = serde_ipld_dagcbor::to_vec(body).map_err(|e| Error::Encode(e.to_string()))?;
    if bytes.len() > limits.max_message_bytes {
        return Err(Error::Oversize {
            what: T::KIND,
            limit: limits.max_message_bytes,
            actual: bytes.len(),
        });
    }
    Ok(bytes)
}

/// Strictly decode a body: size limit first, then DAG-CBOR of exactly the
/// expected shape, then canonical form, then [`Body::validate`].
pub fn decode<T: Body>(bytes: &[u8], limits: &Limits) -> Result<T> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Error::Oversize {
            what: T::KIND,
            limit: limits.max_message_bytes,
            actual: bytes.len(),
        });
    }
    let value: T = serde_ipld_dagcbor::from_slice(bytes).map_err(map_decode_error)?;
    let mut again = serde_ipld_dagcbor::to_vec(&value).map_err(|e| Error::Encode(e.to_string()))?;
    let canonical = again == bytes;
    // The re-encoding of a release holds the share.
    again.zeroize();
    if !canonical {
        return Err(Error::NonCanonical);
    }
    value.validate(limits)?;
    Ok(value)
}

pub(crate) fn map_decode_error<E: std::fmt::Debug>(err: DecodeError<E>) -> Error {
    match err {
        DecodeError::NonMinimal { .. }
        | DecodeError::UnorderedKey
        | DecodeError::IndefiniteSize => Error::NonCanonical,
        DecodeError::Eof { .. } => Error::Malformed("truncated".into()),
        DecodeError::TrailingData => Error::Malformed("trailing data".into()),
        DecodeError::Msg(m) => Error::Malformed(truncate(m)),
        other => Error::Malformed(truncate(format!("{other:?}"))),
    }
}

pub(crate) fn truncate(mut s: String) -> String {
    // Decoder messages name CBOR types and field names, never values of
    // secret fields; cap their length against hostile input.
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
