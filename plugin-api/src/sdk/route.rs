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

//! Route declarations: method, path template, operation id and the OpenAPI
//! description the host publishes at `/openapi.json`.

use serde_json::{Map, Value, json};

use super::Page;
use crate::abi::{RouteAccess, RouteSpec};

/// One route of a plugin, relative to its mount point.
///
/// ```
/// use milagro_plugin_api::Route;
/// let route = Route::get("/orders/{reference}", "get_order")
///     .summary("One order")
///     .response(200, "The order", None)
///     .response(404, "No such order", None);
/// ```
#[derive(Debug, Clone)]
pub struct Route {
    method: &'static str,
    path: String,
    operation: String,
    doc: Map<String, Value>,
    parameters: Vec<Value>,
    responses: Map<String, Value>,
    public: bool,
}

impl Route {
    /// A route of any method (upper-case) at `path` (relative to the mount
    /// point, `{name}` segments captured as path parameters), dispatched to
    /// the handler as `operation`.
    pub fn new(
        method: &'static str,
        path: impl Into<String>,
        operation: impl Into<String>,
    ) -> Route {
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
            doc: Map::new(),
            parameters,
            responses: Map::new(),
            public: false,
        }
    }

    /// A `GET` route; see [`Route::new`].
    pub fn get(path: impl Into<String>, operation: impl Into<String>) -> Route {
        Route::new("GET", path, operation)
    }

    /// A `POST` route; see [`Route::new`].
    pub fn post(path: impl Into<String>, operation: impl Into<String>) -> Route {
        Route::new("POST", path, operation)
    }

    /// A `PUT` route; see [`Route::new`].
    pub fn put(path: impl Into<String>, operation: impl Into<String>) -> Route {
        Route::new("PUT", path, operation)
    }

    /// A `DELETE` route; see [`Route::new`].
    pub fn delete(path: impl Into<String>, operation: impl Into<String>) -> Route {
        Route::new("DELETE", path, operation)
    }

    /// Opens the route to callers without the operator's token (end users,
    /// e.g. a login). The host still limits body size and handler time,
    /// counts it in its metrics, and rate-limits each client address
    /// (`[http.rate_limit]` in host.toml, 429 with `Retry-After`). Every
    /// other route needs the operator's token.
    pub fn public(mut self) -> Route {
        self.public = true;
        self
    }

    /// Whether [`Route::public`] opened this route.
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// The one-line OpenAPI summary.
    pub fn summary(mut self, summary: &str) -> Route {
        self.doc.insert("summary".into(), summary.into());
        self
    }

    /// A longer OpenAPI description.
    pub fn description(mut self, description: &str) -> Route {
        self.doc.insert("description".into(), description.into());
        self
    }

    /// Documents an optional query parameter.
    pub fn query(mut self, name: &str, description: &str, schema: Value) -> Route {
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
    pub fn paged(self) -> Route {
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
    pub fn json_body(mut self, schema: Value) -> Route {
        self.doc.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    /// Documents a response; `schema` is the JSON schema of its JSON body.
    pub fn response(mut self, status: u16, description: &str, schema: Option<Value>) -> Route {
        let mut response = json!({ "description": description });
        if let Some(schema) = schema {
            response["content"] = json!({"application/json": {"schema": schema}});
        }
        self.responses.insert(status.to_string(), response);
        self
    }

    pub(crate) fn into_spec(self) -> RouteSpec {
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
        RouteSpec {
            method: self.method.into(),
            path: self.path.into(),
            operation: self.operation.into(),
            openapi: Value::Object(op).to_string().into(),
            access: if self.public {
                RouteAccess::Public
            } else {
                RouteAccess::Operator
            },
        }
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

    #[test]
    fn spec_carries_path_params_and_operation_id() {
        let spec = Route::get("/orders/{reference}/shares/{n}", "share")
            .summary("A share")
            .into_spec();
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
        let spec = Route::get("/notes", "list_notes").paged().into_spec();
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
        let route = Route::post("/login", "login").public();
        assert!(route.is_public());
        assert_eq!(route.into_spec().access, RouteAccess::Public);
    }
}
