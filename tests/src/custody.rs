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

//! Custody helpers shared by the end-to-end tests: the three custody
//! plugins as `[[plugins]]` entries (at the mounts the docs use), node
//! configs playing given roles, and the REST calls of an order's life.

use std::{
    thread,
    time::{Duration, Instant},
};

use milagro_custody::messages::{self, Body};
use serde_json::{Value, json as j};

use crate::{Node, NodeConfig, PluginEntry, free_port, jsipfs::JsIpfs, json, plugin_library};

/// A custody role a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Principal,
    Fiduciary,
    Beneficiary,
}

/// Every role.
pub const ALL_ROLES: [Role; 3] = [Role::Principal, Role::Fiduciary, Role::Beneficiary];

/// The `[[plugins]]` entry of a role; `config` is its inline config table.
pub fn entry(role: Role, config: &str) -> PluginEntry {
    match role {
        Role::Principal => PluginEntry::new(
            "principal",
            &plugin_library("milagro-plugin-custody-principal"),
            config,
        )
        .mount("/v1/custody"),
        Role::Fiduciary => PluginEntry::new(
            "fiduciary",
            &plugin_library("milagro-plugin-custody-fiduciary"),
            config,
        )
        .mount("/v1/fiduciary"),
        // The instance must be named `beneficiary` to use the node's key.
        Role::Beneficiary => PluginEntry::new(
            "beneficiary",
            &plugin_library("milagro-plugin-beneficiary"),
            config,
        ),
    }
}

/// A node playing `roles` (default plugin configs, the principal waiting
/// `reply_timeout_ms`), its embedded IPFS dialling `bootstrap`.
pub fn node_config(
    name: &str,
    roles: &[Role],
    bootstrap: &[String],
    reply_timeout_ms: u64,
) -> NodeConfig {
    embedded_config(name, roles, bootstrap, reply_timeout_ms, 0)
}

/// The same, its IPFS node on a fixed port, so that the addresses other
/// nodes dial stay valid when it is restarted.
pub fn restartable_node_config(
    name: &str,
    roles: &[Role],
    bootstrap: &[String],
    reply_timeout_ms: u64,
) -> NodeConfig {
    embedded_config(name, roles, bootstrap, reply_timeout_ms, free_port())
}

fn embedded_config(
    name: &str,
    roles: &[Role],
    bootstrap: &[String],
    reply_timeout_ms: u64,
    ipfs_port: u16,
) -> NodeConfig {
    let ipfs = format!(
        "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/{ipfs_port}\"]\nbootstrap = {bootstrap:?}\n"
    );
    roles_config(name, roles, &ipfs, reply_timeout_ms)
}

/// The same on a DHT: the embedded node's only bootstrap peer is the
/// (Kubo) DHT server at `dht_server`; it speaks Kubo's LAN DHT, the one Kubo
/// runs on loopback.
pub fn dht_node_config(
    name: &str,
    roles: &[Role],
    dht_server: &str,
    reply_timeout_ms: u64,
) -> NodeConfig {
    roles_config(name, roles, &dht_ipfs_section(dht_server), reply_timeout_ms)
}

/// `[ipfs]` of a node whose only bootstrap peer is `dht_server`.
pub fn dht_ipfs_section(dht_server: &str) -> String {
    format!(
        "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [\"{dht_server}\"]\nrouting = \"lan-dht\"\n"
    )
}

/// The same in kubo mode: the node uses `daemon`'s RPC API, which dials
/// the `others` daemons.
pub fn kubo_config(
    name: &str,
    roles: &[Role],
    daemon: &JsIpfs,
    others: &[&JsIpfs],
    reply_timeout_ms: u64,
) -> NodeConfig {
    let peers: Vec<String> = others.iter().map(|d| d.peer_multiaddr()).collect();
    let ipfs = format!(
        "[ipfs]\nmode = \"kubo\"\napi = \"{}\"\nbootstrap = {peers:?}\n",
        daemon.api_url()
    );
    roles_config(name, roles, &ipfs, reply_timeout_ms)
}

fn roles_config(name: &str, roles: &[Role], ipfs: &str, reply_timeout_ms: u64) -> NodeConfig {
    let mut config = NodeConfig::new(name).section(ipfs);
    if roles.contains(&Role::Beneficiary) {
        config = config.section("[identity]\nbeneficiary = true\n");
    }
    for &role in roles {
        let plugin_config = match role {
            Role::Principal => format!("{{ reply_timeout_ms = {reply_timeout_ms} }}"),
            _ => "{}".to_string(),
        };
        config = config.plugin(entry(role, &plugin_config));
    }
    config
}

