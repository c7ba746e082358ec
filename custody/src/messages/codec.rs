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
    Ok(cid_of(&to_dag_cbor(order)?))
}

/// Canonical DAG-CBOR, proto's encoder.
fn to_dag_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    milagro_proto::to_dag_cbor(value).map_err(codec_error)
}

/// Validate (with default limits) and encode a body as canonical DAG-CBOR.
pub fn encode<T: Body>(body: &T) -> Result<Vec<u8>> {
    encode_with(body, &Limits::default())
}

/// Validate with `limits` and encode a body as canonical DAG-CBOR.
pub fn encode_with<T: Body>(body: &T, limits: &Limits) -> Result<Vec<u8>> {
    body.validate(limits)?;
    let bytes = to_dag_cbor(body)?;
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
    let value: T = milagro_proto::from_dag_cbor_canonical(bytes).map_err(codec_error)?;
    value.validate(limits)?;
    Ok(value)
}

/// proto's codec errors in this crate's terms.
fn codec_error(e: milagro_proto::Error) -> Error {
    match e {
        milagro_proto::Error::NonCanonical => Error::NonCanonical,
        milagro_proto::Error::Encode(e) => Error::Encode(e),
        milagro_proto::Error::Truncated(_) => Error::Malformed("truncated".into()),
        milagro_proto::Error::TrailingData => Error::Malformed("trailing data".into()),
        milagro_proto::Error::MalformedCbor(m) => Error::Malformed(m),
        other => Error::Malformed(other.to_string()),
    }
}
