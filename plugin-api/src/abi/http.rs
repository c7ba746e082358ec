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

//! HTTP requests and responses as they cross the boundary.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec, Tuple2},
};

/// A request routed by the host to one of the plugin's declared operations.
///
/// The host has already matched the path, checked the operator token and
/// enforced the body size limit.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AbiRequest {
    /// The operation id the plugin declared for the matched route.
    pub operation: RString,
    /// The upper-case HTTP method.
    pub method: RString,
    /// The request path as received, including the plugin's mount point.
    pub path: RString,
    /// Path parameters captured by the route template (`{name}` segments).
    pub params: RVec<Tuple2<RString, RString>>,
    /// The raw query string, without the leading `?`.
    pub query: RString,
    /// Request headers, lower-case names.
    pub headers: RVec<Tuple2<RString, RString>>,
    /// The request body (within the host's size limit).
    pub body: RVec<u8>,
}

/// A plugin's answer to an [`AbiRequest`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AbiResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Response headers to send (name, value).
    pub headers: RVec<Tuple2<RString, RString>>,
    /// The response body.
    pub body: RVec<u8>,
}
