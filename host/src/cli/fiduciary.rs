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

//! `milagro fiduciary`: the orders this node holds a key share of (never
//! the share itself) and the orders and redemptions it refused.

use super::{
    CliError,
    node_api::NodeApi,
    output::{Format, list_command},
};

/// The plugin these commands talk to.
const PLUGIN: &str = "custody-fiduciary";

/// The `milagro fiduciary` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum FiduciaryCommand {
    /// Orders this fiduciary holds a share of, and to whom each was released.
    Shares,
    /// Every signing session this fiduciary took part in (Taproot
    /// wallets): who asked, the message, the outcome.
    Signatures,
    /// Orders and redemptions this fiduciary refused, and why.
    Refusals,
}

/// Runs a `milagro fiduciary` subcommand.
pub async fn run(
    node: &NodeApi,
    format: Format,
    command: FiduciaryCommand,
) -> Result<(), CliError> {
    match command {
        FiduciaryCommand::Shares => {
            list_command(
                node,
                format,
                PLUGIN,
                "/shares",
                "shares",
                &[
                    ("REFERENCE", "reference"),
                    ("COIN", "coin"),
                    ("PRINCIPAL", "principal"),
                    ("BENEFICIARY", "beneficiary"),
                    ("RELEASED TO", "released_to"),
                    ("CREATED", "created_at_unix_ms"),
                ],
            )
            .await
        }
        FiduciaryCommand::Signatures => {
            list_command(
                node,
                format,
                PLUGIN,
                "/signatures",
                "signatures",
                &[
                    ("REFERENCE", "reference"),
                    ("STATUS", "status"),
                    ("MESSAGE", "message"),
                    ("REQUESTER", "requester"),
                    ("SIGNERS", "signers"),
                    ("COMMITTED", "committed_at_unix_ms"),
                ],
            )
            .await
        }
        FiduciaryCommand::Refusals => super::refusals::list(node, format, PLUGIN).await,
    }
}
