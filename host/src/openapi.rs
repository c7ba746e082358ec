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

//! The OpenAPI 3 document: the host's core routes plus every route of every
//! mounted plugin, each described by the plugin that serves it.
//!
//! Plugins hand their operation objects across the ABI as JSON, so the host
//! assembles the document as JSON too rather than through a typed model.

use serde_json::{Map, Value, json};

use milagro_plugin_api::mount::{self, HOST_ROUTES};

use crate::{
    plugins::LoadedPlugin,
    router::{Access, full_path, plugin_access},
};

/// The OpenAPI extension naming who may call an operation: `operator`
/// (the bearer token) or `public` (anyone).
pub const ACCESS_EXTENSION: &str = "x-milagro-access";

#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin:?} refused: its description of {method} {path} is not a JSON object")]
pub struct OpenApiError {
    plugin: String,
    method: String,
    path: String,
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn core_paths() -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert(
        "/v1/status".into(),
        json!({"get": {
        "operationId": "status", "summary": "Node status", "tags": ["core"],
        "responses": {"200": {"description": "Version, node name, uptime and loaded plugins",
            "content": {"application/json": {"schema": {"type": "object",
                "required": ["version", "node", "uptime_seconds", "plugins"],
                "properties": {
                    "version": {"type": "string"}, "node": {"type": "string"},
                    "uptime_seconds": {"type": "integer"},
                    "plugins": {"type": "array", "items": {"type": "string"}}}}}}}}}}),
    );
    paths.insert(
        "/v1/plugins".into(),
        json!({"get": {
        "operationId": "plugins", "summary": "Loaded plugins and their routes", "tags": ["core"],
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "One entry per loaded plugin instance",
            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object",
                "required": ["name", "plugin", "version", "mount", "sha256", "routes"],
                "properties": {
                    "name": {"type": "string"}, "plugin": {"type": "string"},
                    "version": {"type": "string"}, "mount": {"type": "string"},
                    "sha256": {"type": "string"},
                    "consumes": {"type": "array", "items": {"type": "string"}},
                    "routes": {"type": "array", "items": {"type": "object", "properties": {
                        "method": {"type": "string"}, "path": {"type": "string"}}}}}}}}}},
            "401": error_response("Missing or wrong operator token")}}}),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({"get": {
        "operationId": "openapi", "summary": "This document", "tags": ["core"],
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "OpenAPI 3 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": error_response("Missing or wrong operator token")}}}),
    );
    let identity = json!({"type": "object",
        "required": ["id", "version", "name", "created_ms", "signing_key", "ecdh_key", "kem_key", "endpoints"],
        "properties": {
            "id": {"type": "string"}, "version": {"type": "integer"}, "name": {"type": "string"},
            "created_ms": {"type": "integer"}, "signing_key": {"type": "string"},
            "ecdh_key": {"type": "string"}, "kem_key": {"type": "string"},
            "beneficiary_key": {"type": "string", "nullable": true},
            "previous": {"type": "string", "nullable": true},
            "endpoints": {"type": "object", "properties": {
                "http": {"type": "array", "items": {"type": "string"}},
                "peer_id": {"type": "string", "nullable": true},
                "multiaddrs": {"type": "array", "items": {"type": "string"}}}}}});
    paths.insert(
        "/v1/identity".into(),
        json!({"get": {
        "operationId": "identity", "summary": "This node's identity document", "tags": ["core"],
        "responses": {"200": {"description": "The document; its id is the node ID",
            "content": {"application/json": {"schema": identity.clone()}}}}}}),
    );
    let mut identity_lookup = identity;
    identity_lookup["properties"]["chain"] = json!({"type": "object",
        "description": "What this node knows of the ID's chain: the newest ID its rotation announcements named, and the revocation of its key",
        "properties": {
            "newest": {"type": "string", "nullable": true},
            "revoked": {"type": "object", "nullable": true, "properties": {
                "by": {"type": "string"}, "time_ms": {"type": "integer"}}}}});
    paths.insert("/v1/identity/{cid}".into(), json!({"get": {
        "operationId": "identity_lookup", "summary": "Resolve and verify a node's identity by its ID",
        "tags": ["core"],
        "parameters": [{"name": "cid", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The verified document",
                              "content": {"application/json": {"schema": identity_lookup}}},
                      "400": error_response("Not a CID"),
                      "404": error_response("Not found on IPFS"),
                      "422": error_response("The document does not verify"),
                      "503": error_response("IPFS unavailable")}}}));
    paths.insert("/v1/inbox".into(), json!({"post": {
        "operationId": "inbox", "summary": "Deliver an envelope block to this node", "tags": ["core"],
        "parameters": [{"name": "milagro-cid", "in": "header", "required": false,
                        "description": "The block's CID, checked against its bytes",
                        "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {"application/octet-stream":
            {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {"202": {"description": "Persisted (or already seen); processing follows",
            "content": {"application/json": {"schema": {"type": "object",
                "properties": {"cid": {"type": "string"},
                               "status": {"type": "string", "enum": ["accepted", "duplicate"]}}}}}},
            "400": error_response("Malformed request"),
            "401": error_response("No client certificate from a CA in [http] inbox_client_ca"),
            "409": error_response("Replayed message id"),
            "413": error_response("Too large"),
            "422": error_response("Refused: hash, version, signature, sender, recipient or time")}}}));
    paths.insert("/v1/audit/{cid}".into(), json!({"get": {
        "operationId": "audit", "summary": "Walk and verify an envelope chain", "tags": ["core"],
        "security": [{"bearer": []}],
        "parameters": [{"name": "cid", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The chain, newest first, and the first break if any",
            "content": {"application/json": {"schema": {"type": "object",
                "required": ["ok", "envelopes"],
                "properties": {"ok": {"type": "boolean"},
                    "envelopes": {"type": "array", "items": {"type": "object"}},
                    "broken": {"type": "object", "properties": {
                        "cid": {"type": "string"}, "reason": {"type": "string"}}}}}}}},
            "400": error_response("Not a CID"),
            "401": error_response("Missing or wrong operator token")}}}));
    paths.insert("/v1/backup".into(), json!({"get": {
        "operationId": "backup", "summary": "Stream a consistent snapshot of this node (milagro backup)",
        "description": "The plaintext of a backup archive (docs/backup.md): the manifest, the database read in one transaction, the file keystore and the IPFS peer key. `milagro backup` encrypts it as it arrives.",
        "tags": ["core"],
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "The archive's members, streamed",
            "headers": {"milagro-node-id": {"description": "The node backed up", "schema": {"type": "string"}}},
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "401": error_response("Missing or wrong operator token"),
            "409": error_response("A backup of this node is already being taken"),
            "500": error_response("The snapshot could not be taken")}}}));
    paths.insert(
        "/metrics".into(),
        json!({"get": {
        "operationId": "metrics", "summary": "Prometheus metrics", "tags": ["core"],
        "responses": {"200": {"description": "Prometheus text exposition",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}}}}),
    );
    paths
}

/// Builds the document for this node's routes.
/// Marks each core operation with its access mode, from the one table of
/// the host's routes (`HOST_ROUTES`): operator routes declare the bearer
/// scheme, open ones `security: []`. A host route without its operation
/// here, or a documented core path that is not a host route, is a bug
/// (`core_paths_are_the_host_routes`).
fn mark_core_access(paths: &mut Map<String, Value>) {
    for route in HOST_ROUTES {
        let Some(Value::Object(op)) = paths
            .get_mut(route.path)
            .and_then(|item| item.get_mut(route.method.to_ascii_lowercase()))
        else {
            continue;
        };
        let access = match route.access {
            mount::Access::Operator => {
                op.insert("security".into(), json!([{"bearer": []}]));
                Access::Operator
            }
            mount::Access::Open => {
                op.insert("security".into(), json!([]));
                Access::Open
            }
        };
        op.insert(ACCESS_EXTENSION.into(), access.as_str().into());
    }
}

pub fn document(version: &str, plugins: &[LoadedPlugin]) -> Result<Value, OpenApiError> {
    let mut paths = core_paths();
    mark_core_access(&mut paths);
    for plugin in plugins {
        for route in &plugin.routes {
            let path = full_path(&plugin.mount, &route.path);
            let method = route.method.to_ascii_lowercase();
            let Ok(Value::Object(mut op)) = serde_json::from_str::<Value>(&route.openapi) else {
                return Err(OpenApiError {
                    plugin: plugin.name.clone(),
                    method: route.method.to_string(),
                    path,
                });
            };
            // Operation ids must be unique across the document.
            op.insert(
                "operationId".into(),
                format!("{}.{}", plugin.name, route.operation).into(),
            );
            op.insert("tags".into(), json!([plugin.name]));
            let access = plugin_access(route);
            op.insert(ACCESS_EXTENSION.into(), access.as_str().into());
            if let Some(Value::Object(responses)) = op.get_mut("responses") {
                if route.public {
                    responses.entry("429").or_insert_with(|| {
                        error_response(
                            "Too many requests from this client address (see Retry-After)",
                        )
                    });
                } else {
                    responses
                        .entry("401")
                        .or_insert_with(|| error_response("Missing or wrong operator token"));
                }
                responses
                    .entry("default")
                    .or_insert_with(|| error_response("Error"));
            }
            let security = match access {
                Access::Operator => json!([{"bearer": []}]),
                Access::Open | Access::Public => json!([]),
            };
            op.insert("security".into(), security);
            let item = paths
                .entry(path)
                .or_insert_with(|| Value::Object(Map::new()));
            item[method] = Value::Object(op);
        }
    }
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Milagro Server",
            "version": version,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_paths_are_the_host_routes() {
        let doc = document("0", &[]).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = 0;
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                let route = HOST_ROUTES
                    .iter()
                    .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
                    .unwrap_or_else(|| {
                        panic!("{method} {path} is documented but not a host route")
                    });
                let access = match route.access {
                    mount::Access::Open => Access::Open,
                    mount::Access::Operator => Access::Operator,
                };
                assert_eq!(
                    item[method][ACCESS_EXTENSION],
                    access.as_str(),
                    "{method} {path}"
                );
                documented += 1;
            }
        }
        assert_eq!(
            documented,
            HOST_ROUTES.len(),
            "every host route is documented"
        );
    }
}
