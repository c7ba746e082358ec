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
//! host does not provide. It is a second, separate library exporting the same
//! root-module type as the example plugin.

use std::time::Duration;

use milagro_plugin_api::{Error, Host, Plugin, Request, Response, Route};
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
}

pub struct Probe {
    label: String,
    host: Host,
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
            host,
        })
    }

    fn routes(&self) -> Vec<Route> {
        vec![
            Route::get("/whoami", "whoami").summary("This instance's label"),
            Route::get("/panic", "panic").summary("Panics inside the handler"),
            Route::get("/sleep/{ms}", "sleep").summary("Answers after a delay on the host's timer"),
            Route::get("/ipfs", "ipfs").summary("Calls the IPFS facility"),
            Route::post("/echo", "echo").summary("Returns the request body"),
        ]
    }

    async fn handle(&self, request: Request) -> Result<Response, Error> {
        match request.operation.as_str() {
            "whoami" => Response::json(200, &json!({ "label": self.label })),
            "panic" => panic!("probe handler panicked on purpose"),
            "sleep" => {
                let ms: u64 = request
                    .param("ms")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Error::bad_request("ms must be an integer"))?;
                self.host.sleep(Duration::from_millis(ms)).await;
                Response::json(200, &json!({ "slept_ms": ms }))
            }
            "ipfs" => {
                let cid = self.host.ipfs().put(0x55, b"probe".to_vec()).await?;
                Response::json(200, &json!({ "cid": cid }))
            }
            "echo" => Ok(Response {
                status: 200,
                headers: vec![("content-type".into(), "application/octet-stream".into())],
                body: request.body,
            }),
            other => Err(Error::not_found(format!("no operation {other}"))),
        }
    }
}

milagro_plugin_api::export_plugin!(Probe);
