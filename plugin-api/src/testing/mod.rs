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

//! An in-process host for plugin handler tests (feature `testing`).
//!
//! A [`TestNet`] is a network of nodes in one process. Each node runs one
//! plugin instance, built from its config JSON through the same ABI entry
//! points the `milagro` host calls (the plugin's constructor, `describe`,
//! `handle`, `on_envelope`), and gets:
//!
//! - a store: a redb database in the network's temporary directory, with
//!   the host's key order and scan rule ([`crate::kv`]);
//! - a keystore: real secp256k1 key pairs and secrets, in memory;
//! - an identity: a signed identity document (its CID is the node ID) with
//!   a signing key, an ECDH key and, if asked, a beneficiary key;
//! - a loopback transport: envelopes are sealed, verified and opened with
//!   the protocol's own code and handed to the recipient's plugin if it
//!   consumes their kind; `await_reply` waits resolve when the reply has
//!   been accepted. Identities resolve to the network's nodes.
//!
//! Requests are addressed by method and path relative to the mount point,
//! matched against the plugin's route templates as the host's router
//! matches them ([`crate::routing`]); a path no route serves answers 404,
//! a method not served 405. The caller acts as the operator. Everything is
//! bounded ([`TestNet::with_bound`], 5 s by default): a handler or an
//! envelope's processing that takes longer fails (504), and
//! [`TestNet::settle`] panics if the network does not become idle.
//!
//! The harness tests plugins, not the host: it has no HTTP server, access
//! control, rate limits, replay or clock-skew checks, identity rotation or
//! IPFS (that facility answers `unavailable`). The multi-process tests in
//! `tests/` cover those.
//!
//! Use it from plain `#[test]` functions (the network runs its own
//! runtime), with the plugin crate's dev-dependency
//! `milagro-plugin-api = { ..., features = ["testing"] }`:
//!
//! ```
//! use milagro_plugin_api::{Error, Host, Plugin, Request, Response, Route};
//! use milagro_plugin_api::testing::TestNet;
//! use serde_json::json;
//!
//! struct Counter { host: Host }
//!
//! impl Plugin for Counter {
//!     type Config = serde_json::Value;
//!     const NAME: &'static str = "counter";
//!     const VERSION: &'static str = "0.1.0";
//!
//!     fn new(_config: Self::Config, host: Host) -> Result<Self, Error> {
//!         Ok(Counter { host })
//!     }
//!     fn routes(&self) -> Vec<Route<Self>> {
//!         vec![Route::post("/counts/{name}", "count", |p: &Self, r| Box::pin(p.count(r)))
//!             .summary("Counts one more")]
//!     }
//! }
//!
//! impl Counter {
//!     async fn count(&self, request: &Request) -> Result<Response, Error> {
//!         let key = request.param("name").unwrap_or_default().as_bytes().to_vec();
//!         let count = self.host.store().get_json::<u64>(&key).await?.unwrap_or(0) + 1;
//!         self.host.store().put_json(&key, &count).await?;
//!         Response::json(200, &json!({ "count": count }))
//!     }
//! }
//!
//! let net = TestNet::new();
//! let counter = net.instance::<Counter>("counter", json!({})).unwrap();
//! counter.post("/counts/a", &json!({}));
//! let second = counter.post("/counts/a", &json!({}));
//! assert_eq!(second.status, 200);
//! assert_eq!(second.body["count"], 2);
//! assert_eq!(counter.get("/counts/a").status, 405);
//! ```

mod host;
mod keystore;
mod network;
mod store;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use abi_stable::{sabi_trait::TD_Opaque, std_types::RArc};
use serde_json::Value;
use tokio::runtime::Runtime;

pub use network::Processed;

use self::{
    host::TestHost,
    network::{Mounted, Net, Node},
};
use crate::{
    Error, ErrorCode, Identity, NewEnvelope, Plugin, Request, Response,
    abi::{AbiRequest, HostObj_TO, IdentityInfo, OutgoingEnvelope},
    mount,
    routing::{Match, RouteTable},
};

/// How long a handler, an envelope's processing or [`TestNet::settle`]
/// may take unless [`TestNet::with_bound`] says otherwise.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(5);

/// A network of in-process nodes, each running one plugin instance. Its
/// nodes' databases live in a temporary directory removed with it.
pub struct TestNet {
    net: Arc<Net>,
    runtime: Arc<Runtime>,
    dir: tempfile::TempDir,
    databases: AtomicUsize,
}

impl Default for TestNet {
    fn default() -> Self {
        TestNet::new()
    }
}

