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

//! Route declarations: method, path template, operation id, the handler
//! that answers it and the OpenAPI description the host publishes at
//! `/openapi.json`, in one value (so an operation id is written once and a
//! route cannot exist without its handler).

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    pin::Pin,
};

use serde_json::{Map, Value, json};

use super::{Error, Page, Request, Response};
use crate::abi::{RouteAccess, RouteSpec};

/// The future a [`Handler`] returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + 'a>>;

/// What answers a route: usually a method of the plugin, written
/// `|plugin, request| Box::pin(plugin.get_order(request))`.
pub type Handler<P> = for<'a> fn(&'a P, &'a Request) -> HandlerFuture<'a>;

/// One route of a plugin `P`, relative to its mount point.
///
/// ```
/// use milagro_plugin_api::{Error, Request, Response, Route};
/// struct Orders;
/// impl Orders {
///     async fn get_order(&self, request: &Request) -> Result<Response, Error> {
///         Response::json(200, &request.param("reference"))
///     }
/// }
/// let route: Route<Orders> = Route::get("/orders/{reference}", "get_order", |p: &Orders, r| {
///     Box::pin(p.get_order(r))
/// })
/// .summary("One order")
/// .response(200, "The order", None)
/// .response(404, "No such order", None);
/// ```
pub struct Route<P> {
    method: &'static str,
    path: String,
    operation: String,
    handler: Handler<P>,
    doc: Map<String, Value>,
    parameters: Vec<Value>,
    responses: Map<String, Value>,
    public: bool,
}

impl<P> fmt::Debug for Route<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation", &self.operation)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl<P> Route<P> {
    /// A route of any method (upper-case) at `path` (relative to the mount
    /// point, `{name}` segments captured as path parameters), named
    /// `operation` in the OpenAPI document and answered by `handler`.
    pub fn new(
        method: &'static str,
        path: impl Into<String>,
        operation: impl Into<String>,
        handler: Handler<P>,
    ) -> Route<P> {
        let path = path.into();
        let parameters = path_params(&path)
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        Route {
            method,
            path,
            operation: operation.into(),
            handler,
            doc: Map::new(),
            parameters,
            responses: Map::new(),
            public: false,
        }
    }

    /// A `GET` route; see [`Route::new`].
    pub fn get(
        path: impl Into<String>,
        operation: impl Into<String>,
        handler: Handler<P>,
    ) -> Route<P> {
        Route::new("GET", path, operation, handler)
    }

    /// A `POST` route; see [`Route::new`].
    pub fn post(
        path: impl Into<String>,
        operation: impl Into<String>,
        handler: Handler<P>,
    ) -> Route<P> {
        Route::new("POST", path, operation, handler)
    }

    /// A `PUT` route; see [`Route::new`].
    pub fn put(
        path: impl Into<String>,
        operation: impl Into<String>,
        handler: Handler<P>,
    ) -> Route<P> {
        Route::new("PUT", path, operation, handler)
    }

    /// A `DELETE` route; see [`Route::new`].
    pub fn delete(
        path: impl Into<String>,
        operation: impl Into<String>,
        handler: Handler<P>,
    ) -> Route<P> {
        Route::new("DELETE", path, operation, handler)
    }

    /// Opens the route to callers without the operator's token (end users,
    /// e.g. a login). The host still limits body size and handler time,
    /// counts it in its metrics, and rate-limits each client address
    /// (`[http.rate_limit]` in host.toml, 429 with `Retry-After`). Every
    /// other route needs the operator's token.
    pub fn public(mut self) -> Route<P> {
        self.public = true;
        self
    }

    /// Whether [`Route::public`] opened this route.
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// The one-line OpenAPI summary.
    pub fn summary(mut self, summary: &str) -> Route<P> {
        self.doc.insert("summary".into(), summary.into());
        self
    }

    /// A longer OpenAPI description.
    pub fn description(mut self, description: &str) -> Route<P> {
        self.doc.insert("description".into(), description.into());
        self
    }

    /// Documents an optional query parameter.
    pub fn query(mut self, name: &str, description: &str, schema: Value) -> Route<P> {
        self.parameters.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": schema,
        }));
        self
    }

    /// Documents a listing served by [`crate::Store::page`]: its `limit`
    /// (1 to [`Page::MAX_LIMIT`], default [`Page::DEFAULT_LIMIT`]) and
    /// `cursor` query parameters, and the 400 a bad `limit` gets. The 200
    /// (with its `next_cursor`) is the route's own to document.
    pub fn paged(self) -> Route<P> {
        self.query(
            "limit",
            &format!(
                "Page size (1-{}, default {})",
                Page::MAX_LIMIT,
                Page::DEFAULT_LIMIT
            ),
            json!({"type": "integer", "minimum": 1, "maximum": Page::MAX_LIMIT}),
        )
        .query(
            "cursor",
            "next_cursor of the previous page",
            json!({"type": "string"}),
        )
        .response(400, "Bad paging parameters", None)
    }

    /// Documents a JSON request body with its JSON schema.
    pub fn json_body(mut self, schema: Value) -> Route<P> {
        self.doc.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    /// Documents a response; `schema` is the JSON schema of its JSON body.
    pub fn response(mut self, status: u16, description: &str, schema: Option<Value>) -> Route<P> {
        let mut response = json!({ "description": description });
        if let Some(schema) = schema {
            response["content"] = json!({"application/json": {"schema": schema}});
        }
        self.responses.insert(status.to_string(), response);
        self
    }

    /// The operation id.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The handler, to call it without the host (a benchmark, a unit test).
    pub fn handler(&self) -> Handler<P> {
        self.handler
    }

    /// Splits the route into the spec the host routes by and its handler.
    fn into_parts(self) -> (RouteSpec, Handler<P>) {
        let handler = self.handler;
        let mut op = self.doc;
        op.insert("operationId".into(), self.operation.clone().into());
        if !self.parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(self.parameters));
        }
        let mut responses = self.responses;
        if responses.is_empty() {
            responses.insert("200".into(), json!({"description": "Success"}));
        }
        op.insert("responses".into(), Value::Object(responses));
        let spec = RouteSpec {
            method: self.method.into(),
            path: self.path.into(),
            operation: self.operation.into(),
            openapi: Value::Object(op).to_string().into(),
            access: if self.public {
                RouteAccess::Public
            } else {
                RouteAccess::Operator
            },
        };
        (spec, handler)
    }
}

