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

//! The `milagro` command line: the server (`serve`), this node's identity
//! (`init`, `identity`), and a client for every role, talking to the node
//! named by `--config` (or `MILAGRO_CONFIG`) or `--url` over its REST API.
//!
//! Layout: one file per command family, beside what they share.
//! - [`node_api`]: which node, the HTTP(S) client, the token, paging
//! - [`output`]: tables, `--json`, progress, text made safe for a terminal
//! - [`error`]: one-line failures and their exit codes (docs/cli.md)
//! - [`identity`], [`audit`], [`status`], [`api`]: the node itself
//! - [`backup`]: `backup` and `restore`
//! - [`custody`], [`fiduciary`], [`beneficiary`], [`refusals`]: custody roles
//! - [`dta`], [`mpin`]: M-Pin secrets and login
//! - [`completions`]: shell completions and man pages

pub mod api;
pub mod audit;
pub mod backup;
pub mod beneficiary;
pub mod completions;
pub mod custody;
pub mod dta;
pub mod error;
pub mod fiduciary;
pub mod identity;
pub mod mpin;
pub mod node_api;
pub mod output;
pub mod refusals;
pub mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use error::CliError;
use node_api::NodeArgs;
use output::Format;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "milagro",
    version,
    about = "Milagro Server: decentralised key custody and trust authority",
    after_help = "The node: --config FILE (or MILAGRO_CONFIG) for this machine's node, \
                  --url URL for another. Exit codes: docs/cli.md (`milagro man`)."
)]
pub struct Cli {
    /// Log line format (level filter from RUST_LOG).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Print the node's answers as JSON, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// Which node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Text lines.
    Text,
    /// JSON lines.
    Json,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load the configured plugins and serve the REST API.
    Serve,
    /// Create this node's keys and identity (if it has none) and print its node ID.
    Init,
    /// This node's identity, or another node's.
    Identity {
        #[command(subcommand)]
        command: identity::IdentityCommand,
    },
    /// Walk an envelope chain from CID through its links, verifying every
    /// block, signature and sender (asks the running node).
    Audit {
        /// The newest envelope of the chain.
        cid: String,
    },
    /// Write an encrypted, checked archive of the running node (database,
    /// file keystore, identity chain, IPFS peer key) to --out.
    Backup {
        /// The archive to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        passphrase: backup::PassphraseArgs,
    },
    /// Restore a node from a backup archive into its empty data dir (the
    /// node stopped); the restored node keeps its node ID.
    Restore {
        /// The archive `milagro backup` wrote.
        #[arg(long = "in", value_name = "FILE")]
        archive: PathBuf,
        #[command(flatten)]
        passphrase: backup::PassphraseArgs,
    },
    /// The node's name, ID, version, uptime and plugins.
    Status,
    /// The node's plugins: mount, version, pin, routes.
    Plugins,
    /// Custody, as the principal: order, list, show and redeem wallets.
    Custody {
        #[command(subcommand)]
        command: custody::CustodyCommand,
    },
    /// Custody, as the beneficiary: wallets and their keys.
    Beneficiary {
        #[command(subcommand)]
        command: beneficiary::BeneficiaryCommand,
    },
    /// Custody, as a fiduciary: shares held, refusals.
    Fiduciary {
        #[command(subcommand)]
        command: fiduciary::FiduciaryCommand,
    },
    /// M-Pin secrets from the D-TAs; this D-TA's key and decisions.
    Dta {
        #[command(subcommand)]
        command: dta::DtaCommand,
    },
    /// M-Pin: device token, login, and the mpin plugin's operator commands.
    Mpin {
        #[command(subcommand)]
        command: mpin::MpinCommand,
    },
    /// Call any REST route of the node and print the answer's body.
    /// Exits non-zero, with one line naming the status, unless it is 2xx.
    Api {
        /// The HTTP method, e.g. GET or POST.
        method: String,
        /// The route, e.g. /v1/status.
        path: String,
        /// The request body (JSON); `@FILE` reads it from FILE, `-` from standard input.
        #[arg(long)]
        data: Option<String>,
    },
    /// Print the completion script for a shell.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one per command into --dir.
    Man {
        /// Where to write milagro.1 and a page per subcommand.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// Whether this runs the node or works on its files, logging at info;
    /// client commands log only warnings.
    pub fn is_node_side(&self) -> bool {
        matches!(
            self,
            Command::Serve
                | Command::Init
                | Command::Restore { .. }
                | Command::Identity {
                    command: identity::IdentityCommand::Show
                        | identity::IdentityCommand::Rotate
                        | identity::IdentityCommand::Revoke { .. }
                }
        )
    }
}

/// Runs the command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let format = match cli.json {
        true => Format::Json,
        false => Format::Human,
    };
    let args = &cli.node;
    match cli.command {
        Command::Serve => crate::run(args.load_config()?)
            .await
            .map_err(|e| CliError::Failed(e.to_string())),
        Command::Init => Ok(identity::init(&args.load_config()?).await?),
        Command::Identity { command } => match command {
            identity::IdentityCommand::Show => Ok(identity::show(&args.load_config()?)?),
            identity::IdentityCommand::Rotate => Ok(identity::rotate(&args.load_config()?).await?),
            identity::IdentityCommand::Revoke { id } => {
                Ok(identity::revoke(&args.load_config()?, &id).await?)
            }
            identity::IdentityCommand::Resolve { cid } => {
                identity::resolve(&args.open()?, &cid).await
            }
        },
        Command::Audit { cid } => audit::audit(&args.open()?, format, &cid).await,
        Command::Backup { out, passphrase } => {
            backup::backup(&args.open()?, format, &out, &passphrase).await
        }
        Command::Restore {
            archive,
            passphrase,
        } => backup::restore(args.load_config()?, format, &archive, &passphrase).await,
        Command::Status => status::status(&args.open()?, format).await,
        Command::Plugins => status::plugins(&args.open()?, format).await,
        Command::Custody { command } => custody::run(&args.open()?, format, command).await,
        Command::Beneficiary { command } => beneficiary::run(&args.open()?, format, command).await,
        Command::Fiduciary { command } => fiduciary::run(&args.open()?, format, command).await,
        Command::Dta { command } => dta::run(&args.open()?, format, command).await,
        Command::Mpin { command } => mpin::run(|| args.open(), format, command).await,
        Command::Api { method, path, data } => {
            api::api(&args.open()?, &method, &path, data.as_deref()).await
        }
        Command::Completions { shell } => {
            completions::completions(shell);
            Ok(())
        }
        Command::Man { dir } => completions::man(dir.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_and_url_name_one_node() {
        let parsed = Cli::try_parse_from([
            "milagro", "status", "--config", "a.toml", "--url", "http://x",
        ]);
        assert!(parsed.is_err());
        let cli = Cli::try_parse_from([
            "milagro", "--json", "custody", "show", "r1", "--url", "http://x",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.node.url.as_deref(), Some("http://x"));
    }
}
