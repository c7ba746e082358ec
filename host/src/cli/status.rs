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

//! `milagro status` (the node's name, ID, version, uptime and plugins; open
//! to anyone) and `milagro plugins` (each plugin's mount, version, pin and
//! routes; operator).

use serde_json::{Value, json};

use super::{
    CliError,
    node_api::NodeApi,
    output::{Format, Table, cell, fields, print_json},
};

/// `milagro status`.
pub async fn status(node: &NodeApi, format: Format) -> Result<(), CliError> {
    let status = node.json("GET", "/v1/status", None).await?;
    let id = node.own_id().await?;
    if format == Format::Json {
        let mut answer = status;
        answer["id"] = Value::String(id);
        answer["url"] = json!(node.url());
        print_json(&answer);
        return Ok(());
    }
    let uptime = status["uptime_seconds"].as_u64().unwrap_or(0);
    print!(
        "{}",
        fields(&[
            ("node", cell(&status["node"])),
            ("id", cell(&Value::String(id))),
            ("url", node.url().to_string()),
            ("version", cell(&status["version"])),
            (
                "uptime",
                humantime::format_duration(std::time::Duration::from_secs(uptime)).to_string()
            ),
            ("plugins", cell(&status["plugins"])),
        ])
    );
    Ok(())
}

/// `milagro plugins`.
pub async fn plugins(node: &NodeApi, format: Format) -> Result<(), CliError> {
    let plugins = node.json("GET", "/v1/plugins", None).await?;
    if format == Format::Json {
        print_json(&plugins);
        return Ok(());
    }
    let mut table = Table::new(&["NAME", "PLUGIN", "VERSION", "MOUNT", "ROUTES", "SHA256"]);
    for p in plugins.as_array().into_iter().flatten() {
        let routes = p["routes"].as_array().map_or(0, Vec::len);
        let sha = cell(&p["sha256"]);
        table.row(vec![
            cell(&p["name"]),
            cell(&p["plugin"]),
            cell(&p["version"]),
            cell(&p["mount"]),
            routes.to_string(),
            sha.chars().take(16).collect(),
        ]);
    }
    table.print();
    Ok(())
}
