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

//! A test-only plugin that misbehaves on request, so the host's tests can
//! check what it does when a handler panics, stalls or calls a facility the
//! host does not provide, and that drives the host's facilities (IPFS,
//! identity, transport) from the outside. It is a second, separate library
//! exporting the same root-module type as the example plugin.

#![forbid(unsafe_code)]

use std::time::Duration;

use milagro_plugin_api::{
    Envelope, Error, Host, NewEnvelope, Plugin, Request, Response, Route, Write,
};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Returned by `/whoami`, to tell instances apart.
    label: String,
    /// Test hooks for constructor failures.
    #[serde(default)]
    panic_in_new: bool,
    #[serde(default)]
    fail_in_new: bool,
    /// Envelope kinds to consume; `test/slow` ones are held 3 s before
    /// they are recorded.
    #[serde(default)]
    consumes: Vec<String>,
}

pub struct Probe {
    label: String,
    consumes: Vec<String>,
    host: Host,
}

/// Reported by `/whoami`. The plugin-pin test copies this library and
/// patches these bytes, making a second valid library that tells itself
/// apart from the first when it runs.
pub const BUILD_MARK: &str = "probe-build-mark:original";

/// How long a `test/slow` envelope is held before it is recorded.
const SLOW: Duration = Duration::from_secs(3);

/// `POST /send`.
#[derive(Deserialize)]
struct SendBody {
    kind: String,
    recipients: Vec<String>,
    #[serde(default)]
    links: Vec<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    secret: String,
    /// A binary sealed body, hex (instead of `secret`).
    #[serde(default)]
    secret_hex: Option<String>,
}

impl Plugin for Probe {
    type Config = Config;
    const NAME: &'static str = "probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        if config.panic_in_new {
            panic!("probe asked to panic in new");
        }
        if config.fail_in_new {
            return Err(Error::bad_request("probe asked to fail in new"));
        }
        Ok(Probe {
            label: config.label,
            consumes: config.consumes,
            host,
        })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        vec![
            Route::get("/whoami", "whoami", |p: &Self, _| Box::pin(p.whoami()))
                .summary("This instance's label"),
            Route::get("/panic", "panic", |p: &Self, _| Box::pin(p.panic()))
                .summary("Panics inside the handler"),
            Route::get("/sleep/{ms}", "sleep", |p: &Self, r| Box::pin(p.sleep(r)))
                .summary("Answers after a delay on the host's timer"),
            Route::get("/ipfs", "ipfs", |p: &Self, _| Box::pin(p.ipfs()))
                .summary("Calls the IPFS facility"),
            Route::post("/echo", "echo", |p: &Self, r| Box::pin(p.echo(r)))
                .summary("Returns the request body"),
            Route::post("/ipfs/put", "ipfs_put", |p: &Self, r| {
                Box::pin(p.ipfs_put(r))
            })
            .summary("Stores the body as a DAG-CBOR block"),
            Route::get("/ipfs/get/{cid}", "ipfs_get", |p: &Self, r| {
                Box::pin(p.ipfs_get(r))
            })
            .summary("A block's bytes"),
            Route::get("/identity", "identity", |p: &Self, _| {
                Box::pin(p.identity())
            })
            .summary("This node's identity"),
            Route::get("/resolve/{id}", "resolve", |p: &Self, r| {
                Box::pin(p.resolve(r))
            })
            .summary("Another node's identity"),
            Route::post("/send", "send", |p: &Self, r| Box::pin(p.send(r)))
                .summary("Sends an envelope"),
            Route::get("/received", "received", |p: &Self, _| {
                Box::pin(p.received())
            })
            .summary("Envelopes received, with processing counts"),
            Route::get("/await/{cid}/{kind}", "await", |p: &Self, r| {
                Box::pin(p.await_reply(r))
            })
            .summary("Waits for a reply (kind with '/' as '.')"),
        ]
    }

    fn consumes(&self) -> Vec<String> {
        self.consumes.clone()
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), Error> {
        if envelope.kind == "test/slow" {
            self.host.sleep(SLOW).await;
        }
        let store = self.host.store();
        let count_key = format!("count/{}", envelope.cid);
        let count = match store.get(count_key.as_bytes()).await? {
            Some(v) => u64::from_be_bytes(v.try_into().unwrap_or_default()),
            None => 0,
        };
        let record = json!({
            "cid": envelope.cid,
            "kind": envelope.kind,
            "sender": envelope.sender,
            "time_unix_ms": envelope.time_unix_ms,
            "links": envelope.links,
            "body": String::from_utf8_lossy(&envelope.body),
            "secret": envelope.sealed.as_ref().map(|s| String::from_utf8_lossy(s).into_owned()),
            "secret_hex": envelope.sealed.as_ref().map(|s| hex::encode(s.as_slice())),
            "processed": count + 1,
        });
        store
            .write(vec![
                Write::Put(
                    format!("recv/{}", envelope.cid).into_bytes(),
                    record.to_string().into_bytes(),
                ),
                Write::Put(count_key.into_bytes(), (count + 1).to_be_bytes().to_vec()),
            ])
            .await
    }
}

