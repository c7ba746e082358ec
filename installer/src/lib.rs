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

//! `milagro-install`: sets up a Milagro Server node from an install manifest.
//!
//! One run validates the manifest completely (syntax, unknown keys and
//! plugins, values, free ports, available artefacts) before it builds or
//! writes anything; builds (or takes) the `milagro` binary and the plugin
//! libraries, fetching third-party ones from the source their entry pins
//! (`source`: url, git, registry crate) and checking them (hash, signature,
//! this host's plugin-api) outside the prefix; stages `bin/`,
//! `lib/milagro/plugins/`, `etc/milagro/` (with the install record,
//! `record`, and a systemd unit) in a scratch directory inside the prefix
//! and renames them into place; runs `milagro init`; and on any failure
//! puts the previous install back (or removes a new one), so nothing is
//! left half-installed. Re-running keeps the node's data and identity, and
//! every fetched plugin whose pin is unchanged; only `--force-new-identity`
//! replaces the identity (`milagro identity rotate`).

#![forbid(unsafe_code)]

pub mod artifacts;
pub mod catalog;
pub mod entry;
pub mod layout;
pub mod manifest;
pub mod plugins;
pub mod process;
pub mod progress;
pub mod record;
pub mod source;

use std::{
    io,
    net::{SocketAddr, TcpListener, ToSocketAddrs},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use milagro_plugin_api::library::LibraryError;

use crate::{
    artifacts::{Placement, Source},
    layout::{Layout, MANAGED},
    manifest::{IpfsMode, Loaded, ManifestError},
    progress::Progress,
    record::Record,
    source::{PluginSource, SourceError, path::PathSource},
};

/// Why an install failed. Each is one line.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Artifact(String),
    #[error("{0}")]
    Build(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A fetched library this host's plugin-api refuses.
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error("bootstrap peer {peer}: {message}")]
    Bootstrap { peer: String, message: String },
    #[error("cannot {what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Init(String),
    #[error("{0}")]
    Start(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> InstallError {
    let what = what.into();
    move |source| InstallError::Io { what, source }
}

/// What to install, and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub manifest: PathBuf,
    pub prefix: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub start: bool,
    pub dry_run: bool,
    pub force_new_identity: bool,
    /// Write a systemd unit even if the manifest does not ask for one.
    pub systemd: bool,
    /// Take `milagro` and the plugin libraries from this directory instead
    /// of building them.
    pub artifacts: Option<PathBuf>,
    /// The workspace to build from.
    pub workspace: Option<PathBuf>,
    pub start_timeout: Duration,
    /// Command-line values that replace the manifest's.
    pub overrides: Overrides,
}

/// Manifest values given on the command line (so that one manifest serves
/// several nodes on one machine).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub name: Option<String>,
    pub listen: Option<SocketAddr>,
    pub ipfs_listen: Option<SocketAddr>,
    /// `--insecure-plain-http`: sets the manifest's
    /// `[network] insecure_plain_http`.
    pub insecure_plain_http: bool,
    /// Appended to the manifest's bootstrap peers.
    pub bootstrap: Vec<String>,
}

impl Overrides {
    fn apply(&self, loaded: &mut Loaded) -> Result<(), InstallError> {
        let cli = |v| toml::Spanned::new(0..0, v);
        let m = &mut loaded.manifest;
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                return Err(InstallError::Usage("--name must not be empty".into()));
            }
            m.node.name = cli(name.clone());
        }
        if let Some(listen) = self.listen {
            m.network.listen = Some(toml::Spanned::new(0..0, listen));
        }
        if self.insecure_plain_http {
            m.network.insecure_plain_http = true;
        }
        if let Some(addr) = self.ipfs_listen {
            if m.network.ipfs == IpfsMode::Kubo {
                return Err(InstallError::Usage(
                    "--ipfs-listen is for the embedded IPFS node; this manifest uses kubo".into(),
                ));
            }
            m.network.ipfs_listen = Some(toml::Spanned::new(0..0, addr));
        }
        for peer in &self.bootstrap {
            if !manifest::valid_bootstrap(peer) {
                return Err(InstallError::Usage(format!(
                    "--bootstrap {peer:?}: expected a multiaddr ending in /p2p/<peer id>, or http(s)://host:port of a running node"
                )));
            }
            m.network.bootstrap.push(cli(peer.clone()));
        }
        Ok(())
    }
}

