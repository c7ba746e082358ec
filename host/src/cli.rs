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

//! The command-line subcommands other than `serve`: identity management and
//! audit. Commands that need a running node ask it over its REST API, so
//! they never contend with it for the IPFS repo or the database.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use milagro_ipfs::Ipfs;
use milagro_proto::Limits;
use zeroize::Zeroizing;

use crate::{
    config::Config,
    identity::{self, IdentityError, NodeIdentity},
    keystore::Keystore,
    node::{self, NodeError},
    plugins,
    store::Store,
};

fn open_store(config: &Config) -> Result<Store, String> {
    std::fs::create_dir_all(&config.node.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.node.data_dir.display()))?;
    Store::open(&config.node.data_dir.join("milagro.redb")).map_err(|e| e.to_string())
}

/// Opens the configured keystore: a plugin's (e.g. an HSM) before anything
/// is written to the data dir, so a wrong PIN or a missing token leaves
/// nothing behind.
fn open_keystore(config: &Config) -> Result<Arc<dyn Keystore>, String> {
    let from_plugin = plugins::open_keystore(&config.plugins, &config.keystore.backend)
        .map_err(|e| e.to_string())?;
    node::open_keystore(&config.node_settings(), from_plugin).map_err(|e| e.to_string())
}

/// Opens what a stopped node's commands work on: keystore, database and
/// the IPFS node (embedded on the node's own repo, or its Kubo API).
async fn open_offline(config: &Config) -> Result<(Store, Arc<dyn Keystore>, Ipfs), String> {
    let keystore = open_keystore(config)?;
    let store = open_store(config)?;
    let ipfs = Ipfs::open(&config.ipfs, &config.node.data_dir)
        .await
        .map_err(|e| NodeError::from(e).to_string())?;
    Ok((store, keystore, ipfs))
}

/// `milagro init`: keys and identity, created once; prints the node ID.
pub async fn init(config: &Config) -> Result<(), String> {
    let settings = config.node_settings();
    let (store, keystore, ipfs) = open_offline(config).await?;
    let (identity, created) =
        node::load_or_create_identity(&settings, &store, &keystore, &ipfs, &Limits::default())
            .await
            .map_err(|e| e.to_string())?;
    if !created {
        identity.republish(&ipfs).await.map_err(|e| e.to_string())?;
        eprintln!("this node already has an identity; keeping it");
    }
    println!("{}", identity.id());
    Ok(())
}

/// `milagro identity show`: this node's document, from the local store.
pub fn show(config: &Config) -> Result<(), String> {
    let keystore = open_keystore(config)?;
    let store = open_store(config)?;
    let identity = NodeIdentity::load(&store.namespace("node"), &keystore, &Limits::default())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| IdentityError::NotInitialised.to_string())?;
    println!("{:#}", identity::to_json(&identity.document));
    Ok(())
}

/// `milagro identity rotate`: new keys, rotated document; prints the new ID.
pub async fn rotate(config: &Config) -> Result<(), String> {
    let settings = config.node_settings();
    let (store, keystore, ipfs) = open_offline(config).await?;
    let identity = node::rotate_identity(&settings, &store, &keystore, &ipfs, &Limits::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", identity.id());
    Ok(())
}

/// How long a CLI call to the node may take.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The base URL the CLI reaches its node at: the listen address (loopback
/// when it listens on all addresses), `https` when the node has TLS, whose
/// certificate must then name that address.
pub fn node_url(config: &Config) -> String {
    let mut addr = config.http.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("{}://{addr}", config.http.scheme())
}

/// The client the CLI calls its node with: trusts `[http] tls_ca` (else
/// the system roots); any address, the target being the operator's config.
pub fn node_client(config: &Config) -> Result<crate::outbound::Outbound, String> {
    client(config.http.tls_ca.as_deref())
}

/// The CLI's HTTP and HTTPS client (the node's, `milagro mpin login`'s):
/// trusts the CA bundle `tls_ca`, else the system roots; any address, the
/// target being the operator's choice.
pub fn client(tls_ca: Option<&std::path::Path>) -> Result<crate::outbound::Outbound, String> {
    let tls = crate::tls::client_config(tls_ca).map_err(|e| e.to_string())?;
    Ok(crate::outbound::Outbound::new(
        tls,
        crate::outbound::EndpointPolicy::any(),
        std::time::Duration::from_secs(5),
    ))
}

/// GETs a path of the running node, with the operator token if `operator`.
async fn get(config: &Config, path: &str, operator: bool) -> Result<(u16, Vec<u8>), String> {
    let addr = node_url(config);
    let mut request = hyper::Request::get(format!("{addr}{path}"));
    if operator {
        let token = Zeroizing::new(
            std::fs::read_to_string(config.token_file())
                .map_err(|e| format!("cannot read the API token: {e}"))?,
        );
        request = request.header("authorization", format!("Bearer {}", token.trim()));
    }
    let request = request
        .body(Full::<Bytes>::default())
        .map_err(|e| e.to_string())?;
    let response = node_client(config)?
        .request(request, tokio::time::Instant::now() + CALL_TIMEOUT)
        .await
        .map_err(|e| format!("the node at {addr} does not answer (is it running?): {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body.to_vec()))
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// `milagro identity resolve <cid>`.
pub async fn resolve(config: &Config, cid: &str) -> Result<(), String> {
    let (status, body) = get(config, &format!("/v1/identity/{cid}"), false).await?;
    if status != 200 {
        return Err(format!("cannot resolve {cid}: {}", error_message(&body)));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    println!("{value:#}");
    Ok(())
}

/// `milagro audit <cid>`: prints the chain; fails on any break.
pub async fn audit(config: &Config, cid: &str) -> Result<(), String> {
    let (status, body) = get(config, &format!("/v1/audit/{cid}"), true).await?;
    if status != 200 {
        return Err(format!("cannot audit {cid}: {}", error_message(&body)));
    }
    let report: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let entries = report["envelopes"].as_array().cloned().unwrap_or_default();
    for entry in &entries {
        println!(
            "{}  {}  {} ({})  at {} ms",
            entry["cid"].as_str().unwrap_or("?"),
            entry["kind"].as_str().unwrap_or("?"),
            entry["sender_name"].as_str().unwrap_or("?"),
            entry["sender"].as_str().unwrap_or("?"),
            entry["time_ms"],
        );
    }
    if report["ok"] == true {
        println!("chain verified: {} envelope(s)", entries.len());
        Ok(())
    } else {
        Err(format!(
            "chain BROKEN at {}: {}",
            report["broken"]["cid"].as_str().unwrap_or("?"),
            report["broken"]["reason"].as_str().unwrap_or("?")
        ))
    }
}
