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

//! The combined server secret `S = sum s_i*Q`: obtained from the D-TAs,
//! checked share by share, kept in the keystore.
//!
//! Each authority gets one `dta/request` (kind server, sealed to it) and
//! answers one `dta/share` linked to it. The reply must be signed by that
//! authority, carry its public key `P_i` (pinned at first sight: a different
//! key later is refused), and its sealed server share `S_i` must pass
//! `e(P_i, Q) == e(g1, S_i)`. Only when every authority's share passes is
//! `S` formed and stored (keystore label [`SECRET_LABEL`], so an HSM
//! backend wraps it), with the list of authorities it came from: a config
//! that names other authorities obtains a new `S`.

use futures::future::join_all;
use milagro_dta_common::Answer;
use milagro_mpin::{
    G2Affine, g2_from_bytes,
    wire::{SecretKind, ShareRequest},
};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Error, ErrorCode, Host};
use std::time::Duration;

/// Keystore label of the combined server secret.
pub const SECRET_LABEL: &str = "server-secret";
/// Store key of the authorities `S` was obtained from (JSON list, sorted).
const SECRET_AUTHORITIES: &[u8] = b"secret/authorities";
/// Store key of the envelope CIDs of the exchange that obtained `S`.
const SECRET_ENVELOPES: &[u8] = b"secret/envelopes";

/// The combined server secret. Zeroized on drop; never printed.
pub struct ServerSecret(G2Affine);

impl ServerSecret {
    pub fn point(&self) -> &G2Affine {
        &self.0
    }
}

impl Drop for ServerSecret {
    fn drop(&mut self) {
        milagro_mpin::wipe(&mut self.0);
    }
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

fn sorted(authorities: &[String]) -> Vec<String> {
    let mut list = authorities.to_vec();
    list.sort();
    list
}

/// The stored `S`, if it was obtained from exactly `authorities`.
pub async fn load(host: &Host, authorities: &[String]) -> Result<Option<ServerSecret>, Error> {
    let Some(bytes) = host.keystore().get_secret(SECRET_LABEL).await? else {
        return Ok(None);
    };
    let from: Option<Vec<String>> = host
        .store()
        .get(SECRET_AUTHORITIES)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    if from.as_deref() != Some(sorted(authorities).as_slice()) {
        host.warn(
            "mpin: the stored server secret came from other authorities than the config names; obtaining a new one",
        );
        return Ok(None);
    }
    let point = g2_from_bytes(&bytes)
        .map_err(|e| Error::internal(format!("the stored server secret is unusable: {e}")))?;
    Ok(Some(ServerSecret(point)))
}

/// Asks every authority for its server share, checks each, and stores and
/// returns `S`. Returns the envelope CIDs of the exchange too.
pub async fn obtain(
    host: &Host,
    authorities: &[String],
    timeout: Duration,
) -> Result<(ServerSecret, Vec<String>), Error> {
    let sealed = Zeroizing::new(
        serde_json::to_vec(&ShareRequest::server()).map_err(|e| Error::internal(e.to_string()))?,
    );
    // Each authority's whole exchange (resolve, send, reply) within `timeout`.
    let sealed = &sealed;
    let results = join_all(authorities.iter().map(|dta| async move {
        host.within(timeout, obtain_share(host, dta, sealed, timeout))
            .await
            .unwrap_or_else(|| {
                Err(Error::unavailable(format!(
                    "D-TA {dta} did not answer within {} ms",
                    timeout.as_millis()
                )))
            })
    }))
    .await;
    let (shares, cids) = milagro_dta_common::gather(results)?;
    let secret = ServerSecret(milagro_dta_common::combine_server(&shares));
    drop(shares);
    host.keystore()
        .put_secret(SECRET_LABEL, &secret.0.to_compressed())
        .await?;
    let list =
        serde_json::to_vec(&sorted(authorities)).map_err(|e| Error::internal(e.to_string()))?;
    let envelopes = serde_json::to_vec(&cids).map_err(|e| Error::internal(e.to_string()))?;
    host.store()
        .write(vec![
            milagro_plugin_api::Write::Put(SECRET_AUTHORITIES.to_vec(), list),
            milagro_plugin_api::Write::Put(SECRET_ENVELOPES.to_vec(), envelopes),
        ])
        .await?;
    host.info(format!(
        "mpin: obtained the server secret from {} authorities, every share checked",
        authorities.len()
    ));
    Ok((secret, cids))
}

/// The envelope CIDs of the exchange that obtained the stored `S`.
pub async fn envelopes(host: &Host) -> Result<Vec<String>, Error> {
    Ok(host
        .store()
        .get(SECRET_ENVELOPES)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// One authority's checked server share, with the request and reply CIDs
/// (the exchange and its checks are `milagro_dta_common::ask`'s). Errors
/// name the authority, never a share.
async fn obtain_share(
    host: &Host,
    dta: &str,
    sealed: &Zeroizing<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, Error> {
    match host.within(timeout, host.identity().resolve(dta)).await {
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            return Err(Error::new(
                match e.code {
                    ErrorCode::BadRequest => ErrorCode::BadRequest,
                    _ => ErrorCode::Unavailable,
                },
                format!("authority {dta} does not resolve: {}", e.message),
            ));
        }
        None => {
            return Err(Error::unavailable(format!(
                "authority {dta}: its identity did not resolve within {} ms",
                timeout.as_millis()
            )));
        }
    }
    milagro_dta_common::ask(host, dta, SecretKind::Server, &[], sealed, timeout)
        .await
        .map_err(|e| match e.code {
            // Not answering in time leaves logins at 503, like any absent D-TA.
            ErrorCode::Timeout => Error::unavailable(e.message),
            _ => e,
        })
}