/// What an install did.
#[derive(Debug, Clone)]
pub struct Report {
    pub node_id: Option<String>,
    pub layout: Layout,
    pub listen: SocketAddr,
    /// The started node's pid.
    pub pid: Option<u32>,
    /// Whether a node from this prefix was running and kept running on the
    /// old configuration (not restarted: no `--start`).
    pub restart_needed: bool,
    /// Enabled plugins: (instance name, mount point).
    pub plugins: Vec<(String, String)>,
    pub lines: Vec<String>,
}

/// The workspace this installer was built in, if it is still there.
fn default_workspace() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    (dir.join("Cargo.toml").is_file() && dir.join("host").is_dir()).then_some(dir)
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, InstallError> {
    let bytes = std::fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
    Ok(source::sha256_hex(&bytes))
}

/// Fails if a TCP address cannot be bound now.
fn check_port(
    loaded: &Loaded,
    addr: SocketAddr,
    span: Option<std::ops::Range<usize>>,
    what: &str,
) -> Result<(), InstallError> {
    if addr.port() == 0 {
        return Ok(());
    }
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) => {
            let message = format!(
                "{what} {addr}: port {} cannot be used ({e}); choose another port",
                addr.port()
            );
            Err(loaded.error_at(span.unwrap_or(0..0), message).into())
        }
    }
}

/// Resolves `http(s)://host:port` bootstrap entries to multiaddrs by asking
/// that node for its identity (through `milagro`, trusting the manifest's
/// `tls_ca` for `https://`, else the system roots).
fn resolve_bootstrap(loaded: &Loaded, milagro: &Path) -> Result<Vec<String>, InstallError> {
    let mut out = Vec::new();
    for peer in &loaded.manifest.network.bootstrap {
        let peer = peer.get_ref();
        if peer.starts_with('/') {
            out.push(peer.clone());
            continue;
        }
        let fail = |message: String| InstallError::Bootstrap {
            peer: peer.clone(),
            message,
        };
        let authority = peer
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or_default();
        let ip = authority
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve {authority}: {e}")))?
            .map(|a| a.ip())
            .find(std::net::IpAddr::is_ipv4)
            .ok_or_else(|| fail(format!("{authority} has no IPv4 address")))?;
        let node = process::Node::Remote {
            url: peer,
            tls_ca: loaded.manifest.network.tls_ca.as_deref(),
        };
        let body = process::api_get(milagro, &node, "/v1/identity").map_err(fail)?;
        let doc: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| fail(format!("bad identity: {e}")))?;
        let peer_id = doc["endpoints"]["peer_id"]
            .as_str()
            .ok_or_else(|| fail("its identity names no IPFS peer ID".into()))?;
        let port = doc["endpoints"]["multiaddrs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .find_map(|a| {
                let mut parts = a.split('/');
                parts.find(|p| *p == "tcp")?;
                parts.next()?.parse::<u16>().ok()
            })
            .ok_or_else(|| fail("its identity names no TCP multiaddr".into()))?;
        out.push(format!("/ip4/{ip}/tcp/{port}/p2p/{peer_id}"));
    }
    Ok(out)
}