/// The IPFS addresses of `nodes`, for a bootstrap list.
pub fn peers(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().flat_map(|n| n.ipfs_addresses()).collect()
}

/// `POST /v1/custody/orders`; (status, body as JSON).
pub fn order(principal: &Node, body: &Value) -> (u16, Value) {
    let (status, text) = principal.call(
        "POST",
        "/v1/custody/orders",
        Some(body.to_string().as_bytes()),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An order that must succeed (201); returns the order.
pub fn order_ok(
    principal: &Node,
    fiduciaries: &[String],
    beneficiary: Option<&str>,
    coin: &str,
    reference: &str,
) -> Value {
    let mut body = j!({"fiduciaries": fiduciaries, "coin": coin, "reference": reference});
    if let Some(b) = beneficiary {
        body["beneficiary"] = j!(b);
    }
    let (status, v) = order(principal, &body);
    assert_eq!(status, 201, "order {reference}: {v}\n{}", principal.log());
    v
}

/// `POST /v1/custody/orders/{reference}/redeem`, optionally to a new beneficiary.
pub fn redeem(principal: &Node, reference: &str, beneficiary: Option<&str>) -> (u16, Value) {
    let body = beneficiary.map(|b| j!({"beneficiary": b}).to_string());
    let (status, text) = principal.call(
        "POST",
        &format!("/v1/custody/orders/{reference}/redeem"),
        body.as_deref().map(str::as_bytes),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET /v1/custody/orders/{reference}` (status, body).
pub fn order_view(principal: &Node, reference: &str) -> (u16, Value) {
    let (status, text) = principal.get_auth(&format!("/v1/custody/orders/{reference}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET /v1/beneficiary/wallets/{reference}` (status, body).
pub fn wallet(beneficiary: &Node, reference: &str) -> (u16, Value) {
    let (status, text) = beneficiary.get_auth(&format!("/v1/beneficiary/wallets/{reference}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Waits (bounded) until the wallet satisfies `done`; returns it.
pub fn wait_wallet(
    beneficiary: &Node,
    reference: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, v) = wallet(beneficiary, reference);
        if status == 200 && done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "wallet {reference} not as expected within {timeout:?}: {status} {v}\n{}",
            beneficiary.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the wallet is complete; returns it (with its secret key).
pub fn wait_complete(beneficiary: &Node, reference: &str, timeout: Duration) -> Value {
    wait_wallet(beneficiary, reference, timeout, |w| {
        w["status"] == "complete"
    })
}

/// The `error.message` of an error body.
pub fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every page of a cursor-paged listing (`items` is the array's field).
pub fn all_pages(node: &Node, path: &str, items: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            None => format!("{path}?limit=50"),
            Some(c) => format!("{path}?limit=50&cursor={c}"),
        };
        let (status, text) = node.get_auth(&url);
        assert_eq!(status, 200, "{url}: {text}");
        let page = json(&text);
        out.extend(page[items].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("{path}: more than 1000 pages");
}

/// The node's `milagro_reply_waiters` gauge: replies its plugins still wait
/// for (0 when idle; absent until the first wait, which reads as 0).
pub fn reply_waiters(node: &Node) -> f64 {
    let (status, text) = node.get("/metrics");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix("milagro_reply_waiters "))
        .map_or(0.0, |value| value.trim().parse().expect("a gauge value"))
}

/// The probe plugin (a node that can send any envelope), consuming `kinds`.
pub fn probe(kinds: &[&str]) -> PluginEntry {
    PluginEntry::new(
        "probe",
        &plugin_library("milagro-test-probe"),
        &format!("{{ label = \"p\", consumes = {kinds:?} }}"),
    )
}

/// Sends a custody body sealed to `to` from a probe node; returns its CID.
pub fn send_sealed<T: Body>(from: &Node, body: &T, to: &str, links: &[String]) -> String {
    let sealed = hex::encode(messages::encode(body).unwrap());
    let request = j!({"kind": T::KIND, "recipients": [to], "links": links, "secret_hex": sealed});
    let (status, text) = from.call(
        "POST",
        "/v1/probe/send",
        Some(request.to_string().as_bytes()),
    );
    assert_eq!(status, 200, "{text}");
    json(&text)["cid"].as_str().unwrap().to_string()
}

/// Waits (bounded) for the refusal of envelope `cid` in a refusals listing.
pub fn wait_refusal(node: &Node, path: &str, cid: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let all = all_pages(node, path, "refusals");
        if let Some(r) = all.iter().find(|r| r["envelope_cid"] == cid) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{cid} not refused:\n{}",
            node.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}
