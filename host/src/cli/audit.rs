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

//! `milagro audit <cid>`: walks an envelope chain from `cid` through its
//! links on the running node, which verifies every block, signature and
//! sender; prints the chain and fails (exit 6) on a break.

use super::{
    CliError,
    node_api::{NodeApi, segment},
    output::{Format, Table, cell, print_json},
};

/// Prints the chain from `cid`; an error when it is broken.
pub async fn audit(node: &NodeApi, format: Format, cid: &str) -> Result<(), CliError> {
    let report = node
        .json("GET", &format!("/v1/audit/{}", segment(cid)), None)
        .await?;
    let entries = report["envelopes"].as_array().cloned().unwrap_or_default();
    match format {
        Format::Json => print_json(&report),
        Format::Human => {
            let mut table = Table::new(&["CID", "KIND", "SENDER", "SENDER ID", "TIME MS"]);
            for entry in &entries {
                table.row(
                    ["cid", "kind", "sender_name", "sender", "time_ms"]
                        .iter()
                        .map(|k| cell(&entry[*k]))
                        .collect(),
                );
            }
            table.print();
        }
    }
    if report["ok"] == true {
        if format == Format::Human {
            println!("chain verified: {} envelope(s)", entries.len());
        }
        return Ok(());
    }
    Err(CliError::Refused(format!(
        "chain BROKEN at {}: {}",
        cell(&report["broken"]["cid"]),
        cell(&report["broken"]["reason"])
    )))
}
