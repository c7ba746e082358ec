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

//! What the HTTP server hands a plugin route's request to: a [`Handler`],
//! in the SDK's plain types. The plugins implement it in `plugins.rs` (the
//! adapter that speaks the plugin ABI), so the server never sees ABI types.

use futures::future::BoxFuture;
use milagro_plugin_api::{Request, Response};

/// A plugin instance answering requests to its routes.
pub trait Handler: Send + Sync {
    /// Its instance name, for logs and errors.
    fn name(&self) -> &str;
    /// Answers one request. `Err` is a failure of the handler itself (a
    /// panic that escaped): the reason, for the log.
    fn handle(&self, request: Request) -> BoxFuture<'static, Result<Response, String>>;
}