impl TestNet {
    /// An empty network, bounded by [`DEFAULT_BOUND`].
    ///
    /// # Panics
    ///
    /// If the temporary directory or the runtime cannot be made.
    pub fn new() -> TestNet {
        TestNet::with_bound(DEFAULT_BOUND)
    }

    /// An empty network whose handlers, envelope processing and settling
    /// may each take up to `bound`.
    ///
    /// # Panics
    ///
    /// If the temporary directory or the runtime cannot be made.
    pub fn with_bound(bound: Duration) -> TestNet {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("the test network's runtime");
        TestNet {
            net: Arc::new(Net::new(bound)),
            runtime: Arc::new(runtime),
            dir: tempfile::tempdir().expect("the test network's temporary directory"),
            databases: AtomicUsize::new(0),
        }
    }

    /// A node named `name` (its identity's display name), to configure
    /// before it runs a plugin.
    pub fn node(&self, name: &str) -> NodeBuilder<'_> {
        NodeBuilder {
            net: self,
            name: name.into(),
            beneficiary_key: false,
        }
    }

    /// A node named `name` running plugin `P` as instance `name`, built
    /// from `config` (the `config` table of its host.toml entry, as JSON).
    /// Fails with the plugin's own error if it refuses the config.
    pub fn instance<P: Plugin>(&self, name: &str, config: Value) -> Result<Instance, Error> {
        self.node(name).plugin::<P>(name, config)
    }

    /// Runs the network until no envelope is waiting to be processed.
    ///
    /// # Panics
    ///
    /// If it is still busy after the bound.
    pub fn settle(&self) {
        let net = Arc::clone(&self.net);
        let bound = net.bound;
        let settled = self.runtime.block_on(async move {
            tokio::time::timeout(bound, async {
                while !net.idle() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
        });
        assert!(
            settled.is_ok(),
            "the test network did not settle within {} ms",
            bound.as_millis()
        );
    }

    /// A new database file: numbered, as node names need not be file names.
    fn database_path(&self) -> PathBuf {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        self.dir.path().join(format!("node-{n}.redb"))
    }
}

/// A node of a [`TestNet`] being configured.
pub struct NodeBuilder<'a> {
    net: &'a TestNet,
    name: String,
    beneficiary_key: bool,
}

impl<'a> NodeBuilder<'a> {
    /// The node publishes a beneficiary key B in its identity document;
    /// its instance named `beneficiary` reads b (as `[identity]
    /// beneficiary = true` in host.toml).
    pub fn beneficiary_key(mut self) -> Self {
        self.beneficiary_key = true;
        self
    }

    /// Makes the node (keys, identity, database) without a plugin yet: its
    /// ID can then go into other plugins' configs before its own starts.
    pub fn create(self) -> Result<TestNode<'a>, Error> {
        let path = self.net.database_path();
        let node = Arc::new(Node::create(&self.name, self.beneficiary_key, &path)?);
        // Known to the network at once: its identity resolves from now on.
        self.net.net.add_node(Arc::clone(&node));
        Ok(TestNode {
            net: self.net,
            node,
        })
    }

    /// Makes the node and starts plugin `P` on it ([`TestNode::plugin`]).
    pub fn plugin<P: Plugin>(self, instance: &str, config: Value) -> Result<Instance, Error> {
        self.create()?.plugin::<P>(instance, config)
    }
}

/// A node of a [`TestNet`] that runs no plugin yet.
pub struct TestNode<'a> {
    net: &'a TestNet,
    node: Arc<Node>,
}

impl TestNode<'_> {
    /// The node ID (the CID of its identity document).
    pub fn id(&self) -> String {
        self.node.id().to_string()
    }

    /// Starts plugin `P` on the node as instance `instance`, built from
    /// `config` (the `config` table of its host.toml entry, as JSON).
    /// Fails with the plugin's own error if it refuses the config, or if
    /// its routes are invalid (as the host refuses them).
    pub fn plugin<P: Plugin>(self, instance: &str, config: Value) -> Result<Instance, Error> {
        if !mount::valid_instance_name(instance) {
            return Err(Error::bad_request(mount::invalid_name_reason(instance)));
        }
        let TestNet { net, runtime, .. } = self.net;
        let node = self.node;
        let host = TestHost::new(instance, Arc::clone(&node), net);
        let host = HostObj_TO::from_ptr(RArc::new(host), TD_Opaque);
        let _entered = runtime.enter();
        let module = crate::root_module::<P>();
        let plugin = (module.new())(config.to_string().into(), host).into_result()?;
        let descriptor = plugin.describe().into_result()?;
        let mut routes = RouteTable::default();
        for route in descriptor.routes.iter() {
            routes
                .add(&route.method, &route.path, route.operation.to_string())
                .map_err(|reason| {
                    Error::bad_request(format!(
                        "plugin {} refused: route {} {}: {reason}",
                        descriptor.name, route.method, route.path
                    ))
                })?;
        }
        let mounted = Arc::new(Mounted {
            plugin,
            descriptor,
            routes,
        });
        net.mount(node.id(), Arc::clone(&mounted));
        Ok(Instance {
            net: Arc::clone(net),
            runtime: Arc::clone(runtime),
            mount: format!("/v1/{instance}"),
            node,
            mounted,
        })
    }
}

