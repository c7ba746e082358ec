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

//! The route table: the host's core routes and every plugin route under its
//! mount point, matched by path then by method.

use hyper::Method;
use milagro_plugin_api::mount::{self, HOST_ROUTES};
use milagro_plugin_api::routing::RouteTable;

use crate::plugins::{LoadedPlugin, PluginRoute};

/// What a matched route dispatches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Status,
    Plugins,
    OpenApi,
    Metrics,
    Identity,
    IdentityLookup,
    Inbox,
    Audit,
    Backup,
    Plugin { index: usize, operation: String },
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Needs the operator's bearer token.
    Operator,
    /// A core route open to anyone (status, identity, inbox, metrics).
    Open,
    /// A plugin route its plugin declared public (end users): no token,
    /// rate-limited per client address.
    Public,
}

impl Access {
    /// The value of the `x-milagro-access` extension in `/openapi.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Operator => "operator",
            Access::Open | Access::Public => "public",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub target: Target,
    pub access: Access,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("plugin {plugin:?} refused: route {method} {path}: {reason}")]
    Invalid {
        plugin: String,
        method: String,
        path: String,
        reason: String,
    },
}

pub struct Router {
    table: RouteTable<Endpoint>,
}

/// The outcome of matching a request.
pub type Match<'a> = milagro_plugin_api::routing::Match<'a, Endpoint>;

impl Router {
    pub fn build(plugins: &[LoadedPlugin]) -> Result<Router, RouteError> {
        let mut router = Router {
            table: RouteTable::default(),
        };
        for core in HOST_ROUTES {
            let access = match core.access {
                mount::Access::Open => Access::Open,
                mount::Access::Operator => Access::Operator,
            };
            let endpoint = Endpoint {
                target: core_target(core.path),
                access,
            };
            router
                .table
                .add(core.method, core.path, endpoint)
                .expect("core routes are valid and distinct");
        }
        for (index, plugin) in plugins.iter().enumerate() {
            for route in &plugin.routes {
                let method = route.method.as_str();
                let path = full_path(&plugin.mount, &route.path);
                let invalid = |reason: String| RouteError::Invalid {
                    plugin: plugin.name.clone(),
                    method: method.into(),
                    path: path.clone(),
                    reason,
                };
                if Method::from_bytes(method.as_bytes()).is_err()
                    || !method.bytes().all(|b| b.is_ascii_uppercase())
                {
                    return Err(invalid(
                        "the method is not an upper-case HTTP method".into(),
                    ));
                }
                if !route.path.is_empty() && !route.path.starts_with('/') {
                    return Err(invalid("the path must start with '/'".into()));
                }
                let endpoint = Endpoint {
                    target: Target::Plugin {
                        index,
                        operation: route.operation.clone(),
                    },
                    access: plugin_access(route),
                };
                router.table.add(method, &path, endpoint).map_err(invalid)?;
            }
        }
        Ok(router)
    }

    pub fn find(&self, method: &Method, path: &str) -> Match<'_> {
        self.table.find(method.as_str(), path)
    }
}

/// The host's access mode of a plugin route.
pub fn plugin_access(route: &PluginRoute) -> Access {
    if route.public {
        Access::Public
    } else {
        Access::Operator
    }
}

/// What serves each of the host's own routes ([`HOST_ROUTES`]).
fn core_target(path: &str) -> Target {
    match path {
        "/v1/status" => Target::Status,
        "/v1/plugins" => Target::Plugins,
        "/openapi.json" => Target::OpenApi,
        "/metrics" => Target::Metrics,
        "/v1/identity" => Target::Identity,
        "/v1/identity/{cid}" => Target::IdentityLookup,
        "/v1/inbox" => Target::Inbox,
        "/v1/audit/{cid}" => Target::Audit,
        "/v1/backup" => Target::Backup,
        other => unreachable!("host route {other} has no target"),
    }
}

/// A plugin route's path as served: mount point plus the route's path.
pub fn full_path(mount: &str, path: &str) -> String {
    format!("{mount}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_routes_match_and_unknown_paths_do_not() {
        let router = Router::build(&[]).unwrap();
        assert!(matches!(
            router.find(&Method::GET, "/v1/status"),
            Match::Found {
                target: Endpoint {
                    target: Target::Status,
                    access: Access::Open
                },
                ..
            }
        ));
        assert!(matches!(
            router.find(&Method::GET, "/v1/nope"),
            Match::NotFound
        ));
        match router.find(&Method::POST, "/v1/status") {
            Match::MethodNotAllowed { allow, .. } => assert_eq!(allow, "GET"),
            _ => panic!("expected 405"),
        }
    }
}
