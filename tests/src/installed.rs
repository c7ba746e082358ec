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

//! A node installed by `milagro-install` into a temporary prefix, with
//! the debug artefacts (`MILAGRO_INSTALL_ARTIFACTS`, no release build),
//! on ports of its own; the install and CLI tests drive it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use crate::{artifact, free_port, json, request, target_dir};

/// The plugins `manifests/quickstart.toml` loads: every role.
pub const QUICKSTART_PLUGINS: [&str; 6] = [
    "custody-principal",
    "custody-fiduciary",
    "beneficiary",
    "dta",
    "mpin",
    "example",
];

/// The debug artefacts the installer copies.
pub fn artefacts() -> PathBuf {
    artifact("milagro");
    target_dir().join("debug")
}

/// One installed node; stopped (SIGKILL, by its pid file) when dropped.
pub struct Installed {
    _dir: tempfile::TempDir,
    /// The install prefix.
    pub prefix: PathBuf,
    /// The HTTP port.
    pub port: u16,
    /// The IPFS (libp2p) port.
    pub ipfs_port: u16,
}

impl Installed {
    pub fn new() -> Installed {
        let dir = tempfile::Builder::new()
            .prefix("milagro-install-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let ipfs_port = free_port();
        Installed {
            prefix: dir.path().join("node"),
            _dir: dir,
            port,
            ipfs_port,
        }
    }

    /// The node's config, as the installer wrote it.
    pub fn config(&self) -> PathBuf {
        self.prefix.join("etc/milagro/host.toml")
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// The installer, with `leading` arguments (a subcommand), then this
    /// prefix, its ports and the debug artefacts.
    pub fn command(&self, leading: &[&str], manifest: &Path) -> Command {
        let mut command = Command::new(artifact("milagro-install"));
        command
            .args(leading)
            .arg("--manifest")
            .arg(manifest)
            .arg("--prefix")
            .arg(&self.prefix)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--ipfs-listen", &format!("127.0.0.1:{}", self.ipfs_port)])
            .env("MILAGRO_INSTALL_ARTIFACTS", artefacts())
            .env("RUST_LOG", "info");
        command
    }

    /// Runs the installer on this prefix with its port.
    pub fn install(&self, manifest: &Path, extra: &[&str]) -> Output {
        let mut command = self.command(&[], manifest);
        command.args(extra);
        self.run(command)
    }

    /// Runs an installer command, keeping its output in `install.log`.
    pub fn run(&self, mut command: Command) -> Output {
        let out = command.output().expect("run milagro-install");
        let _ = std::fs::write(
            self.dir().join("install.log"),
            [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
        );
        out
    }

    pub fn install_ok(&self, manifest: &Path, extra: &[&str]) -> String {
        let out = self.install(manifest, extra);
        self.succeeded(&out)
    }

    /// The stdout of an install that must have succeeded.
    pub fn succeeded(&self, out: &Output) -> String {
        assert!(
            out.status.success(),
            "milagro-install failed:\n{}{}\nnode log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("var/log/milagro/milagro.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.prefix.join("var/lib/milagro/api-token"))
            .expect("token file")
            .trim()
            .to_string()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        request(ureq::get(&self.url(path)), None)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let req = ureq::request(method, &self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token()))
            .set("Content-Type", "application/json");
        request(req, body.map(str::as_bytes))
    }

    pub fn id(&self) -> String {
        let (status, body) = self.get("/v1/identity");
        assert_eq!(status, 200, "{body}");
        json(&body)["id"].as_str().expect("an id").to_string()
    }

    pub fn status_plugins(&self) -> Vec<String> {
        let (status, body) = self.get("/v1/status");
        assert_eq!(status, 200, "{body}");
        json(&body)["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .map(|p| p.as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.prefix.join("run/milagro.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the node (SIGTERM) and waits until it is gone.
    pub fn stop(&self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Default for Installed {
    fn default() -> Installed {
        Installed::new()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Writes a manifest into `dir`.
pub fn manifest(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path
}
