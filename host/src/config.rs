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

//! host.toml: the node's configuration, parsed strictly (unknown keys are
//! errors) and validated before anything starts.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use milagro_plugin_api::mount;
use serde::Deserialize;

/// Why a configuration was refused. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub ipfs: milagro_ipfs::IpfsConfig,
    #[serde(default)]
    pub keystore: crate::keystore::KeystoreConfig,
    #[serde(default)]
    pub identity: crate::identity::IdentityConfig,
    #[serde(default)]
    pub transport: crate::transport::TransportConfig,
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Human-readable node name (published in the identity document).
    pub name: String,
    /// Where the node keeps its database, keys and token. Relative paths are
    /// relative to the config file.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The operator's bearer token; created (mode 0600) if absent.
    /// Default: `<data_dir>/api-token`.
    pub token_file: Option<PathBuf>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long a plugin handler may run before the host answers 504.
    pub handler_timeout_ms: u64,
    /// Per-client-address limit on public plugin routes.
    pub rate_limit: crate::rate_limit::RateLimitConfig,
    /// The listener's certificate chain (PEM, leaf first). With `tls_key`,
    /// the listener speaks only TLS; both are read again on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// The listener's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) trusted for outbound HTTPS (deliveries, the CLI);
    /// default the system's root store.
    pub tls_ca: Option<PathBuf>,
    /// CA bundle (PEM): only clients presenting a certificate that chains
    /// to it may `POST /v1/inbox` (the other nodes, with their own
    /// `tls_cert`); needs `tls_cert`. Default: any client may deliver.
    pub inbox_client_ca: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address. Without it, a node
    /// without `tls_cert` refuses to listen anywhere but loopback, so the
    /// operator token never crosses a network in clear by accident.
    pub insecure_plain_http: bool,
}

impl HttpConfig {
    /// Whether the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The scheme peers and the CLI reach the listener with.
    pub fn scheme(&self) -> &'static str {
        if self.tls() { "https" } else { "http" }
    }

    /// `Err` when the listener settings would expose the API in clear.
    fn validate(&self) -> Result<(), String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("[http] tls_cert and tls_key must be set together".into());
        }
        if self.inbox_client_ca.is_some() && !self.tls() {
            return Err(
                "[http] inbox_client_ca needs tls_cert and tls_key: client certificates exist only inside TLS"
                    .into(),
            );
        }
        if !self.tls() && !self.listen.ip().is_loopback() && !self.insecure_plain_http {
            return Err(format!(
                "[http] listen = \"{}\" is not a loopback address and no tls_cert/tls_key is set: \
                 the operator token would cross the network in clear; configure TLS, or set \
                 insecure_plain_http = true if a TLS proxy in front of the node terminates it",
                self.listen
            ));
        }
        Ok(())
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            token_file: None,
            max_body_bytes: 1024 * 1024,
            handler_timeout_ms: 30_000,
            rate_limit: crate::rate_limit::RateLimitConfig::default(),
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            inbox_client_ca: None,
            insecure_plain_http: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Instance name: unique in the node, `[a-z0-9-]`.
    pub name: String,
    /// The plugin library (`.so`). Relative paths are relative to the config file.
    pub path: PathBuf,
    /// Hex SHA-256 of the library; the host refuses a file that differs.
    pub sha256: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where its routes are mounted; default `/v1/<name>`.
    pub mount: Option<String>,
    /// Passed to the plugin's constructor.
    #[serde(default)]
    pub config: toml::Table,
}

fn yes() -> bool {
    true
}

impl PluginConfig {
    pub fn mount(&self) -> String {
        self.mount
            .clone()
            .unwrap_or_else(|| format!("/v1/{}", self.name))
    }

    /// The `config` table as the JSON text handed to the plugin's constructor.
    pub fn config_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&self.config)
    }
}