/// A plugin's routes, checked: the specs the host routes by, and each
/// operation's handler.
pub(crate) struct RouteHandlers<P> {
    pub(crate) specs: Vec<RouteSpec>,
    handlers: HashMap<String, Handler<P>>,
}

impl<P> RouteHandlers<P> {
    /// Checks `routes` as the host will route them: each operation id once
    /// (the host dispatches by it) and each method and path once (a second
    /// route would never be reached). A plugin failing this does not load.
    pub(crate) fn new(plugin: &str, routes: Vec<Route<P>>) -> Result<RouteHandlers<P>, Error> {
        let mut seen = HashSet::new();
        let mut specs = Vec::with_capacity(routes.len());
        let mut handlers = HashMap::with_capacity(routes.len());
        for route in routes {
            if !seen.insert((route.method, route.path.clone())) {
                return Err(Error::internal(format!(
                    "plugin {plugin} declares {} {} twice",
                    route.method, route.path
                )));
            }
            let (spec, handler) = route.into_parts();
            let operation = spec.operation.to_string();
            if handlers.insert(operation.clone(), handler).is_some() {
                return Err(Error::internal(format!(
                    "plugin {plugin} declares operation {operation} twice"
                )));
            }
            specs.push(spec);
        }
        Ok(RouteHandlers { specs, handlers })
    }

    /// The handler of `operation`.
    pub(crate) fn handler(&self, operation: &str) -> Option<Handler<P>> {
        self.handlers.get(operation).copied()
    }
}

/// The `{name}` segments of a path template.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plugin;

    fn ok<'a>(_: &'a Plugin, _: &'a Request) -> HandlerFuture<'a> {
        Box::pin(async { Response::json(200, &"ok") })
    }

    fn spec(route: Route<Plugin>) -> RouteSpec {
        route.into_parts().0
    }

    #[test]
    fn spec_carries_path_params_and_operation_id() {
        let spec =
            spec(Route::get("/orders/{reference}/shares/{n}", "share", ok).summary("A share"));
        let op: Value = serde_json::from_str(spec.openapi.as_str()).unwrap();
        assert_eq!(op["operationId"], "share");
        assert_eq!(op["parameters"][0]["name"], "reference");
        assert_eq!(op["parameters"][1]["name"], "n");
        assert_eq!(op["responses"]["200"]["description"], "Success");
        assert_eq!(spec.method.as_str(), "GET");
        assert_eq!(spec.access, RouteAccess::Operator);
    }

    #[test]
    fn paged_routes_document_what_the_store_enforces() {
        let spec = spec(Route::get("/notes", "list_notes", ok).paged());
        let op: Value = serde_json::from_str(spec.openapi.as_str()).unwrap();
        let limit = &op["parameters"][0];
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], Page::MAX_LIMIT);
        assert_eq!(limit["description"], "Page size (1-1000, default 100)");
        assert_eq!(op["parameters"][1]["name"], "cursor");
        assert_eq!(
            op["responses"]["400"]["description"],
            "Bad paging parameters"
        );
    }

    #[test]
    fn public_routes_say_so_in_their_spec() {
        let route = Route::post("/login", "login", ok).public();
        assert!(route.is_public());
        assert_eq!(spec(route).access, RouteAccess::Public);
    }

    #[test]
    fn a_table_refuses_an_operation_or_a_route_declared_twice() {
        let table = RouteHandlers::new(
            "p",
            vec![Route::get("/a", "a", ok), Route::post("/a", "b", ok)],
        )
        .unwrap();
        assert!(table.handler("a").is_some() && table.handler("b").is_some());
        assert!(table.handler("c").is_none());
        assert_eq!(table.specs.len(), 2);

        let twice = RouteHandlers::new(
            "p",
            vec![Route::get("/a", "a", ok), Route::get("/b", "a", ok)],
        );
        assert_eq!(
            twice.err().unwrap().message,
            "plugin p declares operation a twice"
        );
        let twice = RouteHandlers::new(
            "p",
            vec![Route::get("/a", "a", ok), Route::get("/a", "b", ok)],
        );
        assert_eq!(
            twice.err().unwrap().message,
            "plugin p declares GET /a twice"
        );
    }
}
