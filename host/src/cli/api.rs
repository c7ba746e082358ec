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

//! `milagro api METHOD PATH [--data JSON|@FILE|-]`: any route of a node,
//! so third-party plugins are reachable without new CLI code. Prints the
//! answer's body (JSON indented); an answer that is not 2xx is a one-line
//! error with the status's exit code.

use std::io::{IsTerminal, Write as _};

use super::{CliError, node_api::NodeApi, output::visible};

/// Calls `method path` with `data` and prints the answer.
pub async fn api(
    node: &NodeApi,
    method: &str,
    path: &str,
    data: Option<&str>,
) -> Result<(), CliError> {
    let answer = node.call(method, path, request_body(data)?).await?;
    let answer = node.check(method, path, answer)?;
    match serde_json::from_slice::<serde_json::Value>(&answer.body) {
        Ok(value) => println!("{value:#}"),
        // Not JSON (e.g. /metrics): the bytes as sent to a pipe or file;
        // on a terminal, each line made visible, so the node cannot drive it.
        Err(_) if std::io::stdout().is_terminal() => {
            for line in String::from_utf8_lossy(&answer.body).lines() {
                println!("{}", visible(line));
            }
        }
        Err(_) => std::io::stdout()
            .write_all(&answer.body)
            .map_err(|e| CliError::Failed(format!("cannot write the answer: {e}")))?,
    }
    Ok(())
}

/// The body `--data` names: text, `@FILE`, or `-` for standard input.
fn request_body(data: Option<&str>) -> Result<Vec<u8>, CliError> {
    match data {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).map_err(|e| {
                CliError::Failed(format!("cannot read the body from standard input: {e}"))
            })?;
            Ok(body)
        }
        Some(data) => match data.strip_prefix('@') {
            Some(file) => std::fs::read(file)
                .map_err(|e| CliError::Failed(format!("cannot read {file}: {e}"))),
            None => Ok(data.as_bytes().to_vec()),
        },
    }
}
