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

//! What the three custody plugins (`custody-principal`,
//! `custody-fiduciary`, `beneficiary`) share: custody message bodies carried
//! in envelopes, refusal records, the mapping of custody errors to API
//! errors, and the checks on user-chosen names. JSON records in the store
//! are the SDK's (`Store::get_json`, `Write::put_json`, `Page::records`).
//!
//! Every custody body travels in the envelope's sealed part: only its
//! recipients read it. The envelope header (kind, sender, links) stays in
//! the clear, so `milagro audit` and IPFS tools can walk an order's history
//! without reading it.

#![forbid(unsafe_code)]

use std::{collections::HashMap, sync::Arc};

use milagro_custody::SecretScalar;
use milagro_custody::feldman::Commitments;
use milagro_custody::messages::{self, Body, Limits};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Envelope, Error, Host, NewEnvelope};
use serde::{Serialize, de::DeserializeOwned};

/// One async lock per key (an order), so that work on one order never
/// waits for another: a send to a peer that is down may take the whole
/// delivery timeout while its order is locked. Entries are dropped with
/// their last guard.
#[derive(Default)]
pub struct Locks(Arc<std::sync::Mutex<HashMap<String, Arc<futures::lock::Mutex<()>>>>>);

/// Holds one key's lock; releases it (and forgets the key if nobody else
/// waits for it) when dropped.
pub struct KeyGuard {
    guard: Option<futures::lock::OwnedMutexGuard<()>>,
    key: String,
    locks: Arc<std::sync::Mutex<HashMap<String, Arc<futures::lock::Mutex<()>>>>>,
}

