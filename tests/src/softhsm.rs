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

//! SoftHSM2 tokens for the HSM tests: each [`SoftHsm`] is a temp dir with
//! its own `softhsm2.conf` and token dir, so tests never touch the
//! machine's tokens. Every process that uses it (the node, `pkcs11-tool`)
//! gets `SOFTHSM2_CONF` from [`SoftHsm::env`].
//!
//! Needs Debian's `softhsm2` and `opensc` (for `pkcs11-tool`);
//! `scripts/test` installs them.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Where Debian and other distributions put the SoftHSM2 module.
const MODULES: [&str; 4] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 PKCS#11 module on this machine.
pub fn module() -> PathBuf {
    MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("libsofthsm2.so is missing: apt-get install softhsm2 (scripts/test does)")
}

/// A private SoftHSM2 installation: config and token dir in a temp dir.
pub struct SoftHsm {
    pub dir: tempfile::TempDir,
}

impl SoftHsm {
    pub fn new() -> SoftHsm {
        SoftHsm::with_config("")
    }

    /// With extra `softhsm2.conf` lines, e.g. `slots.mechanisms = -CKM_ECDH1_DERIVE`.
    pub fn with_config(extra: &str) -> SoftHsm {
        let dir = tempfile::Builder::new()
            .prefix("milagro-softhsm-")
            .tempdir()
            .expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n{extra}\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        SoftHsm { dir }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The environment every process using these tokens needs.
    pub fn env(&self) -> (String, String) {
        ("SOFTHSM2_CONF".into(), self.conf().display().to_string())
    }

    /// Creates a token in the first free slot.
    pub fn init_token(&self, label: &str, pin: &str, so_pin: &str) {
        let out = self.run(
            Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", pin, "--so-pin", so_pin]),
        );
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes `pin` to a file (mode 0600) for a `pin_file` config.
    pub fn pin_file(&self, name: &str, pin: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{pin}\n")).expect("write PIN file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    /// `pkcs11-tool --login --list-objects` on a token: its output.
    pub fn list_objects(&self, token: &str, pin: &str) -> String {
        let out = self.run(
            Command::new("pkcs11-tool")
                .arg("--module")
                .arg(module())
                .args(["--token-label", token, "--login", "--pin", pin])
                .arg("--list-objects"),
        );
        assert!(
            out.status.success(),
            "pkcs11-tool --list-objects failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every file under the token dir (what a thief of the disk would get).
    pub fn token_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir.path().join("tokens"))
    }

    fn run(&self, command: &mut Command) -> Output {
        let (k, v) = self.env();
        command.env(k, v).output().unwrap_or_else(|e| {
            panic!(
                "cannot run {command:?} (apt-get install softhsm2 opensc; scripts/test does): {e}"
            )
        })
    }
}

impl Default for SoftHsm {
    fn default() -> Self {
        SoftHsm::new()
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files
}
