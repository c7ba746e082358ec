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

//! `milagro beneficiary`: the wallets announced to this node, the key of
//! one once every share it needs has arrived, and signatures by a Taproot
//! wallet. The key is printed only
//! with `--show-secret` (human form) or `--json` (the whole answer, for a
//! script that asked for it).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    CliError,
    node_api::{NodeApi, segment},
    output::{
        Format, cell, fields, list_command, print_json, print_object, spinner, warn_undelivered,
    },
};

/// The plugin these commands talk to.
const PLUGIN: &str = "beneficiary";

/// How often `wallet --wait` asks again.
const POLL: Duration = Duration::from_millis(500);

/// The `milagro beneficiary` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum BeneficiaryCommand {
    /// One wallet (by reference or order CID); its key once complete.
    Wallet {
        /// The order's reference or CID.
        reference: String,
        /// Wait up to SECONDS for the wallet to be complete (its key rebuilt).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
        /// Print the wallet's secret key and WIF (human form).
        #[arg(long)]
        show_secret: bool,
    },
    /// Every wallet announced to this node.
    List,
    /// Ask the wallet's fiduciaries to release their shares to this node.
    Redeem {
        /// The order's reference or CID.
        reference: String,
    },
    /// Ask the wallet's principal to refresh the fiduciaries' shares (same
    /// key and address; the old shares become useless).
    Refresh {
        /// The order's reference or CID.
        reference: String,
    },
    /// Sign a 32-byte message (a BIP341 sighash) with a Taproot wallet:
    /// this node and any t fiduciaries, the key never assembled.
    Sign {
        /// The order's reference or CID.
        reference: String,
        /// The message, 64 hex digits.
        #[arg(long, value_name = "HEX")]
        message: String,
    },
    /// Notices and releases this node refused, and why.
    Refusals,
}

/// Runs a `milagro beneficiary` subcommand.
pub async fn run(
    node: &NodeApi,
    format: Format,
    command: BeneficiaryCommand,
) -> Result<(), CliError> {
    match command {
        BeneficiaryCommand::Wallet {
            reference,
            wait,
            show_secret,
        } => {
            let mount = node.mount(PLUGIN).await?;
            let path = format!("{mount}/wallets/{}", segment(&reference));
            let wallet = match wait {
                None => node.json("GET", &path, None).await?,
                Some(seconds) => wait_complete(node, &path, &reference, seconds).await?,
            };
            show_wallet(format, &wallet, show_secret);
        }
        BeneficiaryCommand::List => {
            list_command(
                node,
                format,
                PLUGIN,
                "/wallets",
                "wallets",
                &[
                    ("REFERENCE", "reference"),
                    ("COIN", "coin"),
                    ("STATUS", "status"),
                    ("SHARES", "shares_received"),
                    ("NEEDED", "shares_needed"),
                    ("ADDRESS", "address"),
                ],
            )
            .await?;
        }
        BeneficiaryCommand::Redeem { reference } => {
            let mount = node.mount(PLUGIN).await?;
            let path = format!("{mount}/wallets/{}/redeem", segment(&reference));
            let wallet = node.json("POST", &path, None).await?;
            warn_undelivered(&wallet);
            show_wallet(format, &wallet, false);
        }
        BeneficiaryCommand::Refresh { reference } => {
            let mount = node.mount(PLUGIN).await?;
            let path = format!("{mount}/wallets/{}/refresh", segment(&reference));
            let sent = node.json("POST", &path, None).await?;
            match format {
                Format::Json => print_json(&sent),
                _ => println!(
                    "refresh of {} asked of its principal (envelope {}); `beneficiary wallet {reference}` shows the new epoch",
                    cell(&sent["order_cid"]),
                    cell(&sent["request_cid"])
                ),
            }
        }
        BeneficiaryCommand::Sign { reference, message } => {
            let mount = node.mount(PLUGIN).await?;
            let path = format!("{mount}/wallets/{}/signatures", segment(&reference));
            let bar = spinner(format!("signing with wallet {reference}"));
            let signed = node
                .json(
                    "POST",
                    &path,
                    Some(&serde_json::json!({"message": message})),
                )
                .await;
            bar.finish_and_clear();
            let signed = signed?;
            match format {
                Format::Json => print_json(&signed),
                _ => print_object(
                    &signed,
                    &[
                        ("signature", "signature"),
                        ("message", "message"),
                        ("output key", "output_key"),
                        ("address", "address"),
                        ("fiduciaries", "fiduciaries"),
                    ],
                ),
            }
        }
        BeneficiaryCommand::Refusals => super::refusals::list(node, format, PLUGIN).await?,
    }
    Ok(())
}

/// Asks for the wallet at `path` until it is complete or `seconds` pass;
/// a wallet not announced yet (404) is waited for too.
async fn wait_complete(
    node: &NodeApi,
    path: &str,
    reference: &str,
    seconds: u64,
) -> Result<Value, CliError> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let bar = spinner(format!("waiting for wallet {reference}"));
    let mut last = String::from("not announced to this node yet");
    let outcome = loop {
        match node.json("GET", path, None).await {
            Ok(wallet) if wallet["status"] == "complete" => break Ok(wallet),
            Ok(wallet) => {
                last = format!(
                    "{} of {} shares",
                    cell(&wallet["shares_received"]),
                    cell(&wallet["shares_needed"])
                );
                bar.set_message(format!("wallet {reference}: {last}"));
            }
            Err(CliError::NotFound(_)) => {}
            Err(e) => break Err(e),
        }
        if Instant::now() + POLL > deadline {
            break Err(CliError::TimedOut(format!(
                "wallet {reference} not complete after {seconds} s: {last}"
            )));
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    outcome
}

/// A wallet: JSON (whole), or its fields with the key only if `show_secret`.
fn show_wallet(format: Format, wallet: &Value, show_secret: bool) {
    if format == Format::Json {
        print_json(wallet);
        return;
    }
    print_object(
        wallet,
        &[
            ("reference", "reference"),
            ("status", "status"),
            ("coin", "coin"),
            ("address", "address"),
            ("public key", "public_key"),
            ("principal", "principal"),
            ("shares", "shares_received"),
            ("needed", "shares_needed"),
            ("order", "order_cid"),
            ("completed", "completed_at"),
            ("error", "error"),
        ],
    );
    if wallet["secret_key"].is_string() {
        match show_secret {
            true => print_object(wallet, &[("secret key", "secret_key"), ("wif", "wif")]),
            false => print!(
                "{}",
                fields(&[("secret key", "(hidden; --show-secret prints it)".into())])
            ),
        }
    }
}