impl Config {
    /// Reads, parses and validates a config file, resolving relative paths
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates the text of the config file at `path` (which
    /// only names the file in errors and anchors relative paths): no I/O, so
    /// the decoder can be fuzzed (proto/fuzz, target `host_config`).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.node.data_dir = base.join(&config.node.data_dir);
        if let Some(token) = &mut config.http.token_file {
            *token = base.join(&*token);
        }
        for file in [
            &mut config.http.tls_cert,
            &mut config.http.tls_key,
            &mut config.http.tls_ca,
            &mut config.http.inbox_client_ca,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
        for plugin in &mut config.plugins {
            plugin.path = base.join(&plugin.path);
        }
        if let Some(repo) = &mut config.ipfs.repo {
            *repo = base.join(&*repo);
        }
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.node.name.trim().is_empty() {
            return Err("[node] name must not be empty".into());
        }
        if self.http.max_body_bytes == 0 || self.http.handler_timeout_ms == 0 {
            return Err("[http] max_body_bytes and handler_timeout_ms must be positive".into());
        }
        self.http.rate_limit.validate()?;
        self.http.validate()?;
        let transport = &self.transport;
        if transport.http_connect_timeout_ms == 0 || transport.http_request_timeout_ms == 0 {
            return Err(
                "[transport] http_connect_timeout_ms and http_request_timeout_ms must be positive"
                    .into(),
            );
        }
        crate::outbound::EndpointPolicy::new(
            transport.allow_private_endpoints,
            &transport.allowed_endpoints,
        )?;
        let backend = self.keystore.backend.as_str();
        if backend != "file" && !self.plugins.iter().any(|p| p.enabled && p.name == backend) {
            return Err(format!(
                "[keystore] backend {backend:?} must be \"file\" or the name of an enabled [[plugins]] entry"
            ));
        }
        let mut names = HashSet::new();
        let mut mounts = HashSet::new();
        for p in &self.plugins {
            if !mount::valid_instance_name(&p.name) {
                return Err(mount::invalid_name_reason(&p.name));
            }
            if !names.insert(p.name.as_str()) {
                return Err(format!("plugin name {:?} appears twice", p.name));
            }
            if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("plugin {:?}: sha256 must be 64 hex digits", p.name));
            }
            if !p.enabled {
                continue;
            }
            let mount = p.mount();
            if let Some(why) = mount::mount_refusal(&mount) {
                return Err(format!("plugin {:?}: {why}", p.name));
            }
            if !mounts.insert(mount.clone()) {
                return Err(format!("mount {mount:?} is used by two plugins"));
            }
        }
        Ok(())
    }

    /// The token file, defaulting into the data dir.
    pub fn token_file(&self) -> PathBuf {
        self.http
            .token_file
            .clone()
            .unwrap_or_else(|| self.node.data_dir.join("api-token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("milagro-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.toml", sha_of(text)));
        std::fs::write(&path, text).unwrap();
        let result = Config::load(&path);
        std::fs::remove_file(&path).unwrap();
        result
    }

    fn sha_of(text: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        h.finish()
    }

    const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn plugin(name: &str, extra: &str) -> String {
        format!("[[plugins]]\nname = \"{name}\"\npath = \"lib.so\"\nsha256 = \"{HASH}\"\n{extra}\n")
    }

    /// The seeds of the `host_config` fuzz target are valid configs, so the
    /// fuzzer starts from inputs that reach validation and the JSON handed
    /// to plugins.
    #[test]
    fn fuzz_seeds_parse_and_their_plugin_tables_convert_to_json() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/fuzz/seeds/host_config");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let config =
                Config::parse(&text, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for plugin in &config.plugins {
                let json: serde_json::Value =
                    serde_json::from_str(&plugin.config_json().unwrap()).unwrap();
                assert!(json.is_object());
            }
            seeds += 1;
        }
        assert!(seeds >= 3, "seeds in {}", dir.display());
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = load_str("[node]\nname = \"n\"\ndata_dir = \"data\"\n").unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:7070");
        assert!(c.node.data_dir.is_absolute() || c.node.data_dir.starts_with(std::env::temp_dir()));
        assert!(c.token_file().ends_with("data/api-token"));
    }

    #[test]
    fn plain_http_off_loopback_needs_the_opt_in_and_tls_needs_both_files() {
        let base = "[node]\nname = \"n\"\ndata_dir = \"d\"\n[http]\n";
        let e = load_str(&format!("{base}listen = \"0.0.0.0:7070\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("insecure_plain_http") && e.contains("0.0.0.0"),
            "{e}"
        );
        let e = load_str(&format!(
            "{base}listen = \"[::]:7070\"\ntls_cert = \"c.pem\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("together"), "{e}");
        let c = load_str(&format!(
            "{base}listen = \"0.0.0.0:7070\"\ninsecure_plain_http = true\n"
        ))
        .unwrap();
        assert_eq!(c.http.scheme(), "http");
        let c = load_str(&format!(
            "{base}listen = \"0.0.0.0:7070\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
        ))
        .unwrap();
        assert_eq!(c.http.scheme(), "https");
        assert!(
            c.http.tls_key.unwrap().is_absolute()
                || c.http.tls_cert.unwrap().starts_with(std::env::temp_dir())
        );
        load_str(&format!("{base}listen = \"[::1]:7070\"\n")).unwrap();
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_the_file_and_line() {
        let e = load_str("[node]\nname = \"n\"\ndata_dir = \"d\"\ncolour = 1\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("colour") && msg.contains(".toml") && msg.contains("line 4"),
            "{msg}"
        );
        let e = load_str("[node\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn plugin_names_hashes_and_mounts_are_validated() {
        let base = "[node]\nname = \"n\"\ndata_dir = \"d\"\n";
        let cases = [
            (plugin("Bad_Name", ""), "a-z"),
            (
                format!("{}{}", plugin("a", ""), plugin("a", "mount = \"/v1/x\"")),
                "twice",
            ),
            (
                plugin("a", "sha256 = \"zz\"").replace(&format!("sha256 = \"{HASH}\"\n"), ""),
                "64 hex",
            ),
            (plugin("a", "mount = \"/v1/status\""), "overlaps"),
            (plugin("a", "mount = \"/v1\""), "overlaps"),
            (plugin("a", "mount = \"/v1/x/../y\""), "mount"),
            (
                format!(
                    "{}{}",
                    plugin("a", "mount = \"/m\""),
                    plugin("b", "mount = \"/m\"")
                ),
                "two plugins",
            ),
        ];
        for (plugins, expected) in cases {
            let err = load_str(&format!("{base}{plugins}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{plugins} -> {err}");
        }
        let ok = load_str(&format!(
            "{base}{}",
            plugin("a", "enabled = false\nmount = \"/v1/status\"")
        ))
        .unwrap();
        assert!(!ok.plugins[0].enabled);
    }
}
