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

//! Where the inbox hands each envelope: the [`Consumer`] of its kind. The
//! inbox knows consumers only through this trait (the plugins implement it
//! in `plugins.rs`, the adapter that speaks the plugin ABI), and takes them
//! as an argument of each processing call, so it is built before the
//! plugins and never holds them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use milagro_proto::{Cid, VerifiedEnvelope};
use zeroize::Zeroizing;

/// A verified envelope, its sealed body opened for this node.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub cid: Cid,
    pub kind: String,
    pub sender: Cid,
    pub time_unix_ms: u64,
    pub links: Vec<Cid>,
    pub body: Vec<u8>,
    /// The sealed part, decrypted; `None` if the envelope had none.
    pub sealed: Option<Zeroizing<Vec<u8>>>,
}

impl Delivered {
    pub(super) fn new(cid: &Cid, verified: &VerifiedEnvelope, sealed: Option<&[u8]>) -> Self {
        Delivered {
            cid: *cid,
            kind: verified.kind().to_string(),
            sender: *verified.sender(),
            time_unix_ms: verified.time_ms(),
            links: verified.links().to_vec(),
            body: verified.body().unwrap_or_default().to_vec(),
            sealed: sealed.map(|s| Zeroizing::new(s.to_vec())),
        }
    }
}

/// Something that takes envelopes of given kinds: a plugin instance.
pub trait Consumer: Send + Sync {
    /// Its name, for logs and refusals.
    fn name(&self) -> &str;
    /// The kinds it consumes.
    fn consumes(&self) -> Vec<String>;
    /// Reply kinds it only waits for (`await_reply`): handled once indexed.
    fn awaits(&self) -> Vec<String>;
    /// Handles one envelope; `Err` is the reason it was not processed.
    fn consume(&self, envelope: Delivered) -> BoxFuture<'static, Result<(), String>>;
}

/// Every consumer of a node, by kind.
pub struct Consumers {
    consumers: Vec<Arc<dyn Consumer>>,
    by_kind: HashMap<String, usize>,
    awaited: HashSet<String>,
}

impl Consumers {
    /// The consumers; refused if two consume one kind.
    pub fn new(consumers: Vec<Arc<dyn Consumer>>) -> Result<Self, String> {
        let mut by_kind = HashMap::new();
        for (index, consumer) in consumers.iter().enumerate() {
            for kind in consumer.consumes() {
                if let Some(other) = by_kind.insert(kind.clone(), index) {
                    return Err(format!(
                        "plugins {:?} and {:?} both consume envelopes of kind {kind}",
                        consumers[other].name(),
                        consumer.name()
                    ));
                }
            }
        }
        let awaited = consumers.iter().flat_map(|c| c.awaits()).collect();
        Ok(Consumers {
            consumers,
            by_kind,
            awaited,
        })
    }

    /// The consumer of `kind`, if any.
    pub fn of(&self, kind: &str) -> Option<&Arc<dyn Consumer>> {
        self.by_kind.get(kind).map(|&i| &self.consumers[i])
    }

    /// Whether some consumer only awaits replies of `kind`.
    pub fn awaits(&self, kind: &str) -> bool {
        self.awaited.contains(kind)
    }
}
