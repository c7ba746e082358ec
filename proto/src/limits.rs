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

//! Size limits a receiver applies before and while decoding.
//!
//! The server fills these from its configuration; [`Limits::default`] gives
//! conservative values.

use crate::{Error, Result};

/// Receiver-side size limits. Sizes are checked before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest identity document block, in bytes.
    pub max_identity_bytes: usize,
    /// Largest envelope block, in bytes.
    pub max_envelope_bytes: usize,
    /// Most recipients in one envelope.
    pub max_recipients: usize,
    /// Most links to previous envelopes in one envelope.
    pub max_links: usize,
    /// Most endpoint hints (HTTP URLs + multiaddrs) in one identity document.
    pub max_endpoints: usize,
    /// Longest text field (name, kind, URL, peer ID, multiaddr), in bytes.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_identity_bytes: 16 * 1024,
            max_envelope_bytes: 4 * 1024 * 1024,
            max_recipients: 64,
            max_links: 64,
            max_endpoints: 32,
            max_text_bytes: 1024,
        }
    }
}

pub(crate) fn check(what: &'static str, actual: usize, limit: usize) -> Result<()> {
    if actual > limit {
        Err(Error::Oversize {
            what,
            limit,
            actual,
        })
    } else {
        Ok(())
    }
}
