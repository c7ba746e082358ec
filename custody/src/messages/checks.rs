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

//! Field checks shared by the bodies: text sizes, node IDs, order CIDs,
//! points, and the serde form of a secret scalar.

use super::*;

pub(crate) mod secret_scalar_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::ByteArray;
    use zeroize::Zeroize;

    use crate::keys::SecretScalar;

    pub fn serialize<S: Serializer>(s: &SecretScalar, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_bytes(&*s.to_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SecretScalar, D::Error> {
        let mut raw = ByteArray::<32>::deserialize(de)?;
        let out = SecretScalar::from_bytes(&raw)
            .map_err(|_| serde::de::Error::custom("share is not a valid non-zero scalar"));
        raw.zeroize();
        out
    }
}

pub(crate) fn check_text(field: &'static str, value: &str, limits: &Limits) -> Result<()> {
    if value.len() > limits.max_text_bytes {
        return Err(Error::Oversize {
            what: field,
            limit: limits.max_text_bytes,
            actual: value.len(),
        });
    }
    if value.is_empty() {
        return Err(Error::InvalidField {
            field,
            reason: "empty",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidField {
            field,
            reason: "contains control characters",
        });
    }
    Ok(())
}

/// Check that `text` is a node ID in canonical form: a CIDv1, dag-cbor,
/// sha2-256 (32 bytes), written in its default (base32 lower-case) form.
pub fn check_node_id(field: &'static str, text: &str) -> Result<Cid> {
    let invalid = Error::InvalidField {
        field,
        reason: "not a canonical node ID (CIDv1 dag-cbor sha2-256, base32)",
    };
    if text.len() > 128 {
        return Err(invalid);
    }
    let cid = Cid::try_from(text).map_err(|_| invalid.clone())?;
    let ok = cid.version() == ipld_core::cid::Version::V1
        && cid.codec() == DAG_CBOR
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
        && cid.to_string() == text;
    if ok { Ok(cid) } else { Err(invalid) }
}

pub(crate) fn check_order_cid(field: &'static str, cid: &Cid) -> Result<()> {
    let ok = cid.version() == ipld_core::cid::Version::V1
        && cid.codec() == DAG_CBOR
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidField {
            field,
            reason: "not a CIDv1 dag-cbor sha2-256",
        })
    }
}

pub(crate) fn check_points(
    field: &'static str,
    points: &[ByteArray<PUBLIC_KEY_LEN>],
) -> Result<()> {
    if points.is_empty() || points.len() > MAX_PARTIES {
        return Err(Error::InvalidField {
            field,
            reason: "1 to 255 commitments expected",
        });
    }
    for point in points {
        keys::decode_public_key(&point[..])?;
    }
    Ok(())
}

/// An order's (or notice's) number of fiduciaries: 1 to the limit.
pub(crate) fn check_fiduciary_count(n: usize, limits: &Limits) -> Result<()> {
    let max = limits.max_fiduciaries.min(MAX_PARTIES);
    if n > max {
        return Err(Error::Oversize {
            what: "fiduciaries",
            limit: max,
            actual: n,
        });
    }
    if n == 0 {
        return Err(Error::InvalidField {
            field: "fiduciaries",
            reason: "empty",
        });
    }
    Ok(())
}

/// A list of fiduciaries (1 to the limit, distinct canonical node IDs) and
/// a threshold 1 <= t <= n.
pub(crate) fn check_fiduciaries(
    fiduciaries: &[String],
    threshold: u32,
    limits: &Limits,
) -> Result<()> {
    let n = fiduciaries.len();
    check_fiduciary_count(n, limits)?;
    for (pos, f) in fiduciaries.iter().enumerate() {
        check_node_id("fiduciaries", f)?;
        if fiduciaries[..pos].contains(f) {
            return Err(Error::InvalidField {
                field: "fiduciaries",
                reason: "duplicate fiduciary",
            });
        }
    }
    if threshold == 0 || threshold as usize > n {
        return Err(Error::InvalidThreshold {
            threshold: threshold as usize,
            parties: n,
        });
    }
    Ok(())
}
