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

//! The `milagro-install` command line.

#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use milagro_install::{
    InstallError, Options, Overrides, install,
    plugins::{self, NewPlugin, SourceArg},
};

/// Sets up a Milagro Server node from an install manifest: builds (or takes)
/// the host and its plugins, writes <prefix>/etc/milagro/host.toml, creates
/// the node's keys and identity, and optionally starts it.
#[derive(Parser)]
#[command(
    name = "milagro-install",
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    install: InstallArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The plugins of an install: list, add, verify.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// What a prefix has installed: each plugin's name, sha256 and pinned source.
    List {
        #[arg(long, default_value = "/opt/milagro")]
        prefix: PathBuf,
    },
    /// Adds a [[plugins]] entry to the manifest and installs it.
    Add(Box<AddArgs>),
    /// Re-hashes every installed library against host.toml, the install
    /// record and the manifest; exits non-zero naming a modified library.
    Verify {
        #[arg(long, default_value = "/opt/milagro")]
        prefix: PathBuf,
        /// The manifest whose pins to compare; default the copy in etc/milagro.
        #[arg(long, short)]
        manifest: Option<PathBuf>,
    },
}

/// `plugins add`: the new entry and how to install.
#[derive(Args)]
struct AddArgs {
    /// The instance name.
    #[arg(value_name = "NAME")]
    instance: String,
    /// Which plugin, when it is not the instance name.
    #[arg(long)]
    plugin: Option<String>,
    /// Mount point; default /v1/<name>.
    #[arg(long)]
    mount: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    pins: PinArgs,
    #[command(flatten)]
    install: InstallArgs,
}

/// Where the added plugin comes from: one of --crate, --git, --url, --path.
#[derive(Args)]
#[group(required = true, multiple = false, id = "source")]
struct SourceArgs {
    /// A registry crate (with --version).
    #[arg(long = "crate", requires = "version")]
    crate_name: Option<String>,
    /// A git repository (with --rev, a full commit ID).
    #[arg(long, requires = "rev")]
    git: Option<String>,
    /// A prebuilt library (with --sha256).
    #[arg(long, requires = "sha256")]
    url: Option<String>,
    /// A prebuilt library on this machine.
    #[arg(long)]
    path: Option<PathBuf>,
}

/// The pins that go with a source.
#[derive(Args)]
struct PinArgs {
    /// With --crate: the exact version.
    #[arg(long)]
    version: Option<String>,
    /// With --crate: a registry named in cargo's config.
    #[arg(long)]
    registry: Option<String>,
    /// With --git: the full commit ID.
    #[arg(long)]
    rev: Option<String>,
    /// With --url (or --path): the library's SHA-256.
    #[arg(long)]
    sha256: Option<String>,
    /// With --url: the URL of its minisign signature.
    #[arg(long, requires = "signer_key")]
    signature: Option<String>,
    /// With --signature: the minisign public key.
    #[arg(long, requires = "signature")]
    signer_key: Option<String>,
}

impl SourceArgs {
    fn into_source(self, pins: PinArgs) -> SourceArg {
        if let Some(crate_name) = self.crate_name {
            SourceArg::Crate {
                crate_name,
                version: pins.version.unwrap_or_default(),
                registry: pins.registry,
            }
        } else if let Some(url) = self.git {
            SourceArg::Git {
                url,
                rev: pins.rev.unwrap_or_default(),
            }
        } else if let Some(url) = self.url {
            SourceArg::Url {
                url,
                sha256: pins.sha256.unwrap_or_default(),
                signature: pins.signature,
                signer_key: pins.signer_key,
            }
        } else {
            SourceArg::Path {
                // The manifest reads `path` relative to itself, not to
                // where this command runs.
                path: milagro_install::layout::absolute(&self.path.unwrap_or_default()),
                sha256: pins.sha256,
            }
        }
    }
}

