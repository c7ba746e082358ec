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

//! The files of an installed node under its prefix, and the files the
//! installer writes there: host.toml and the systemd unit.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::manifest::{IpfsMode, Loaded};

/// Paths of one installed node.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: PathBuf,
    pub data_dir: PathBuf,
}

/// The paths under the prefix that an install replaces as a whole.
pub const MANAGED: [&str; 7] = [
    "bin/milagro",
    "lib/milagro/plugins",
    "etc/milagro",
    "lib/systemd/system/milagro.service",
    "share/man/man1",
    "share/bash-completion/completions/milagro",
    "share/zsh/site-functions/_milagro",
];

impl Layout {
    pub fn bin(&self) -> PathBuf {
        self.prefix.join("bin/milagro")
    }
    pub fn plugins_dir(&self) -> PathBuf {
        self.prefix.join("lib/milagro/plugins")
    }
    pub fn host_toml(&self) -> PathBuf {
        self.prefix.join("etc/milagro/host.toml")
    }
    pub fn unit(&self) -> PathBuf {
        self.prefix.join("lib/systemd/system/milagro.service")
    }
    /// The man pages of `milagro` and its commands.
    pub fn man_dir(&self) -> PathBuf {
        self.prefix.join("share/man/man1")
    }
    /// The shell completion scripts, each where its shell looks under a prefix.
    pub fn completions(&self) -> [(&'static str, PathBuf); 2] {
        [
            (
                "bash",
                self.prefix
                    .join("share/bash-completion/completions/milagro"),
            ),
            ("zsh", self.prefix.join("share/zsh/site-functions/_milagro")),
        ]
    }
    pub fn log(&self) -> PathBuf {
        self.prefix.join("var/log/milagro/milagro.log")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.prefix.join("run/milagro.pid")
    }
    pub fn token(&self) -> PathBuf {
        self.data_dir.join("api-token")
    }
    /// The installer's scratch space (staging, backups), inside the prefix
    /// so that moving staged files into place is a rename.
    pub fn work(&self) -> PathBuf {
        self.prefix.join(".milagro-install")
    }
}

/// `path` made absolute against the current directory, `.` and `..` removed.
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `/ip4/<ip>/tcp/<port>` (or ip6) for a socket address.
pub fn tcp_multiaddr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
    }
}

/// The embedded IPFS listener when the manifest names none: the HTTP
/// address's IP, port 4001.
pub fn ipfs_listen(loaded: &Loaded) -> Option<SocketAddr> {
    if loaded.manifest.network.ipfs == IpfsMode::Kubo {
        return None;
    }
    Some(loaded.manifest.network.ipfs_listen.as_ref().map_or_else(
        || SocketAddr::new(loaded.listen().ip(), 4001),
        |a| *a.get_ref(),
    ))
}

#[derive(Serialize)]
struct HostToml<'a> {
    node: NodeSection<'a>,
    http: HttpSection,
    ipfs: IpfsSection<'a>,
    keystore: KeystoreSection<'a>,
    identity: IdentitySection<'a>,
    transport: TransportSection,
    plugins: Vec<PluginSection<'a>>,
}

#[derive(Serialize)]
struct NodeSection<'a> {
    name: &'a str,
    data_dir: String,
}

#[derive(Serialize)]
struct HttpSection {
    listen: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_plain_http: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca: Option<String>,
}

#[derive(Serialize)]
struct IpfsSection<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    listen: Vec<String>,
    bootstrap: &'a [String],
    routing: &'static str,
}

#[derive(Serialize)]
struct KeystoreSection<'a> {
    backend: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    passphrase_env: Option<&'a str>,
}

#[derive(Serialize)]
struct IdentitySection<'a> {
    beneficiary: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    http: &'a [String],
}

#[derive(Serialize)]
struct TransportSection {
    mode: &'static str,
}

#[derive(Serialize)]
struct PluginSection<'a> {
    name: &'a str,
    path: String,
    sha256: &'a str,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount: Option<&'a str>,
    config: &'a toml::Table,
}

/// host.toml for the node: `bootstrap` already resolved to multiaddrs,
/// `hashes` the SHA-256 of each plugin's installed library (by plugin index).
pub fn host_toml(
    loaded: &Loaded,
    layout: &Layout,
    bootstrap: &[String],
    hashes: &[String],
) -> Result<String, toml::ser::Error> {
    let m = &loaded.manifest;
    let doc = HostToml {
        node: NodeSection {
            name: m.node.name.get_ref(),
            data_dir: layout.data_dir.display().to_string(),
        },
        http: HttpSection {
            listen: loaded.listen().to_string(),
            insecure_plain_http: m.network.insecure_plain_http,
            tls_cert: m.network.tls_cert.as_ref().map(|p| p.display().to_string()),
            tls_key: m.network.tls_key.as_ref().map(|p| p.display().to_string()),
            tls_ca: m.network.tls_ca.as_ref().map(|p| p.display().to_string()),
        },
        ipfs: IpfsSection {
            mode: match m.network.ipfs {
                IpfsMode::Embedded => "embedded",
                IpfsMode::Kubo => "kubo",
            },
            api: m.network.ipfs_api.as_deref(),
            listen: ipfs_listen(loaded).map(tcp_multiaddr).into_iter().collect(),
            bootstrap,
            routing: m.network.routing.as_str(),
        },
        keystore: KeystoreSection {
            backend: m.keystore.backend.get_ref(),
            passphrase_env: m.keystore.passphrase_env.as_deref(),
        },
        identity: IdentitySection {
            beneficiary: loaded.beneficiary(),
            http: &m.network.advertise,
        },
        transport: TransportSection {
            mode: m.network.transport.as_str(),
        },
        plugins: loaded
            .plugins
            .iter()
            .zip(hashes)
            .map(|(p, sha256)| PluginSection {
                name: &p.name,
                path: layout.plugins_dir().join(&p.library).display().to_string(),
                sha256,
                enabled: p.enabled,
                mount: p.mount.as_deref(),
                config: &p.config,
            })
            .collect(),
    };
    let body = toml::to_string(&doc)?;
    Ok(format!(
        "# Written by milagro-install from {}.\n# Re-running the installer rewrites this file; `enabled = false` on a\n# plugin takes effect when the node restarts.\n\n{body}",
        loaded.path.display()
    ))
}

