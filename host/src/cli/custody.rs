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

//! `milagro custody`: the principal's side of custody (docs/custody.md):
//! order a wallet from fiduciaries for a beneficiary, list and show orders,
//! refresh or reshare one's shares, redeem one. Node IDs may be given as
//! `self` (this node).

use serde_json::{Value, json};

use super::{
    CliError,
    node_api::{NodeApi, segment},
    output::{
        Format, Table, cell, list_command, print_json, print_object, spinner, warn_undelivered,
    },
};

/// The plugin these commands talk to.
const PLUGIN: &str = "custody-principal";

/// The `milagro custody` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum CustodyCommand {
    /// Order a wallet: the fiduciaries deal its key in shares; prints its address.
    Order {
        /// A fiduciary's node ID (repeat for each; `self` is this node).
        #[arg(long = "fiduciary", value_name = "ID", required = true)]
        fiduciaries: Vec<String>,
        /// The beneficiary's node ID (default: this node).
        #[arg(long, value_name = "ID")]
        beneficiary: Option<String>,
        /// The coin: btc, btc-testnet, eth, btc-taproot or btc-testnet-taproot
        /// (Taproot wallets sign without assembling their key).
        #[arg(long, value_parser = ["btc", "btc-testnet", "eth", "btc-taproot", "btc-testnet-taproot"])]
        coin: String,
        /// Shares needed to rebuild the key (t of n; default all).
        #[arg(long, value_name = "T")]
        threshold: Option<u32>,
        /// Your reference for the order (default: the node picks one). Ordering
        /// again with the same reference completes or shows that order.
        #[arg(long, value_name = "REF")]
        reference: Option<String>,
    },
    /// Every order of this principal.
    List,
    /// One order: status, address, each fiduciary's state, envelope CIDs.
    Show {
        /// The order's reference.
        reference: String,
    },
    /// Give the wallet's fiduciaries fresh shares of the same key (same
    /// address); the old shares become useless and are erased.
    Refresh {
        /// The order's reference.
        reference: String,
        /// A fiduciary that deals (repeat; default all, at least t).
        #[arg(long = "dealer", value_name = "ID")]
        dealers: Vec<String>,
    },
    /// Move the wallet to other fiduciaries and threshold (same key and
    /// address); departing fiduciaries' shares become useless.
    Reshare {
        /// The order's reference.
        reference: String,
        /// A new fiduciary's node ID (repeat for each; `self` is this node).
        #[arg(long = "fiduciary", value_name = "ID", required = true)]
        fiduciaries: Vec<String>,
        /// Shares needed to rebuild the key (t of n; default all).
        #[arg(long, value_name = "T")]
        threshold: Option<u32>,
        /// A current fiduciary that deals (repeat; default all, at least t).
        #[arg(long = "dealer", value_name = "ID")]
        dealers: Vec<String>,
    },
    /// Ask the fiduciaries to release the wallet to its beneficiary.
    Redeem {
        /// The order's reference.
        reference: String,
        /// Another beneficiary (only for orders whose beneficiary key the
        /// principal holds).
        #[arg(long, value_name = "ID")]
        to: Option<String>,
    },
}