/// How to install: the manifest, the prefix and the install's options.
#[derive(Args)]
struct InstallArgs {
    /// The install manifest, e.g. manifests/quickstart.toml.
    #[arg(long, short, required = true)]
    manifest: Option<PathBuf>,
    /// Where to install: bin/, lib/milagro/plugins/, etc/milagro/, var/.
    #[arg(long, default_value = "/opt/milagro")]
    prefix: PathBuf,
    /// The node's data directory (database, keys, token);
    /// default <prefix>/var/lib/milagro.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Start the node (detached; pid file and log under the prefix) and wait
    /// until /v1/status answers. A node already running from this prefix is
    /// restarted.
    #[arg(long)]
    start: bool,
    /// Validate the manifest and show what would be done; build and write
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace the node's identity with new keys (`milagro identity rotate`).
    /// Without it, an existing identity is always kept.
    #[arg(long)]
    force_new_identity: bool,
    /// Write a systemd unit to <prefix>/lib/systemd/system/milagro.service.
    #[arg(long)]
    systemd: bool,
    /// Take `milagro` and the plugin libraries from this directory of built
    /// artefacts (e.g. target/release) instead of building them.
    #[arg(long, alias = "plugins-from", env = "MILAGRO_INSTALL_ARTIFACTS")]
    artifacts: Option<PathBuf>,
    /// The workspace to build from; default the one this installer was
    /// built in.
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Node name, instead of the manifest's.
    #[arg(long)]
    name: Option<String>,
    /// HTTP API address, instead of the manifest's [network] listen.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Embedded IPFS TCP address, instead of the manifest's ipfs_listen.
    #[arg(long)]
    ipfs_listen: Option<SocketAddr>,
    /// Serve plain HTTP on a non-loopback --listen address (a TLS proxy in
    /// front of the node terminates TLS): [http] insecure_plain_http = true.
    #[arg(long)]
    insecure_plain_http: bool,
    /// A further bootstrap peer (multiaddr with /p2p/, or http(s)://host:port of
    /// a running node); may be repeated.
    #[arg(long)]
    bootstrap: Vec<String>,
    /// How long --start waits for /v1/status, in seconds.
    #[arg(long, default_value_t = 120)]
    start_timeout: u64,
}

impl InstallArgs {
    fn into_options(self) -> Options {
        let cli = self;
        Options {
            manifest: cli.manifest.unwrap_or_default(),
            prefix: cli.prefix,
            data_dir: cli.data_dir,
            start: cli.start,
            dry_run: cli.dry_run,
            force_new_identity: cli.force_new_identity,
            systemd: cli.systemd,
            artifacts: cli.artifacts,
            workspace: cli.workspace,
            start_timeout: Duration::from_secs(cli.start_timeout),
            overrides: Overrides {
                name: cli.name,
                listen: cli.listen,
                ipfs_listen: cli.ipfs_listen,
                insecure_plain_http: cli.insecure_plain_http,
                bootstrap: cli.bootstrap,
            },
        }
    }
}

fn fail(e: InstallError) -> ExitCode {
    eprintln!(
        "milagro-install: error: {}",
        e.to_string().replace('\n', " ")
    );
    ExitCode::FAILURE
}

fn installed(result: Result<milagro_install::Report, InstallError>) -> ExitCode {
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => installed(install(&cli.install.into_options())),
        Some(Command::Plugins(PluginsCommand::List { prefix })) => match plugins::list(&prefix) {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Some(Command::Plugins(PluginsCommand::Add(add))) => {
            let AddArgs {
                instance: name,
                plugin,
                mount,
                source,
                pins,
                install,
            } = *add;
            let new = NewPlugin {
                name,
                plugin,
                mount,
                source: source.into_source(pins),
            };
            installed(plugins::add(&install.into_options(), &new))
        }
        Some(Command::Plugins(PluginsCommand::Verify { prefix, manifest })) => {
            match plugins::verify(&prefix, manifest.as_deref()) {
                Ok(verified) => {
                    for line in &verified.lines {
                        if line.starts_with("MODIFIED") {
                            eprintln!("milagro-install: {line}");
                        } else {
                            println!("{line}");
                        }
                    }
                    if verified.intact {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => fail(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