/// A plugin instance on its node of a [`TestNet`]: send it requests, read
/// what its node received.
pub struct Instance {
    net: Arc<Net>,
    runtime: Arc<Runtime>,
    /// Where a host would mount it by default: what its requests' paths
    /// start with.
    mount: String,
    node: Arc<Node>,
    mounted: Arc<Mounted>,
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers the handler set.
    pub headers: Vec<(String, String)>,
    /// The body as JSON: `Null` if empty, a string if it is not JSON.
    pub body: Value,
}

impl From<Response> for TestResponse {
    fn from(r: Response) -> Self {
        let body = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()))
        };
        TestResponse {
            status: r.status,
            headers: r.headers,
            body,
        }
    }
}

impl Instance {
    /// The node ID (the CID of its identity document).
    pub fn id(&self) -> String {
        self.node.id().to_string()
    }

    /// The node's identity, as other plugins resolve it.
    pub fn identity(&self) -> Identity {
        Identity::from(IdentityInfo::from(&self.node.identity))
    }

    /// `GET path` (relative to the mount point; may end in `?query`).
    pub fn get(&self, path: &str) -> TestResponse {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.request("POST", path, Some(body.to_string().into_bytes()))
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> TestResponse {
        self.request("PUT", path, Some(body.to_string().into_bytes()))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> TestResponse {
        self.request("DELETE", path, None)
    }

    /// A request with any method and body, routed as the host routes it,
    /// and run (with the network) until the handler answers or the bound
    /// passes (504).
    pub fn request(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> TestResponse {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mount = &self.mount;
        let (operation, params) = match self.mounted.routes.find(method, path) {
            Match::Found { target, params, .. } => (target.clone(), params),
            Match::NotFound => {
                return Response::from(Error::not_found(format!("no route for {mount}{path}")))
                    .into();
            }
            Match::MethodNotAllowed { template, allow } => {
                let mut response = Response::from(Error::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed on {mount}{template}; allowed: {allow}"),
                ));
                response.headers.push(("allow".into(), allow));
                return response.into();
            }
        };
        let headers = match body {
            Some(_) => vec![("content-type".to_string(), "application/json".to_string())],
            None => Vec::new(),
        };
        let request = Request {
            operation,
            method: method.into(),
            path: format!("{mount}{path}"),
            params,
            query: query.into(),
            headers,
            body: body.unwrap_or_default(),
        };
        let handled = self.mounted.plugin.handle(AbiRequest::from(request));
        let bound = self.net.bound;
        match self
            .runtime
            .block_on(async move { tokio::time::timeout(bound, handled).await })
        {
            Ok(response) => Response::from(response).into(),
            Err(_) => Response::from(Error::timeout(format!(
                "the handler did not answer within {} ms",
                bound.as_millis()
            )))
            .into(),
        }
    }

    /// Sends an envelope as this node, outside its plugin (e.g. one its
    /// plugin would never send, to test a recipient's refusal); returns
    /// its CID.
    pub fn send(&self, envelope: NewEnvelope) -> Result<String, Error> {
        let outgoing = OutgoingEnvelope {
            kind: envelope.kind.into(),
            recipients: envelope.recipients.into_iter().map(Into::into).collect(),
            links: envelope.links.into_iter().map(Into::into).collect(),
            body: envelope.body.into(),
            sealed: envelope.sealed.as_slice().into(),
        };
        let _entered = self.runtime.enter();
        self.net.send(&self.node, outgoing)
    }

    /// What became of each envelope this node received, in processing order.
    pub fn processed(&self) -> Vec<Processed> {
        self.node.processed()
    }

    /// The lines its plugin logged (`Level message`), oldest first.
    pub fn log(&self) -> Vec<String> {
        self.node.log_lines()
    }
}
