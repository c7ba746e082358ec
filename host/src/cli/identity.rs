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

//! `milagro init` and `milagro identity show|resolve|rotate|revoke`: this
//! node's keys and identity document. `init`, `show`, `rotate` and `revoke`
//! work on a stopped node's keystore, database and IPFS repo; `resolve` asks
//! the running node over its REST API, so it never contends with it for them.

use std::sync::Arc;

use milagro_ipfs::{DAG_CBOR, Ipfs};
use milagro_proto::{Cid, Limits, REVOKED_KIND, Revocation};
use serde_json::json;

use super::{
    CliError,
    node_api::{NodeApi, segment},
    output::print_json,
};
use crate::{
    chain, clock,
    config::Config,
    identity::{self, IdentityError, NodeIdentity},
    keystore::Keystore,
    node::{self, NodeError, NodeSettings},
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
    node::open_keystore(&NodeSettings::from(config), from_plugin).map_err(|e| e.to_string())
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
    let settings = NodeSettings::from(config);
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
    let settings = NodeSettings::from(config);
    let (store, keystore, ipfs) = open_offline(config).await?;
    let identity = node::rotate_identity(&settings, &store, &keystore, &ipfs, &Limits::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", identity.id());
    Ok(())
}

/// `milagro identity revoke [--id ID]...`: revokes the keys of earlier IDs
/// of this node's chain (all of them without `--id`) from now on: each
/// revocation is signed by the current key, put on IPFS, recorded (this
/// node refuses envelopes signed by a revoked key after it) and queued for
/// the counterparties, told at the next start. Prints the revocations.
pub async fn revoke(config: &Config, ids: &[String]) -> Result<(), String> {
    let (store, keystore, ipfs) = open_offline(config).await?;
    let identity = NodeIdentity::load(&store.namespace("node"), &keystore, &Limits::default())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| IdentityError::NotInitialised.to_string())?;
    let earlier: Vec<Cid> = identity.earlier.iter().map(|e| *e.document.id()).collect();
    let targets: Vec<Cid> = if ids.is_empty() {
        earlier.clone()
    } else {
        ids.iter()
            .map(|text| {
                let id = Cid::try_from(text.as_str())
                    .map_err(|e| format!("--id {text}: not a node ID: {e}"))?;
                if earlier.contains(&id) {
                    Ok(id)
                } else {
                    Err(format!(
                        "--id {text} is not an earlier ID of this node's chain (see `milagro identity show`)"
                    ))
                }
            })
            .collect::<Result<_, _>>()?
    };
    if targets.is_empty() {
        return Err(
            "this node has never rotated: there is no earlier key to revoke (run `milagro identity rotate` first)"
                .into(),
        );
    }
    let chains = store.namespace(node::CHAINS);
    let time_ms = clock::now_ms();
    let mut printed = Vec::new();
    for revoked in targets {
        let revocation = Revocation::sign(&identity.signer, &identity.document, &revoked, time_ms)
            .map_err(|e| format!("cannot sign the revocation of {revoked}: {e}"))?;
        let bytes = revocation.encode().map_err(|e| e.to_string())?;
        let cid = ipfs
            .put(DAG_CBOR, bytes.clone())
            .await
            .map_err(|e| format!("cannot put the revocation on IPFS: {e}"))?;
        chain::store_revocation(&chains, &revocation).map_err(|e| e.to_string())?;
        chain::queue_announcement(&chains, REVOKED_KIND, &bytes).map_err(|e| e.to_string())?;
        printed.push(json!({
            "revoked": revoked.to_string(),
            "by": identity.id().to_string(),
            "time_ms": time_ms,
            "cid": cid.to_string(),
        }));
    }
    println!("{:#}", json!(printed));
    Ok(())
}

/// The `milagro identity` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum IdentityCommand {
    /// Print this node's identity document (from its store; works stopped).
    Show,
    /// Resolve and verify another node's identity by its ID (asks the running node).
    Resolve {
        /// The node ID (the CID of its identity document).
        cid: String,
    },
    /// Replace this node's keys and publish a rotated identity document
    /// (run while the node is stopped). The node keeps the earlier keys to
    /// open what is still addressed to them, and tells its counterparties
    /// at the next start.
    Rotate,
    /// Revoke the keys of earlier IDs of this node's chain, signed by the
    /// current key (run while the node is stopped, after `rotate`): from
    /// now on envelopes they sign are refused by this node and by every
    /// counterparty told at the next start.
    Revoke {
        /// An earlier ID to revoke (repeatable); default: every earlier ID.
        #[arg(long = "id")]
        id: Vec<String>,
    },
}

/// `milagro identity resolve <cid>`: the verified document, as JSON in
/// both forms (the document is what there is to read).
pub async fn resolve(node: &NodeApi, cid: &str) -> Result<(), CliError> {
    let document = node
        .json("GET", &format!("/v1/identity/{}", segment(cid)), None)
        .await?;
    print_json(&document);
    Ok(())
}