/// The data directory: `--data-dir`, the manifest's, the one the existing
/// install uses, or `<prefix>/var/lib/milagro`.
fn data_dir(options: &Options, loaded: &Loaded, prefix: &Path) -> PathBuf {
    if let Some(d) = &options.data_dir {
        return layout::absolute(d);
    }
    if let Some(d) = &loaded.manifest.node.data_dir {
        return layout::absolute(&prefix.join(d));
    }
    let existing = std::fs::read_to_string(prefix.join("etc/milagro/host.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("node")?.get("data_dir")?.as_str().map(PathBuf::from));
    existing.unwrap_or_else(|| prefix.join("var/lib/milagro"))
}

/// Files moved into place, and how to undo that.
struct Transaction {
    prefix: PathBuf,
    work: PathBuf,
    stage: PathBuf,
    backup: PathBuf,
    placed: Vec<&'static str>,
    backed_up: Vec<&'static str>,
    created_prefix: bool,
    data_dir: PathBuf,
    created_data: bool,
}

fn remove_any(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

impl Transaction {
    fn commit(&mut self) -> Result<(), InstallError> {
        for rel in MANAGED {
            let target = self.prefix.join(rel);
            let staged = self.stage.join(rel);
            if target.symlink_metadata().is_ok() {
                let backup = self.backup.join(rel);
                if let Some(parent) = backup.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err("create a backup directory"))?;
                }
                std::fs::rename(&target, &backup)
                    .map_err(io_err(format!("move {} aside", target.display())))?;
                self.backed_up.push(rel);
            }
            if staged.symlink_metadata().is_ok() {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(io_err(format!("create {}", parent.display())))?;
                }
                std::fs::rename(&staged, &target)
                    .map_err(io_err(format!("move {} into place", target.display())))?;
                self.placed.push(rel);
            }
        }
        Ok(())
    }

    /// Puts the previous install back and removes what this run created.
    fn rollback(&self) {
        for rel in &self.placed {
            remove_any(&self.prefix.join(rel));
        }
        for rel in &self.backed_up {
            let _ = std::fs::rename(self.backup.join(rel), self.prefix.join(rel));
        }
        let _ = std::fs::remove_dir_all(&self.work);
        if self.created_data {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
        if self.created_prefix {
            let _ = std::fs::remove_dir_all(&self.prefix);
        } else {
            // Directories this run created and left empty.
            for dir in [
                "share/man",
                "share/bash-completion/completions",
                "share/bash-completion",
                "share/zsh/site-functions",
                "share/zsh",
                "share",
                "bin",
                "lib/milagro",
                "lib/systemd/system",
                "lib/systemd",
                "lib",
                "etc",
                "var/lib",
                "var",
            ] {
                let _ = std::fs::remove_dir(self.prefix.join(dir));
            }
        }
    }

    fn finish(&self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Stages every file of the install in `stage`; returns the plugins' hashes.
fn stage(
    options: &Options,
    loaded: &Loaded,
    layout: &Layout,
    stage: &Path,
    artefacts: &artifacts::Artifacts,
    bootstrap: &[String],
) -> Result<Vec<String>, InstallError> {
    let staged = Layout {
        prefix: stage.to_path_buf(),
        data_dir: layout.data_dir.clone(),
    };
    for dir in [
        staged.bin().parent().map(Path::to_path_buf),
        Some(staged.plugins_dir()),
        staged.host_toml().parent().map(Path::to_path_buf),
    ]
    .into_iter()
    .flatten()
    {
        std::fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    }
    std::fs::copy(&artefacts.milagro, staged.bin())
        .map_err(io_err(format!("copy {}", artefacts.milagro.display())))?;
    for (file, (from, placement)) in &artefacts.libraries {
        let to = staged.plugins_dir().join(file);
        match placement {
            Placement::Copy => std::fs::copy(from, &to).map(drop),
            Placement::Link => std::fs::hard_link(from, &to),
        }
        .map_err(io_err(format!("stage {}", from.display())))?;
    }
    let mut hashes = Vec::new();
    for p in &loaded.plugins {
        let sha = sha256_file(&staged.plugins_dir().join(&p.library))?;
        if let PluginSource::Path(PathSource {
            file,
            sha256: Some(expected),
        }) = &p.source
            && *expected != sha
        {
            return Err(InstallError::Artifact(format!(
                "plugin {:?}: {} has sha256 {sha}, the manifest expects {expected}",
                p.name,
                file.display()
            )));
        }
        hashes.push(sha);
    }
    stage_record(loaded, &staged, artefacts, &hashes)?;
    let text = layout::host_toml(loaded, layout, bootstrap, &hashes)
        .map_err(|e| InstallError::Usage(format!("cannot write host.toml: {e}")))?;
    std::fs::write(staged.host_toml(), text).map_err(io_err("write host.toml"))?;
    std::fs::write(
        staged.host_toml().with_file_name("manifest.toml"),
        &loaded.text,
    )
    .map_err(io_err("copy the manifest"))?;
    operator_docs(&staged)?;
    if options.systemd || loaded.manifest.install.systemd {
        let unit = staged.unit();
        if let Some(parent) = unit.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("create the systemd directory"))?;
        }
        std::fs::write(
            &unit,
            layout::systemd_unit(loaded.manifest.node.name.get_ref(), layout),
        )
        .map_err(io_err("write the systemd unit"))?;
    }
    Ok(hashes)
}

/// Stages the install record and the lockfiles of plugins built from
/// source.
fn stage_record(
    loaded: &Loaded,
    staged: &Layout,
    artefacts: &artifacts::Artifacts,
    hashes: &[String],
) -> Result<(), InstallError> {
    let mut installed = Record::default();
    for (p, sha256) in loaded.plugins.iter().zip(hashes) {
        let lockfile = match artefacts.lockfiles.get(&p.name) {
            Some(from) => {
                let name = record::lockfile_name(&p.name);
                let to = record::in_etc(staged, &name);
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err("create etc/milagro/locks"))?;
                }
                std::fs::copy(from, &to).map_err(io_err(format!("copy {}", from.display())))?;
                Some(name)
            }
            None => None,
        };
        installed.plugins.push(record::Installed {
            name: p.name.clone(),
            plugin: p.kind.clone(),
            library: p.library.clone(),
            source: p.source.pin(),
            sha256: sha256.clone(),
            lockfile,
        });
    }
    let text = installed
        .to_text()
        .map_err(|e| InstallError::Usage(format!("cannot write the install record: {e}")))?;
    std::fs::write(record::path(staged), text).map_err(io_err("write the install record"))
}

