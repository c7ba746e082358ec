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

//! Install manifests (`manifests/*.toml`): what a node is for (its plugins
//! and their configs) and where it listens. Parsed strictly, like host.toml
//! (unknown keys are errors), and every error names the file, the line and
//! column of the offending value, and what is expected.

use std::{
    collections::HashSet,
    fmt,
    net::SocketAddr,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

use milagro_plugin_api::mount;

use crate::{
    catalog::{self, KnownPlugin},
    entry::Plugin,
    source::PluginSource,
};

/// A manifest that could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `path:line:column: message`.
    #[error("{}", .0)]
    At(Located),
}

/// A message about a place in a file.
#[derive(Debug, Clone)]
pub struct Located {
    pub path: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Where a byte span starts, as a 1-based (line, column) in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses TOML text into `T`, turning toml's error (which carries a span)
/// into a one-line `path:line:column: message`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, Located> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
        Located {
            path: path.to_owned(),
            line,
            column,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

/// The manifest, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub node: Node,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub keystore: Keystore,
    #[serde(default)]
    pub install: InstallOptions,
    #[serde(default)]
    pub plugins: Vec<Plugin>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Human-readable node name (published in its identity document).
    pub name: Spanned<String>,
    /// Where the node keeps its database, keys and token; relative paths are
    /// relative to the prefix. Default `<prefix>/var/lib/milagro`.
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpfsMode {
    #[default]
    Embedded,
    Kubo,
}

/// `[network] routing`: host.toml `[ipfs] routing` (see docs/install.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Only the bootstrap peers and the peers identity documents name.
    #[default]
    None,
    /// The public IPFS DHT, joined through the bootstrap peers.
    Dht,
    /// Kubo's LAN DHT (private networks; embedded IPFS only).
    LanDht,
}

impl Routing {
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::None => "none",
            Routing::Dht => "dht",
            Routing::LanDht => "lan-dht",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportMode {
    #[default]
    Pubsub,
    Http,
}

impl TransportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportMode::Pubsub => "pubsub",
            TransportMode::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// HTTP API address; default 127.0.0.1:7070.
    pub listen: Option<Spanned<SocketAddr>>,
    /// `embedded` (default) or `kubo` (an external node's RPC API).
    #[serde(default)]
    pub ipfs: IpfsMode,
    /// Embedded IPFS: TCP address of the libp2p listener; default a random port.
    pub ipfs_listen: Option<Spanned<SocketAddr>>,
    /// Kubo mode: the RPC API's base URL.
    pub ipfs_api: Option<String>,
    /// Peers dialled at start: multiaddrs ending in `/p2p/<peer id>`, or the
    /// `http://host:port` of a running node, resolved when installing.
    #[serde(default)]
    pub bootstrap: Vec<Spanned<String>>,
    /// How peers and blocks are found beyond the bootstrap peers.
    #[serde(default)]
    pub routing: Routing,
    /// HTTP URLs peers reach this node at (identity document); default the
    /// listen address.
    #[serde(default)]
    pub advertise: Vec<String>,
    /// How envelopes travel: `pubsub` (default) or `http`.
    #[serde(default)]
    pub transport: TransportMode,
    /// Plain HTTP on a non-loopback `listen` address (host.toml `[http]
    /// insecure_plain_http`): only behind a proxy that terminates TLS.
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// The listener's certificate chain and key (PEM), and the CA bundle
    /// trusted for outbound HTTPS: host.toml `[http] tls_cert`, `tls_key`,
    /// `tls_ca`. With a certificate, advertised endpoints are `https://`.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    pub tls_ca: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keystore {
    /// `file` (default) or `hsm-keystore` (needs the hsm-keystore plugin).
    #[serde(default = "file_backend")]
    pub backend: Spanned<String>,
    /// File backend: derive the master key from the passphrase in this
    /// environment variable instead of a master.key file.
    pub passphrase_env: Option<String>,
}

fn file_backend() -> Spanned<String> {
    Spanned::new(0..0, "file".into())
}

impl Default for Keystore {
    fn default() -> Self {
        Keystore {
            backend: file_backend(),
            passphrase_env: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallOptions {
    /// Also write a systemd unit (`<prefix>/lib/systemd/system/milagro.service`).
    #[serde(default)]
    pub systemd: bool,
}

/// A plugin entry after validation.
#[derive(Debug, Clone)]
pub struct PluginPlan {
    pub name: String,
    /// Which plugin: `plugin = ...`, else the instance name.
    pub kind: String,
    pub enabled: bool,
    pub mount: Option<String>,
    /// Where its library comes from.
    pub source: PluginSource,
    /// The library's file name in the prefix's plugin directory.
    pub library: String,
    pub config: toml::Table,
}

/// The library file of an instance: a catalog plugin's own name when it
/// comes from this workspace or a local path (as before sources), else one
/// per instance (`<name>.so`, never a catalog name: those hold a '_'), so
/// that two sources never write one file.
fn library_file(name: &str, known: Option<&KnownPlugin>, source: &PluginSource) -> String {
    match (known, source) {
        (Some(k), PluginSource::Workspace(_) | PluginSource::Path(_)) => k.library.to_string(),
        _ => format!("{name}.so"),
    }
}

/// A manifest that was read and accepted, with the text kept for messages.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub manifest: Manifest,
    pub plugins: Vec<PluginPlan>,
}

impl Loaded {
    /// An error about the value at `span`.
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ManifestError {
        let (line, column) = if span.is_empty() && span.start == 0 {
            (0, 0)
        } else {
            line_col(&self.text, span.start)
        };
        ManifestError::At(Located {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        })
    }

    /// Whether the node publishes a beneficiary key: it does when a
    /// beneficiary plugin is listed (enabled or not, so that enabling it
    /// later needs no new identity).
    pub fn beneficiary(&self) -> bool {
        self.plugins.iter().any(|p| p.kind == "beneficiary")
    }

    pub fn listen(&self) -> SocketAddr {
        self.manifest
            .network
            .listen
            .as_ref()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 7070)), |l| *l.get_ref())
    }
}