/// A systemd unit that runs the node.
pub fn systemd_unit(name: &str, layout: &Layout) -> String {
    format!(
        "# Written by milagro-install.\n\
         [Unit]\n\
         Description=Milagro Server node {name}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={bin} serve --config {config}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        bin = layout.bin().display(),
        config = layout.host_toml().display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_drop_dots() {
        assert_eq!(absolute(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert!(absolute(Path::new("x")).is_absolute());
    }

    #[test]
    fn host_toml_carries_the_tls_files_and_the_plain_http_opt_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let layout = Layout {
            prefix: "/opt/m".into(),
            data_dir: "/opt/m/var/lib/milagro".into(),
        };
        std::fs::write(
            &path,
            "[node]\nname = \"b\"\n[network]\nlisten = \"0.0.0.0:9000\"\ntls_cert = \"/etc/m/node.crt\"\ntls_key = \"/etc/m/node.key\"\ntls_ca = \"/etc/m/ca.pem\"\n",
        )
        .unwrap();
        let loaded = crate::manifest::load(&path).unwrap();
        let v: toml::Table =
            toml::from_str(&host_toml(&loaded, &layout, &[], &[]).unwrap()).unwrap();
        assert_eq!(v["http"]["tls_cert"].as_str(), Some("/etc/m/node.crt"));
        assert_eq!(v["http"]["tls_key"].as_str(), Some("/etc/m/node.key"));
        assert_eq!(v["http"]["tls_ca"].as_str(), Some("/etc/m/ca.pem"));
        assert!(v["http"].get("insecure_plain_http").is_none());
        std::fs::write(
            &path,
            "[node]\nname = \"b\"\n[network]\nlisten = \"0.0.0.0:9000\"\ninsecure_plain_http = true\n",
        )
        .unwrap();
        let loaded = crate::manifest::load(&path).unwrap();
        let v: toml::Table =
            toml::from_str(&host_toml(&loaded, &layout, &[], &[]).unwrap()).unwrap();
        assert_eq!(v["http"]["insecure_plain_http"].as_bool(), Some(true));
        assert!(v["http"].get("tls_cert").is_none());
    }

    #[test]
    fn host_toml_carries_the_routing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let layout = Layout {
            prefix: "/opt/m".into(),
            data_dir: "/opt/m/var/lib/milagro".into(),
        };
        for (manifest, routing) in [
            ("", "none"),
            ("routing = \"dht\"\n", "dht"),
            ("routing = \"lan-dht\"\n", "lan-dht"),
        ] {
            std::fs::write(
                &path,
                format!("[node]\nname = \"b\"\n[network]\n{manifest}"),
            )
            .unwrap();
            let loaded = crate::manifest::load(&path).unwrap();
            let v: toml::Table =
                toml::from_str(&host_toml(&loaded, &layout, &[], &[]).unwrap()).unwrap();
            assert_eq!(v["ipfs"]["routing"].as_str(), Some(routing), "{manifest}");
        }
    }

    #[test]
    fn host_toml_lists_plugins_with_hashes_and_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "[node]\nname = \"b\"\n[network]\nlisten = \"127.0.0.1:9000\"\n[[plugins]]\nname = \"beneficiary\"\nconfig = { a = 1 }\n",
        )
        .unwrap();
        let loaded = crate::manifest::load(&path).unwrap();
        let layout = Layout {
            prefix: "/opt/m".into(),
            data_dir: "/opt/m/var/lib/milagro".into(),
        };
        let text = host_toml(&loaded, &layout, &[], &["ab".repeat(32)]).unwrap();
        let v: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(v["identity"]["beneficiary"].as_bool(), Some(true));
        assert_eq!(
            v["ipfs"]["listen"][0].as_str(),
            Some("/ip4/127.0.0.1/tcp/4001")
        );
        let p = &v["plugins"][0];
        assert_eq!(p["mount"].as_str(), Some("/v1/beneficiary"));
        assert_eq!(
            p["path"].as_str(),
            Some("/opt/m/lib/milagro/plugins/libmilagro_plugin_beneficiary.so")
        );
        assert_eq!(p["config"]["a"].as_integer(), Some(1));
    }
}
