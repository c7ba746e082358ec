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

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use milagro_install::{Options, Overrides, install};

/// Sets up a Milagro Server node from an install manifest: builds (or takes)
/// the host and its plugins, writes <prefix>/etc/milagro/host.toml, creates
/// the node's keys and identity, and optionally starts it.
#[derive(Parser)]
#[command(name = "milagro-install", version)]
struct Cli {
    /// The install manifest, e.g. manifests/quickstart.toml.
    #[arg(long, short)]
    manifest: PathBuf,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = Options {
        manifest: cli.manifest,
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
    };
    match install(&options) {
        Ok(report) => {
            print!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "milagro-install: error: {}",
                e.to_string().replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}
