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

//! `milagro dta`: M-Pin secrets from the D-TAs (docs/dta.md). `secret`
//! asks this node's dta plugin to gather a share from every authority
//! named, check each share's proof (client) or pairing (server), and add
//! them; `public-key` and `issuances` show this node's own D-TA.
//!
//! A secret is printed because asking for it is the command's purpose:
//! pipe it into `milagro mpin token`, not into a log.

use serde_json::{Value, json};

use super::{
    CliError,
    node_api::NodeApi,
    output::{Format, Table, cell, list_command, print_answer, print_json, print_object, spinner},
};

/// The plugin these commands talk to.
const PLUGIN: &str = "dta";

/// Which secret.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Kind {
    /// A user's client secret s*H(id) in G1.
    Client,
    /// The authentication server's secret s*Q in G2.
    Server,
}

/// The `milagro dta` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum DtaCommand {
    /// Obtain client secrets (1 to 256 IDs) or the server secret from D-TAs.
    Secret {
        /// Which secret.
        #[arg(long, value_enum)]
        kind: Kind,
        /// A user's M-Pin ID (repeat for a batch; client kind).
        #[arg(long = "mpin-id", value_name = "ID", required_if_eq("kind", "client"))]
        mpin_ids: Vec<String>,
        /// A D-TA's node ID (repeat for each; `self` is this node).
        #[arg(long = "authority", value_name = "ID", required = true)]
        authorities: Vec<String>,
    },
    /// This D-TA's public key P = s*g1 and its signed envelope.
    PublicKey,
    /// This D-TA's decisions: who asked, for what, when, the outcome.
    Issuances,
}

/// Runs a `milagro dta` subcommand.
pub async fn run(node: &NodeApi, format: Format, command: DtaCommand) -> Result<(), CliError> {
    match command {
        DtaCommand::Secret {
            kind,
            mpin_ids,
            authorities,
        } => {
            let mount = node.mount(PLUGIN).await?;
            let authorities = node.resolve_self(&authorities).await?;
            let body = match kind {
                Kind::Server if !mpin_ids.is_empty() => {
                    return Err(CliError::Usage("--mpin-id is for --kind client".into()));
                }
                Kind::Server => json!({"kind": "server", "authorities": authorities}),
                Kind::Client => {
                    json!({"kind": "client", "mpin_ids": mpin_ids, "authorities": authorities})
                }
            };
            let bar = spinner(format!("asking {} D-TA(s)", authorities.len()));
            let answer = node
                .json("POST", &format!("{mount}/secrets"), Some(&body))
                .await;
            bar.finish_and_clear();
            show_secrets(format, &answer?);
        }
        DtaCommand::PublicKey => {
            let mount = node.mount(PLUGIN).await?;
            let key = node
                .json("GET", &format!("{mount}/public-share"), None)
                .await?;
            print_answer(
                format,
                &key,
                &[
                    ("node", "node_id"),
                    ("public key", "public_key"),
                    ("curve", "curve"),
                    ("envelope", "envelope_cid"),
                ],
            );
        }
        DtaCommand::Issuances => {
            list_command(
                node,
                format,
                PLUGIN,
                "/issuances",
                "issuances",
                &[
                    ("TIME", "time_unix_ms"),
                    ("REQUESTER", "requester"),
                    ("KIND", "kind"),
                    ("MPIN IDS", "mpin_ids"),
                    ("OUTCOME", "outcome"),
                    ("REASON", "reason"),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Combined secrets: JSON, or a table of ID and secret (client) or the
/// secret's line (server), then the envelopes of the exchange.
fn show_secrets(format: Format, answer: &Value) {
    if format == Format::Json {
        print_json(answer);
        return;
    }
    if answer["kind"] == "server" {
        print_object(answer, &[("server secret", "secret")]);
    } else {
        let mut table = Table::new(&["MPIN ID", "CLIENT SECRET"]);
        for s in answer["secrets"].as_array().into_iter().flatten() {
            table.row(vec![cell(&s["mpin_id"]), cell(&s["secret"])]);
        }
        table.print();
    }
    print_object(
        answer,
        &[
            ("authorities", "authorities"),
            ("envelopes", "envelope_cids"),
        ],
    );
}