/// Reads, parses and validates a manifest.
pub fn load(path: &Path) -> Result<Loaded, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let manifest: Manifest = parse_toml(path, &text).map_err(ManifestError::At)?;
    let mut loaded = Loaded {
        path: path.to_owned(),
        text,
        manifest,
        plugins: Vec::new(),
    };
    loaded.plugins = validate(&loaded)?;
    Ok(loaded)
}

/// A bootstrap entry: a multiaddr with `/p2p/<peer id>`, or the `http://`
/// or `https://` base URL of a running node.
pub fn valid_bootstrap(peer: &str) -> bool {
    if peer.starts_with('/') {
        peer.contains("/p2p/")
    } else {
        peer.starts_with("http://") || peer.starts_with("https://")
    }
}

fn validate(loaded: &Loaded) -> Result<Vec<PluginPlan>, ManifestError> {
    let m = &loaded.manifest;
    if m.node.name.get_ref().trim().is_empty() {
        return Err(loaded.error_at(m.node.name.span(), "[node] name must not be empty"));
    }
    let net = &m.network;
    if net.ipfs == IpfsMode::Kubo && net.ipfs_listen.is_some() {
        let span = net.ipfs_listen.as_ref().map_or(0..0, Spanned::span);
        return Err(loaded.error_at(
            span,
            "ipfs_listen is for the embedded IPFS node; with ipfs = \"kubo\" set ipfs_api",
        ));
    }
    for peer in &net.bootstrap {
        let p = peer.get_ref();
        if !valid_bootstrap(p) {
            return Err(loaded.error_at(
                peer.span(),
                format!(
                    "bootstrap peer {p:?}: expected a multiaddr ending in /p2p/<peer id>, or http(s)://host:port of a running node"
                ),
            ));
        }
    }
    for url in &net.advertise {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(loaded.error_at(
                0..0,
                format!("[network] advertise: {url:?} is not an http(s) URL"),
            ));
        }
    }

    let manifest_dir = loaded.path.parent().unwrap_or(Path::new("."));
    let mut names = HashSet::new();
    let mut mounts: Vec<(String, String)> = Vec::new();
    let mut plans = Vec::new();
    for p in &m.plugins {
        let name = p.name.get_ref();
        if !mount::valid_instance_name(name) {
            return Err(loaded.error_at(p.name.span(), mount::invalid_name_reason(name)));
        }
        if !names.insert(name.clone()) {
            return Err(
                loaded.error_at(p.name.span(), format!("plugin name {name:?} appears twice"))
            );
        }
        let (kind, kind_span) = match &p.plugin {
            Some(k) => (k.get_ref().as_str(), k.span()),
            None => (name.as_str(), p.name.span()),
        };
        let known = catalog::find(kind);
        let source = PluginSource::from_entry(p, manifest_dir)
            .map_err(|e| loaded.error_at(e.span, e.message))?;
        let source = match (source, known) {
            (Some(source), _) => source,
            (None, Some(known)) => PluginSource::Workspace(known),
            (None, None) => {
                return Err(loaded.error_at(
                    kind_span.clone(),
                    format!(
                        "unknown plugin {kind:?}: expected one of {}, or a source (url, git, crate or path) for a third-party plugin",
                        catalog::names()
                    ),
                ));
            }
        };
        if !mount::valid_instance_name(kind) {
            return Err(loaded.error_at(
                kind_span.clone(),
                format!("plugin {kind:?}: expected a non-empty name of a-z, 0-9 and '-'"),
            ));
        }
        if kind == "beneficiary" && name != "beneficiary" {
            return Err(loaded.error_at(
                p.name.span(),
                format!(
                    "plugin name {name:?}: the beneficiary plugin's instance must be named \"beneficiary\" (the host lends the beneficiary key to that instance only)"
                ),
            ));
        }
        let mount = match &p.mount {
            Some(m) => Some((m.get_ref().clone(), m.span())),
            None if kind == name => known
                .and_then(|k| k.mount)
                .map(|m| (m.to_string(), p.name.span())),
            None => None,
        };
        if p.enabled {
            let (effective, span) = mount
                .clone()
                .unwrap_or_else(|| (format!("/v1/{name}"), p.name.span()));
            if let Some(why) = mount::mount_refusal(&effective) {
                return Err(loaded.error_at(span, why));
            }
            if let Some((other, _)) = mounts.iter().find(|(_, m)| mount::overlaps(&effective, m)) {
                return Err(loaded.error_at(
                    span,
                    format!("mount {effective:?} overlaps the mount of plugin {other:?}"),
                ));
            }
            mounts.push((name.clone(), effective));
        }
        plans.push(PluginPlan {
            name: name.clone(),
            kind: kind.to_string(),
            enabled: p.enabled,
            mount: mount.map(|(m, _)| m),
            library: library_file(name, known, &source),
            source,
            config: p.config.clone(),
        });
    }

    let backend = m.keystore.backend.get_ref().as_str();
    match backend {
        "file" => {}
        "hsm-keystore" => {
            if !plans.iter().any(|p| p.kind == "hsm-keystore" && p.enabled) {
                return Err(loaded.error_at(
                    m.keystore.backend.span(),
                    "keystore backend \"hsm-keystore\" needs an enabled [[plugins]] entry for the hsm-keystore plugin",
                ));
            }
            if m.keystore.passphrase_env.is_some() {
                return Err(loaded.error_at(
                    m.keystore.backend.span(),
                    "passphrase_env is for the file keystore; the HSM's PIN goes in the hsm-keystore plugin's config",
                ));
            }
        }
        other => {
            return Err(loaded.error_at(
                m.keystore.backend.span(),
                format!("keystore backend {other:?}: expected \"file\" or \"hsm-keystore\""),
            ));
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Loaded, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|e| e.to_string())
    }

    const NODE: &str = "[node]\nname = \"n\"\n";

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn a_minimal_manifest_gets_defaults() {
        let l = load_str(NODE).unwrap();
        assert_eq!(l.listen().to_string(), "127.0.0.1:7070");
        assert!(l.plugins.is_empty() && !l.beneficiary());
    }

    #[test]
    fn errors_name_file_line_column_and_what_is_expected() {
        let cases = [
            (
                format!("{NODE}colour = 1\n"),
                ":3:1: unknown field `colour`",
            ),
            ("[node\n".to_string(), ":1:"),
            ("[network]\n".to_string(), "missing field `node`"),
            (
                format!("{NODE}[network]\nrouting = \"mdns\"\n"),
                ":4:11: unknown variant `mdns`, expected one of `none`, `dht`, `lan-dht`",
            ),
            (
                format!("{NODE}[[plugins]]\nname = \"wallet\"\n"),
                ":4:8: unknown plugin \"wallet\": expected one of example, dta",
            ),
            (
                format!("{NODE}[network]\nlisten = \"nowhere\"\n"),
                ":4:10: invalid socket address",
            ),
            (
                format!("{NODE}[[plugins]]\nname = \"Ex\"\nplugin = \"example\"\n"),
                ":4:8: plugin name \"Ex\"",
            ),
            (
                format!("{NODE}[[plugins]]\nname = \"example\"\nmount = \"/v1/status\"\n"),
                "overlaps the host's own route",
            ),
            (
                format!("{NODE}[keystore]\nbackend = \"hsm-keystore\"\n"),
                ":4:11: keystore backend \"hsm-keystore\" needs",
            ),
            (
                format!("{NODE}[network]\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]\n"),
                "expected a multiaddr ending in /p2p/",
            ),
            (
                format!("{NODE}[[plugins]]\nname = \"dta\"\npath = \"missing.so\"\n"),
                "does not exist",
            ),
            (
                format!("{NODE}[[plugins]]\nname = \"ben\"\nplugin = \"beneficiary\"\n"),
                ":4:8: plugin name \"ben\": the beneficiary plugin's instance must be named",
            ),
        ];
        for (text, expected) in cases {
            let err = load_str(&text).unwrap_err();
            assert!(err.contains(expected), "{text:?}\n -> {err}");
            assert!(err.contains("m.toml"), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn plugins_get_their_usual_mounts_and_beneficiary_follows_the_plugin() {
        let l = load_str(&format!(
            "{NODE}[[plugins]]\nname = \"custody-principal\"\n[[plugins]]\nname = \"beneficiary\"\nenabled = false\n[[plugins]]\nname = \"dta-2\"\nplugin = \"dta\"\n"
        ))
        .unwrap();
        assert_eq!(l.plugins[0].mount.as_deref(), Some("/v1/custody"));
        assert!(l.beneficiary());
        assert_eq!(l.plugins[2].kind, "dta");
        assert_eq!(l.plugins[2].mount, None);
    }

    #[test]
    fn sources_are_pinned_and_checked() {
        let sha = "AB".repeat(32);
        let rev = "0123456789abcdef0123456789abcdef01234567";
        let entry = |keys: &str| format!("{NODE}[[plugins]]\nname = \"ext\"\n{keys}\n");
        let l = load_str(&entry(&format!(
            "url = \"https://example.org/x.so\"\nsha256 = \"{sha}\""
        )))
        .unwrap();
        assert_eq!(
            l.plugins[0].source.pin(),
            format!("url+https://example.org/x.so#sha256={}", "ab".repeat(32))
        );
        assert_eq!(l.plugins[0].library, "ext.so");
        assert!(l.plugins[0].source.is_fetched());
        let l = load_str(&entry(&format!(
            "git = \"file:///srv/ext\"\nrev = \"{}\"",
            rev.to_uppercase()
        )))
        .unwrap();
        assert_eq!(
            l.plugins[0].source.pin(),
            format!("git+file:///srv/ext#{rev}")
        );
        let l = load_str(&entry("crate = \"ext-plugin\"\nversion = \"1.2.3-rc.1\"")).unwrap();
        assert_eq!(
            l.plugins[0].source.pin(),
            "registry+crates-io:ext-plugin@1.2.3-rc.1"
        );
        let l = load_str(&entry(
            "url = \"http://127.0.0.1:8000/x.so\"\nsha256 = \"00\"",
        ))
        .unwrap_err();
        assert!(l.contains(":6:10: sha256: expected 64 hex digits"), "{l}");
        for (keys, expected) in [
            (
                "crate = \"a\"\nversion = \"1.0.0\"\ngit = \"https://e.org/a\"",
                "give one source, not git and crate",
            ),
            ("url = \"http://[::1]:80/x.so\"", "needs sha256"),
            (
                "url = \"http://10.0.0.1/x.so\"\nsha256 = \"00\"",
                "plain http is allowed to loopback only",
            ),
            (
                "git = \"http://10.0.0.1/x\"\nrev = \"0123456789abcdef0123456789abcdef01234567\"",
                "plain http is allowed to loopback only",
            ),
            (
                "git = \"https://e.org/x\"\nrev = \"v1.0.0\"",
                "rev \"v1.0.0\": expected a full commit ID",
            ),
            ("crate = \"a\"\nversion = \"~1.2.3\"", "not a range"),
            ("crate = \"a\"\nversion = \"1.2.3.4\"", "not a range"),
            (
                "signature = \"https://e.org/x.minisig\"",
                "signature goes with url",
            ),
        ] {
            let err = load_str(&entry(keys)).unwrap_err();
            assert!(err.contains(expected), "{keys:?}\n -> {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
