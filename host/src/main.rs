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

//! The `milagro` command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use milagro::{cli, config::Config, mpin_client};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "milagro",
    version,
    about = "Milagro Server: decentralised key custody and trust authority"
)]
struct Cli {
    /// Log line format (level filter from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Load the configured plugins and serve the REST API.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Create this node's keys and identity (if it has none) and print its node ID.
    Init {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// This node's identity, or another node's.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Walk an envelope chain from <cid> through its links, verifying every
    /// block, signature and sender (asks the running node).
    Audit {
        cid: String,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// An M-Pin client: make a device token, log in to a node's mpin plugin.
    Mpin {
        #[command(subcommand)]
        command: MpinCommand,
    },
    /// Call any REST route of a node and print the answer's body: the node
    /// of --config (its address, TLS settings and token), or the one at --url.
    /// Exits non-zero, with one line naming the status, unless it is 2xx.
    Api {
        /// The HTTP method, e.g. GET or POST.
        method: String,
        /// The route, e.g. /v1/status.
        path: String,
        /// The request body (JSON); `@FILE` reads it from FILE, `-` from standard input.
        #[arg(long)]
        data: Option<String>,
        /// The local node's config.
        #[arg(long, short, required_unless_present = "url", conflicts_with = "url")]
        config: Option<PathBuf>,
        /// Another node, e.g. https://node.example.org:7070
        #[arg(long)]
        url: Option<String>,
        /// With --url: CA bundle (PEM) trusted for https://; default the system roots.
        #[arg(long, requires = "url")]
        tls_ca: Option<PathBuf>,
        /// With --url: the operator token to send, read from this file.
        #[arg(long, requires = "url")]
        token_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MpinCommand {
    /// Turn a client secret (from POST /v1/dta/secrets) and a PIN into the
    /// device token T = C - pin*H(id); prints it as hex.
    Token {
        /// The combined client secret C (compressed G1, hex).
        #[arg(long)]
        client_secret: String,
        #[arg(long)]
        mpin_id: String,
        /// The PIN; read from the first line of standard input if absent.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Log in with 2-pass M-Pin: pass 1 and pass 2 against <url><mount>.
    Login {
        /// The node, e.g. http://127.0.0.1:7070
        #[arg(long)]
        url: String,
        /// Where the mpin plugin is mounted.
        #[arg(long, default_value = "/v1/mpin")]
        mount: String,
        #[arg(long)]
        mpin_id: String,
        /// The file `milagro mpin token` wrote.
        #[arg(long)]
        token_file: PathBuf,
        /// The PIN; read from the first line of standard input if absent.
        #[arg(long)]
        pin: Option<String>,
        /// CA bundle (PEM) trusted for an https:// URL; default the system roots.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Print this node's identity document.
    Show {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Resolve and verify another node's identity by its ID (asks the running node).
    Resolve {
        cid: String,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Replace this node's keys and publish a rotated identity document
    /// (run while the node is stopped).
    Rotate {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a script reading the
    // CLI's error line gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => milagro::run(load(&config)?)
                .await
                .map_err(|e| e.to_string()),
            Command::Init { config } => cli::init(&load(&config)?).await,
            Command::Identity { command } => match command {
                IdentityCommand::Show { config } => cli::show(&load(&config)?),
                IdentityCommand::Resolve { cid, config } => {
                    cli::resolve(&load(&config)?, &cid).await
                }
                IdentityCommand::Rotate { config } => cli::rotate(&load(&config)?).await,
            },
            Command::Audit { cid, config } => cli::audit(&load(&config)?, &cid).await,
            Command::Mpin { command } => match command {
                MpinCommand::Token {
                    client_secret,
                    mpin_id,
                    pin,
                } => mpin_client::read_pin(pin)
                    .and_then(|pin| mpin_client::token(&client_secret, &mpin_id, pin)),
                MpinCommand::Login {
                    url,
                    mount,
                    mpin_id,
                    token_file,
                    pin,
                    tls_ca,
                } => {
                    let pin = mpin_client::read_pin(pin)?;
                    let client = cli::client(tls_ca.as_deref())?;
                    mpin_client::login(&client, &url, &mount, &mpin_id, &token_file, pin).await
                }
            },
            Command::Api {
                method,
                path,
                data,
                config,
                url,
                tls_ca,
                token_file,
            } => {
                // clap makes sure there is one of --config and --url.
                let node = match &config {
                    Some(config) => cli::NodeApi::local(&load(config)?, true)?,
                    None => cli::NodeApi::remote(
                        url.as_deref().unwrap_or_default(),
                        tls_ca.as_deref(),
                        token_file.as_deref(),
                    )?,
                };
                cli::api(&node, &method, &path, request_body(data.as_deref())?).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The body `--data` names: text, `@FILE`, or `-` for standard input.
fn request_body(data: Option<&str>) -> Result<Vec<u8>, String> {
    match data {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
                .map_err(|e| format!("cannot read the body from standard input: {e}"))?;
            Ok(body)
        }
        Some(data) => match data.strip_prefix('@') {
            Some(file) => std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}")),
            None => Ok(data.as_bytes().to_vec()),
        },
    }
}

fn load(path: &std::path::Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
}