/// The handlers, one per route.
impl Probe {
    async fn whoami(&self) -> Result<Response, Error> {
        Response::json(200, &json!({ "label": self.label, "build": BUILD_MARK }))
    }

    async fn panic(&self) -> Result<Response, Error> {
        panic!("probe handler panicked on purpose")
    }

    async fn sleep(&self, request: &Request) -> Result<Response, Error> {
        let ms: u64 = request
            .param("ms")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::bad_request("ms must be an integer"))?;
        self.host.sleep(Duration::from_millis(ms)).await;
        Response::json(200, &json!({ "slept_ms": ms }))
    }

    async fn ipfs(&self) -> Result<Response, Error> {
        let cid = self.host.ipfs().put(0x55, b"probe".to_vec()).await?;
        Response::json(200, &json!({ "cid": cid }))
    }

    async fn ipfs_put(&self, request: &Request) -> Result<Response, Error> {
        let cid = self.host.ipfs().put(0x71, request.body.clone()).await?;
        Response::json(200, &json!({ "cid": cid }))
    }

    async fn ipfs_get(&self, request: &Request) -> Result<Response, Error> {
        let data = self
            .host
            .ipfs()
            .get(request.param("cid").unwrap_or_default())
            .await?;
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: data,
        })
    }

    async fn identity(&self) -> Result<Response, Error> {
        let me = self.host.identity().this_node().await?;
        Response::json(200, &json!({ "id": me.id, "name": me.name }))
    }

    async fn resolve(&self, request: &Request) -> Result<Response, Error> {
        let id = request.param("id").unwrap_or_default();
        let other = self.host.identity().resolve(id).await?;
        Response::json(
            200,
            &json!({ "id": other.id, "name": other.name,
            "signing_key": hex::encode(&other.signing_key) }),
        )
    }

    async fn send(&self, request: &Request) -> Result<Response, Error> {
        let body: SendBody = request.json()?;
        let sealed = match &body.secret_hex {
            Some(h) => hex::decode(h).map_err(|_| Error::bad_request("secret_hex is not hex"))?,
            None => body.secret.into_bytes(),
        };
        let cid = self
            .host
            .transport()
            .send(NewEnvelope {
                kind: body.kind,
                recipients: body.recipients,
                links: body.links,
                body: body.body.into_bytes(),
                sealed: sealed.into(),
            })
            .await?;
        Response::json(200, &json!({ "cid": cid }))
    }

    async fn received(&self) -> Result<Response, Error> {
        let records = self.host.store().scan(b"recv/", None, 1000).await?;
        let list: Vec<serde_json::Value> = records
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect();
        Response::json(200, &list)
    }

    async fn await_reply(&self, request: &Request) -> Result<Response, Error> {
        let cid = request.param("cid").unwrap_or_default();
        let kind = request.param("kind").unwrap_or_default().replace('.', "/");
        let ms: u64 = request
            .query_param("ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000);
        // `from`: the node IDs the reply may come from, by commas.
        let from = request.query_param("from").unwrap_or_default();
        let from: Vec<&str> = from.split(',').filter(|s| !s.is_empty()).collect();
        let reply = self
            .host
            .transport()
            .await_reply(cid, &kind, &from, Duration::from_millis(ms))
            .await?;
        Response::json(
            200,
            &json!({ "cid": reply.cid, "kind": reply.kind,
            "body": String::from_utf8_lossy(&reply.body) }),
        )
    }

    async fn echo(&self, request: &Request) -> Result<Response, Error> {
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: request.body.clone(),
        })
    }
}

milagro_plugin_api::export_plugin!(Probe);