/// The staged `milagro`'s man pages and shell completions, generated by
/// the binary itself (`milagro man`, `milagro completions`), so they
/// describe the commands installed beside them.
fn operator_docs(staged: &Layout) -> Result<(), InstallError> {
    let generate = |args: &[&std::ffi::OsStr], what: &str| {
        let out = std::process::Command::new(staged.bin())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(io_err(format!("run {} for {what}", staged.bin().display())))?;
        if !out.status.success() {
            return Err(InstallError::Artifact(format!(
                "`milagro {}` failed: {}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    };
    let man = staged.man_dir();
    generate(
        &["man".as_ref(), "--dir".as_ref(), man.as_os_str()],
        "the man pages",
    )?;
    for (shell, path) in staged.completions() {
        let script = generate(&["completions".as_ref(), shell.as_ref()], "the completions")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("create {}", parent.display())))?;
        }
        std::fs::write(&path, script).map_err(io_err(format!("write {}", path.display())))?;
    }
    Ok(())
}

/// Runs one install.
pub fn install(options: &Options) -> Result<Report, InstallError> {
    let started = Instant::now();
    let mut loaded = manifest::load(&options.manifest)?;
    options.overrides.apply(&mut loaded)?;
    let prefix = layout::absolute(&options.prefix);
    let layout = Layout {
        data_dir: data_dir(options, &loaded, &prefix),
        prefix: prefix.clone(),
    };
    let listen = loaded.listen();
    let running = process::running(&layout);
    let plugins: Vec<(String, String)> = loaded
        .plugins
        .iter()
        .filter(|p| p.enabled)
        .map(|p| {
            let mount = p.mount.clone().unwrap_or_else(|| format!("/v1/{}", p.name));
            (p.name.clone(), mount)
        })
        .collect();

    // Everything is checked before anything is built or written.
    if running.is_none() {
        let net = &loaded.manifest.network;
        check_port(
            &loaded,
            listen,
            net.listen.as_ref().map(toml::Spanned::span),
            "HTTP listen address",
        )?;
        if let Some(addr) = layout::ipfs_listen(&loaded) {
            check_port(
                &loaded,
                addr,
                net.ipfs_listen.as_ref().map(toml::Spanned::span),
                "IPFS listen address",
            )?;
        }
    }
    if loaded.manifest.network.ipfs == IpfsMode::Kubo && loaded.manifest.network.ipfs_api.is_none()
    {
        return Err(loaded
            .error_at(
                0..0,
                "[network] ipfs = \"kubo\" needs ipfs_api (the RPC API's URL)",
            )
            .into());
    }
    let source = match (&options.artifacts, &options.workspace) {
        (Some(dir), _) => Source::Dir(layout::absolute(dir)),
        (None, Some(ws)) => Source::Build {
            workspace: layout::absolute(ws),
        },
        (None, None) => Source::Build {
            workspace: default_workspace().ok_or_else(|| {
                InstallError::Usage(
                    "no workspace to build from: pass --artifacts DIR (built milagro and plugin libraries) or --workspace DIR".into(),
                )
            })?,
        },
    };
    artifacts::check(&source, &loaded.plugins)?;
    if options.force_new_identity && running.is_some() && !options.start {
        return Err(InstallError::Usage(format!(
            "the node is running (pid {}): --force-new-identity needs it stopped; add --start to restart it",
            running.unwrap_or_default()
        )));
    }

    if options.dry_run {
        let mut lines = vec![format!(
            "dry run: would install node {:?} into {}",
            loaded.manifest.node.name.get_ref(),
            prefix.display()
        )];
        match &source {
            Source::Build { workspace } => lines.push(format!(
                "  build in {}: cargo build --release --locked -p {}",
                workspace.display(),
                artifacts::packages(&loaded.plugins).join(" -p ")
            )),
            Source::Dir(dir) => lines.push(format!("  artefacts from {}", dir.display())),
        }
        for p in &loaded.plugins {
            lines.push(format!(
                "  plugin {} ({}, {}){}{}",
                p.name,
                p.kind,
                p.source.pin(),
                p.mount
                    .as_deref()
                    .map(|m| format!(" at {m}"))
                    .unwrap_or_default(),
                if p.enabled { "" } else { ", disabled" }
            ));
        }
        lines.push(format!("  config {}", layout.host_toml().display()));
        lines.push(format!("  data {}", layout.data_dir.display()));
        return Ok(Report {
            node_id: None,
            layout,
            listen,
            pid: None,
            restart_needed: false,
            plugins,
            lines,
        });
    }

    let workspace = options
        .workspace
        .as_deref()
        .map(layout::absolute)
        .or_else(default_workspace);
    let artefacts = artifacts::obtain(
        &source,
        &loaded.plugins,
        &layout,
        workspace.as_deref(),
        &Progress::default(),
    )?;
    let bootstrap = resolve_bootstrap(&loaded, &artefacts.milagro)?;

    let created_prefix = !prefix.exists();
    let work = layout.work();
    let mut tx = Transaction {
        prefix: prefix.clone(),
        stage: work.join(format!("stage-{}", std::process::id())),
        backup: work.join(format!("backup-{}", std::process::id())),
        work,
        placed: Vec::new(),
        backed_up: Vec::new(),
        created_prefix,
        data_dir: layout.data_dir.clone(),
        created_data: !layout.data_dir.exists(),
    };
    let result = (|| {
        std::fs::create_dir_all(&tx.stage)
            .map_err(io_err(format!("create {}", tx.stage.display())))?;
        let hashes = stage(options, &loaded, &layout, &tx.stage, &artefacts, &bootstrap)?;
        tx.commit()?;
        let mut lines = Vec::new();
        let mut restart_needed = false;
        if let Some(pid) = running {
            if options.start {
                lines.push(format!("stopped the running node (pid {pid})"));
                process::stop(&layout, pid)?;
            } else {
                restart_needed = true;
                return Ok((None, lines, restart_needed));
            }
        }
        let had_data = layout.data_dir.join("milagro.redb").exists();
        // `init` and `rotate` run on the node's config without bootstrap
        // peers: they need none, and a peer that saw this node's IPFS
        // identity connect briefly for `init` and then again for `serve`
        // cannot fetch blocks from it (docs/install.md, known issue).
        let init_config = tx.work.join("init.toml");
        let text = layout::host_toml(&loaded, &layout, &[], &hashes)
            .map_err(|e| InstallError::Usage(format!("cannot write host.toml: {e}")))?;
        std::fs::write(&init_config, text).map_err(io_err("write the init config"))?;
        let mut node_id = process::init(&layout, &init_config)?;
        if options.force_new_identity && had_data {
            let old = node_id.clone();
            node_id = process::rotate(&layout, &init_config)?;
            lines.push(format!("replaced identity {old} with {node_id}"));
        }
        Ok((Some(node_id), lines, restart_needed))
    })();
    let (node_id, mut lines, restart_needed) = match result {
        Ok(r) => r,
        Err(e) => {
            tx.rollback();
            return Err(e);
        }
    };
    tx.finish();
    lines.insert(
        0,
        format!(
            "installed node {:?} into {} in {:.1} s",
            loaded.manifest.node.name.get_ref(),
            prefix.display(),
            started.elapsed().as_secs_f64()
        ),
    );

    let pid = if options.start && !restart_needed {
        let scheme = match loaded.manifest.network.tls_cert {
            Some(_) => "https",
            None => "http",
        };
        Some(process::start(
            &layout,
            listen,
            scheme,
            options.start_timeout,
        )?)
    } else {
        None
    };
    let node_id = match node_id {
        Some(id) => Some(id),
        None => {
            let config = layout.host_toml();
            process::api_get(
                &layout.bin(),
                &process::Node::Local(&config),
                "/v1/identity",
            )
            .ok()
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| v["id"].as_str().map(String::from))
        }
    };
    Ok(Report {
        node_id,
        layout,
        listen,
        pid,
        restart_needed,
        plugins,
        lines,
    })
}

impl Report {
    /// The summary printed after an install.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for line in &self.lines {
            s.push_str(line);
            s.push('\n');
        }
        let base = format!("http://{}", process::reachable(self.listen));
        let mut row = |k: &str, v: String| s.push_str(&format!("  {k:<10} {v}\n"));
        if let Some(id) = &self.node_id {
            row("node ID", id.clone());
        }
        row("config", self.layout.host_toml().display().to_string());
        row("data", self.layout.data_dir.display().to_string());
        row(
            "API token",
            format!(
                "{} (created on first start, mode 0600)",
                self.layout.token().display()
            ),
        );
        row("status", format!("{base}/v1/status"));
        row("identity", format!("{base}/v1/identity"));
        for (name, mount) in &self.plugins {
            row("plugin", format!("{name}: {base}{mount}"));
        }
        row("log", self.layout.log().display().to_string());
        match (self.pid, self.restart_needed) {
            (Some(pid), _) => row(
                "running",
                format!(
                    "pid {pid} ({}); stop: kill $(cat {})",
                    self.layout.pid_file().display(),
                    self.layout.pid_file().display()
                ),
            ),
            (None, true) => row(
                "restart",
                "the node is running on its previous configuration: restart it (or re-run with --start) to apply".into(),
            ),
            (None, false) => row(
                "start",
                format!(
                    "{} serve --config {}  (or re-run with --start)",
                    self.layout.bin().display(),
                    self.layout.host_toml().display()
                ),
            ),
        }
        s
    }
}
