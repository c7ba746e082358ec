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

//! The command-line subcommands other than `serve`: identity management,
//! audit and `api` (any REST route of a local or remote node). Commands
//! that need a running node ask it over its REST API, so they never contend
//! with it for the IPFS repo or the database.

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
    let tls = crate::tls::client_config(tls_ca, None).map_err(|e| e.to_string())?;
    Ok(crate::outbound::Outbound::new(
        tls,
        crate::outbound::EndpointPolicy::any(),
        std::time::Duration::from_secs(5),
    ))
}

/// A node the CLI calls: its base URL, the client that trusts its
/// certificate, and the operator token sent with each call, if any.
pub struct NodeApi {
    url: String,
    client: crate::outbound::Outbound,
    token: Option<Zeroizing<String>>,
}

impl NodeApi {
    /// The node of `config`: its listen address and TLS settings, and its
    /// token file when `operator`.
    pub fn local(config: &Config, operator: bool) -> Result<NodeApi, String> {
        let token = match operator {
            true => Some(read_token(&config.token_file())?),
            false => None,
        };
        Ok(NodeApi {
            url: node_url(config),
            client: node_client(config)?,
            token,
        })
    }

    /// The node at `url` (`http://` or `https://`), trusting the CA bundle
    /// `tls_ca` (else the system roots), with the token in `token_file`.
    pub fn remote(
        url: &str,
        tls_ca: Option<&std::path::Path>,
        token_file: Option<&std::path::Path>,
    ) -> Result<NodeApi, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "--url {url:?}: expected http://host:port or https://host:port"
            ));
        }
        Ok(NodeApi {
            url: url.trim_end_matches('/').to_string(),
            client: client(tls_ca)?,
            token: token_file.map(read_token).transpose()?,
        })
    }

    /// `method path` with `body`; (status, body of the answer).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), String> {
        if !path.starts_with('/') {
            return Err(format!(
                "path {path:?}: expected an absolute path such as /v1/status"
            ));
        }
        let method = hyper::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("{method:?} is not an HTTP method"))?;
        let url = &self.url;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{url}{path}"));
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{url}{path}: {e}"))?;
        let response = self
            .client
            .request(request, tokio::time::Instant::now() + CALL_TIMEOUT)
            .await
            .map_err(|e| {
                let e = e.to_string();
                let hint = match e.contains("onnection refused") {
                    true => " (is it running?)",
                    false => "",
                };
                format!("cannot call the node at {url}{hint}: {e}")
            })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body.to_vec()))
    }
}

fn read_token(path: &std::path::Path) -> Result<Zeroizing<String>, String> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read the API token in {}: {e}", path.display()))
}

/// GETs a path of the running node, with the operator token if `operator`.
async fn get(config: &Config, path: &str, operator: bool) -> Result<(u16, Vec<u8>), String> {
    NodeApi::local(config, operator)?
        .call("GET", path, Vec::new())
        .await
}

/// `milagro api METHOD PATH`: prints the answer's body (JSON pretty
/// printed) on standard output; an answer that is not 2xx is an error
/// naming its status and message.
pub async fn api(node: &NodeApi, method: &str, path: &str, body: Vec<u8>) -> Result<(), String> {
    let (status, answer) = node.call(method, path, body).await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "{} {path}: {status}: {}",
            method.to_ascii_uppercase(),
            error_message(&answer)
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(&answer) {
        Ok(value) => println!("{value:#}"),
        Err(_) => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&answer)
                .map_err(|e| format!("cannot write the answer: {e}"))?;
        }
    }
    Ok(())
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