impl Locks {
    /// Locks `key`.
    pub async fn lock(&self, key: &str) -> KeyGuard {
        let mutex = Arc::clone(
            self.0
                .lock()
                .expect("locks map")
                .entry(key.to_string())
                .or_default(),
        );
        KeyGuard {
            guard: Some(mutex.lock_owned().await),
            key: key.to_string(),
            locks: Arc::clone(&self.0),
        }
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let mut map = self.locks.lock().expect("locks map");
        self.guard.take();
        // Only the map still holds it: no guard, no waiter.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// Store prefix of [`Refusal`] records.
pub const REFUSAL_PREFIX: &str = "refusal/";

/// An envelope this node refused to act on, as recorded and listed.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Refusal {
    pub envelope_cid: String,
    pub kind: String,
    pub sender: String,
    pub reason: String,
    pub time_unix_ms: u64,
}

/// Records (durably) and logs the refusal of `envelope`. The envelope stays
/// processed: refusing is the answer, not a failure to retry.
pub async fn refuse(host: &Host, envelope: &Envelope, reason: &str) -> Result<(), Error> {
    let now = host.now_unix_ms();
    host.warn(format!(
        "refused {} {} from {}: {reason}",
        envelope.kind, envelope.cid, envelope.sender
    ));
    let record = Refusal {
        envelope_cid: envelope.cid.clone(),
        kind: envelope.kind.clone(),
        sender: envelope.sender.clone(),
        reason: reason.to_string(),
        time_unix_ms: now,
    };
    let key = format!("{REFUSAL_PREFIX}{now:016x}/{}", envelope.cid);
    host.store().put_json(&key, &record).await
}

/// `GET /refusals`: a page of this instance's [`Refusal`] records.
pub async fn refusals(
    host: &Host,
    request: &milagro_plugin_api::Request,
) -> Result<milagro_plugin_api::Response, Error> {
    listing::<Refusal>(host, REFUSAL_PREFIX, "refusals", request).await
}

/// A page of the JSON records of type `T` under `prefix`, answered as
/// `{<field>: [...], "next_cursor": ...}` (a paged route's handler).
pub async fn listing<T: DeserializeOwned + Serialize>(
    host: &Host,
    prefix: &str,
    field: &str,
    request: &milagro_plugin_api::Request,
) -> Result<milagro_plugin_api::Response, Error> {
    let page = host.store().page(prefix.as_bytes(), request).await?;
    let records: Vec<T> = page.records()?;
    let mut answer = serde_json::Map::new();
    answer.insert(
        field.to_string(),
        serde_json::to_value(records).map_err(|e| Error::internal(e.to_string()))?,
    );
    answer.insert(
        "next_cursor".into(),
        serde_json::to_value(&page.next_cursor).map_err(|e| Error::internal(e.to_string()))?,
    );
    milagro_plugin_api::Response::json(200, &answer)
}

/// Feldman commitments as hex points, for JSON records.
pub fn hex_points(commitments: &Commitments) -> Result<Vec<String>, Error> {
    Ok(commitments
        .to_bytes()
        .map_err(custody_error)?
        .iter()
        .map(hex::encode)
        .collect())
}

/// The inverse of [`hex_points`].
pub fn points_from_hex(points: &[String]) -> Result<Commitments, Error> {
    let raw = points
        .iter()
        .map(|p| {
            let bytes = hex::decode(p).map_err(|_| Error::internal("a stored point is not hex"))?;
            <[u8; milagro_custody::keys::PUBLIC_KEY_LEN]>::try_from(bytes.as_slice())
                .map_err(|_| Error::internal("a stored point has the wrong length"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Commitments::from_bytes(&raw).map_err(custody_error)
}

/// Longest order reference, in bytes.
pub const MAX_REFERENCE_LEN: usize = 128;

/// Decodes the custody body sealed in `envelope`, strictly. The error is a
/// short reason for a refusal record (never the body).
pub fn open<T: Body>(envelope: &Envelope) -> Result<T, String> {
    let sealed = envelope
        .sealed
        .as_ref()
        .ok_or_else(|| format!("{} is not sealed", T::KIND))?;
    messages::decode(sealed, &Limits::default()).map_err(|e| format!("malformed {}: {e}", T::KIND))
}

/// Signs, seals (to `recipients` only) and delivers a custody body; returns
/// the envelope's CID.
pub async fn send<T: Body>(
    host: &Host,
    body: &T,
    recipients: Vec<String>,
    links: Vec<String>,
) -> Result<String, Error> {
    let sealed = Zeroizing::new(messages::encode(body).map_err(custody_error)?);
    host.transport()
        .send(NewEnvelope {
            kind: T::KIND.into(),
            recipients,
            links,
            body: Vec::new(),
            sealed,
        })
        .await
}

/// A body's canonical encoding as hex, for a store record.
pub fn encode_hex<T: Body>(body: &T) -> Result<String, Error> {
    Ok(hex::encode(messages::encode(body).map_err(custody_error)?))
}

/// A body kept with [`encode_hex`], decoded strictly again.
pub fn decode_hex<T: Body>(hex_body: &str) -> Result<T, Error> {
    let bytes = hex::decode(hex_body).map_err(|_| Error::internal("a stored body is not hex"))?;
    messages::decode(&bytes, &Limits::default()).map_err(custody_error)
}

/// A custody-core error as an API error: the input was well-formed but does
/// not verify or does not fit (422). Custody errors never carry secrets.
pub fn custody_error(e: milagro_custody::Error) -> Error {
    Error::unprocessable(e.to_string())
}

/// A 32-byte secret scalar kept in the keystore under `label`, if any.
pub async fn get_scalar(host: &Host, label: &str) -> Result<Option<SecretScalar>, Error> {
    let Some(bytes) = host.keystore().get_secret(label).await? else {
        return Ok(None);
    };
    let bytes: &[u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::internal(format!("the secret {label} has the wrong length")))?;
    SecretScalar::from_bytes(bytes)
        .map(Some)
        .map_err(custody_error)
}

/// Checks an order reference: 1-128 bytes of `A-Z a-z 0-9 . _ -`, not
/// starting with a dot. It appears in URL paths and store keys, so nothing
/// else (no `/`, no `..`, no spaces or control characters) is accepted.
pub fn check_reference(reference: &str) -> Result<(), Error> {
    let ok = !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_LEN
        && !reference.starts_with('.')
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "reference must be 1 to {MAX_REFERENCE_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-', not starting with '.'"
        )))
    }
}

/// Checks a node ID given in a request (canonical CIDv1 text).
pub fn check_node_id(field: &'static str, id: &str) -> Result<(), Error> {
    messages::check_node_id(field, id).map(|_| ()).map_err(|_| {
        Error::bad_request(format!(
            "{field}: {id:?} is not a node ID (a CIDv1 dag-cbor sha2-256 in base32, bafyrei...)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_key_does_not_block_other_keys_and_is_forgotten_when_free() {
        futures::executor::block_on(async {
            let locks = Locks::default();
            let held = locks.lock("order-a").await;
            // Any other key locks at once, whatever it hashes to.
            for i in 0..1000 {
                drop(locks.lock(&format!("order-{i}")).await);
            }
            // The same key waits for the holder.
            let mut again = Box::pin(locks.lock("order-a"));
            assert!(futures::poll!(again.as_mut()).is_pending());
            drop(held);
            drop(again.await);
            assert!(locks.0.lock().unwrap().is_empty(), "no key left behind");
        });
    }

    #[test]
    fn references_that_are_safe_in_paths_and_keys() {
        for ok in ["a", "order-1", "A.b_c-9", &"x".repeat(MAX_REFERENCE_LEN)] {
            assert!(check_reference(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "a\nb",
            "é",
            "%2e%2e",
            &"x".repeat(MAX_REFERENCE_LEN + 1),
        ] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
    }
}