/// Runs a `milagro custody` subcommand.
pub async fn run(node: &NodeApi, format: Format, command: CustodyCommand) -> Result<(), CliError> {
    match command {
        CustodyCommand::Order {
            fiduciaries,
            beneficiary,
            coin,
            threshold,
            reference,
        } => {
            let mount = node.mount(PLUGIN).await?;
            let fiduciaries = node.resolve_self(&fiduciaries).await?;
            let beneficiary = node
                .resolve_self(&[beneficiary.unwrap_or_else(|| "self".into())])
                .await?;
            let mut body =
                json!({"fiduciaries": fiduciaries, "beneficiary": beneficiary[0], "coin": coin});
            if let Some(t) = threshold {
                body["threshold"] = json!(t);
            }
            if let Some(r) = reference {
                body["reference"] = json!(r);
            }
            let bar = spinner(format!(
                "waiting for {} fiduciaries' commitments",
                fiduciaries.len()
            ));
            let order = node
                .json("POST", &format!("{mount}/orders"), Some(&body))
                .await;
            bar.finish_and_clear();
            show_order(format, &order?);
        }
        CustodyCommand::List => {
            list_command(
                node,
                format,
                PLUGIN,
                "/orders",
                "orders",
                &[
                    ("REFERENCE", "reference"),
                    ("COIN", "coin"),
                    ("STATUS", "status"),
                    ("ADDRESS", "address"),
                    ("CREATED", "created_at"),
                ],
            )
            .await?;
        }
        CustodyCommand::Show { reference } => {
            let mount = node.mount(PLUGIN).await?;
            let order = node
                .json(
                    "GET",
                    &format!("{mount}/orders/{}", segment(&reference)),
                    None,
                )
                .await?;
            show_order(format, &order);
        }
        CustodyCommand::Refresh { reference, dealers } => {
            let body = json!({});
            reshare(node, format, &reference, "refresh", body, dealers).await?;
        }
        CustodyCommand::Reshare {
            reference,
            fiduciaries,
            threshold,
            dealers,
        } => {
            let mut body = json!({"fiduciaries": node.resolve_self(&fiduciaries).await?});
            if let Some(t) = threshold {
                body["threshold"] = json!(t);
            }
            reshare(node, format, &reference, "reshare", body, dealers).await?;
        }
        CustodyCommand::Redeem { reference, to } => {
            let mount = node.mount(PLUGIN).await?;
            let body = match to {
                Some(to) => json!({"beneficiary": node.resolve_self(&[to]).await?[0]}),
                None => json!({}),
            };
            let path = format!("{mount}/orders/{}/redeem", segment(&reference));
            let order = node.json("POST", &path, Some(&body)).await?;
            warn_undelivered(&order);
            show_order(format, &order);
        }
    }
    Ok(())
}

/// How many times `custody refresh` and `custody reshare` ask before giving
/// up. The node answers 504 while some new fiduciary has not reported (a
/// deal lost or late under load) and finishes the same reshare when asked
/// again, its dealers dealing once more; so the command asks again itself
/// rather than leave that to the operator.
const RESHARE_ATTEMPTS: u32 = 3;

/// `POST {custody}/orders/{ref}/{action}` (refresh or reshare) with the
/// dealers named, if any, asked again on a 504 (up to [`RESHARE_ATTEMPTS`]
/// in all); shows the order with its new sharing.
async fn reshare(
    node: &NodeApi,
    format: Format,
    reference: &str,
    action: &str,
    mut body: Value,
    dealers: Vec<String>,
) -> Result<(), CliError> {
    let mount = node.mount(PLUGIN).await?;
    if !dealers.is_empty() {
        body["dealers"] = json!(node.resolve_self(&dealers).await?);
    }
    let bar = spinner(format!("waiting for the new shares of {reference}"));
    let path = format!("{mount}/orders/{}/{action}", segment(reference));
    let mut attempt = 1;
    let order = loop {
        match node.json("POST", &path, Some(&body)).await {
            Err(CliError::TimedOut(why)) if attempt < RESHARE_ATTEMPTS => {
                attempt += 1;
                bar.suspend(|| {
                    eprintln!("note: {why}; asking again ({attempt} of {RESHARE_ATTEMPTS})")
                });
            }
            answer => break answer,
        }
    };
    bar.finish_and_clear();
    show_order(format, &order?);
    Ok(())
}

/// An order: JSON, or its fields and a table of its fiduciaries.
fn show_order(format: Format, order: &Value) {
    if format == Format::Json {
        print_json(order);
        return;
    }
    print_object(
        order,
        &[
            ("reference", "reference"),
            ("status", "status"),
            ("coin", "coin"),
            ("address", "address"),
            ("legacy address", "legacy_address"),
            ("public key", "public_key"),
            ("beneficiary", "beneficiary"),
            ("redeemed to", "redeemed_to"),
            ("threshold", "threshold"),
            ("sharing epoch", "epoch"),
            ("order", "order_cid"),
            ("created", "created_at"),
            ("error", "error"),
        ],
    );
    let mut table = Table::new(&["FIDUCIARY", "STATUS", "ERROR"]);
    for f in order["fiduciaries"].as_array().into_iter().flatten() {
        table.row(vec![cell(&f["id"]), cell(&f["status"]), cell(&f["error"])]);
    }
    println!();
    table.print();
    if let Some(sharing) = order["sharing"].as_object() {
        println!(
            "\nsharing in force: {} of these fiduciaries",
            cell(&sharing["threshold"])
        );
        let mut table = Table::new(&["FIDUCIARY", "SHARE PUBLIC KEY"]);
        let keys = sharing["share_public_keys"].as_array();
        for (i, id) in sharing["fiduciaries"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let key = keys.and_then(|k| k.get(i)).cloned().unwrap_or_default();
            table.row(vec![cell(id), cell(&key)]);
        }
        table.print();
    }
}
