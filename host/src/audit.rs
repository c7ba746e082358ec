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

//! Audit: walks an envelope chain by its links, verifying every block's
//! hash, every signature and every sender identity, and reports the first
//! break.

use std::collections::{HashSet, VecDeque};

use milagro_proto::{Cid, Envelope};
use serde::Serialize;

use crate::node::Node;

/// Most envelopes one audit walks.
pub const MAX_ENVELOPES: usize = 10_000;

#[derive(Debug, Serialize)]
pub struct AuditEntry {
    pub cid: String,
    pub kind: String,
    pub sender: String,
    pub sender_name: String,
    pub time_ms: u64,
    pub links: Vec<String>,
    pub recipients: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AuditBreak {
    pub cid: String,
    pub reason: String,
}

/// The chain from one envelope back through its links, newest first.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub envelopes: Vec<AuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<AuditBreak>,
}

/// Walks the chain from `start`; stops at the first block that does not
/// verify and reports it.
pub async fn audit(node: &Node, start: Cid) -> AuditReport {
    let mut report = AuditReport {
        ok: true,
        envelopes: Vec::new(),
        broken: None,
    };
    let mut queue = VecDeque::from([start]);
    let mut seen = HashSet::from([start]);
    while let Some(cid) = queue.pop_front() {
        if report.envelopes.len() >= MAX_ENVELOPES {
            report.ok = false;
            report.broken = Some(AuditBreak {
                cid: cid.to_string(),
                reason: format!("chain longer than {MAX_ENVELOPES} envelopes"),
            });
            break;
        }
        match verify_one(node, &cid).await {
            Ok(entry) => {
                for link in &entry.links {
                    if let Ok(link) = Cid::try_from(link.as_str())
                        && seen.insert(link)
                    {
                        queue.push_back(link);
                    }
                }
                report.envelopes.push(entry);
            }
            Err(reason) => {
                report.ok = false;
                report.broken = Some(AuditBreak {
                    cid: cid.to_string(),
                    reason,
                });
                break;
            }
        }
    }
    report
}

async fn verify_one(node: &Node, cid: &Cid) -> Result<AuditEntry, String> {
    let bytes = node
        .ipfs
        .get(cid)
        .await
        .map_err(|e| format!("block not retrievable: {e}"))?;
    let envelope = Envelope::decode(cid, &bytes, &node.limits).map_err(|e| e.to_string())?;
    let sender = node
        .resolver
        .resolve(envelope.sender())
        .await
        .map_err(|e| format!("sender identity {}: {e}", envelope.sender()))?;
    let verified = envelope.verify(&sender).map_err(|e| e.to_string())?;
    Ok(AuditEntry {
        cid: cid.to_string(),
        kind: verified.kind().into(),
        sender: verified.sender().to_string(),
        sender_name: sender.name().into(),
        time_ms: verified.time_ms(),
        links: verified.links().iter().map(Cid::to_string).collect(),
        recipients: verified.recipients().iter().map(Cid::to_string).collect(),
    })
}
