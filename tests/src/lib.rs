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

//! Harness for the multi-process end-to-end tests: builds configs, starts
//! real `milagro` processes on 127.0.0.1, waits for them (bounded), talks to
//! them over HTTP and kills them when dropped.
//!
//! The binaries and plugin libraries come from the workspace's target dir;
//! the test command (`scripts/test`) builds them before running the tests.

#![forbid(unsafe_code)]

use std::{
    fmt::Write as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

pub mod attacker;
pub mod craft;
pub mod custody;
pub mod hygiene;
pub mod installed;
pub mod jsipfs;
pub mod kubo;
pub mod network;
pub mod pki;
pub mod softhsm;
pub mod test_plugins;
pub mod wallet;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The cargo target dir the workspace builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A built artifact of the debug profile, e.g. `milagro` or
/// `libmilagro_plugin_example.so`.
pub fn artifact(file: &str) -> PathBuf {
    let path = target_dir().join("debug").join(file);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, as scripts/test does)",
        path.display()
    );
    path
}

/// The library of a workspace plugin crate, by crate name.
pub fn plugin_library(crate_name: &str) -> PathBuf {
    artifact(&format!("lib{}.so", crate_name.replace('-', "_")))
}

pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("plugin library readable"),
    ))
}

/// Where test processes claim their ports (see [`free_port`]).
const PORT_CLAIMS_DIR: &str = "milagro-test-ports";
/// The range ports are drawn from: below Linux's ephemeral range
/// (32768-60999), so no outgoing connection is ever handed one.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// The claims this process holds; released when the process exits.
static PORT_CLAIMS: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// A port on 127.0.0.1 that no other test process will be given while this
/// one runs, for a server a test starts (and may restart on the same port).
///
/// A port found by binding port 0 is in the ephemeral range, and between
/// closing that probe and the server's own bind any outgoing connection on
/// the machine (a parallel test's) may be handed it: the server then fails
/// to bind, or a test reaches another test's server on it, at random. So
/// ports come from [`PORT_RANGE`], and each is claimed with an exclusive
/// lock on a file in a directory all test processes share (flock: released
/// by the kernel when the process exits, however it exits). A port some
/// other program listens on fails the bind check and is skipped.
/// A small seeded generator for the random points of crash tests (their
/// seed is printed, so a failing schedule can be run again).
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value below `bound`.
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

pub fn free_port() -> u16 {
    let dir = std::env::temp_dir().join(PORT_CLAIMS_DIR);
    std::fs::create_dir_all(&dir).expect("create the port claims directory");
    let span = (PORT_RANGE.end - PORT_RANGE.start) as u64;
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    // A stride coprime with the span visits every port once.
    for i in 0..span {
        let port = PORT_RANGE.start + ((seed + i * 7) % span) as u16;
        let claim = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
            .expect("open a port claim file");
        match claim.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => panic!("lock a port claim file: {e}"),
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            PORT_CLAIMS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(claim);
            return port;
        }
    }
    panic!("no port in {PORT_RANGE:?} on 127.0.0.1 is free and unclaimed")
}

/// The sum of the samples of Prometheus counter `name` on `node`'s
/// `/metrics` whose line contains `labels`.
pub fn counter(node: &Node, name: &str, labels: &str) -> u64 {
    let (status, text) = node.get("/metrics");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits (up to 30 s) until counter `name` (see [`counter`]) on `node` is
/// at least `at_least`; panics naming `what` otherwise.
pub fn wait_counter(node: &Node, name: &str, labels: &str, at_least: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter(node, name, labels) < at_least {
        assert!(Instant::now() < deadline, "{what}:\n{}", node.log());
        thread::sleep(Duration::from_millis(20));
    }
}

/// One `[[plugins]]` entry.
#[derive(Clone)]
pub struct PluginEntry {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub enabled: bool,
    pub mount: Option<String>,
    /// The plugin's `config` table, as TOML inline-table text.
    pub config: String,
}

impl PluginEntry {
    /// An entry for a library, with its real hash.
    pub fn new(name: &str, path: &Path, config: &str) -> PluginEntry {
        PluginEntry {
            name: name.into(),
            path: path.into(),
            sha256: sha256_file(path),
            enabled: true,
            mount: None,
            config: config.into(),
        }
    }

    pub fn mount(mut self, mount: &str) -> Self {
        self.mount = Some(mount.into());
        self
    }

    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

/// A node's config, written to a temp dir.
pub struct NodeConfig {
    pub name: String,
    pub port: u16,
    pub extra_http: String,
    /// Further tables (`[ipfs]`, `[transport]`, ...), as TOML text.
    pub sections: String,
    pub plugins: Vec<PluginEntry>,
    /// Environment variables of the node's processes (e.g. `SOFTHSM2_CONF`).
    pub env: Vec<(String, String)>,
    /// The address `[http] listen` binds (default 127.0.0.1).
    pub listen_ip: String,
    /// With TLS ([`NodeConfig::https`]): the CA (PEM) the test trusts for
    /// this node's certificate.
    pub client_ca: Option<Vec<u8>>,
}

impl NodeConfig {
    pub fn new(name: &str) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            port: free_port(),
            extra_http: String::new(),
            sections: String::new(),
            plugins: Vec::new(),
            env: Vec::new(),
            listen_ip: "127.0.0.1".into(),
            client_ca: None,
        }
    }

    /// Serves HTTPS with the certificate and key files, trusting the CA
    /// bundle `ca` for outbound HTTPS; the test's client trusts `ca` too.
    pub fn https(mut self, cert: &Path, key: &Path, ca: &Path) -> Self {
        self.client_ca = Some(std::fs::read(ca).expect("read the CA bundle"));
        self.http(&format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_ca = \"{}\"",
            cert.display(),
            key.display(),
            ca.display()
        ))
    }

    /// Listens on `ip` instead of 127.0.0.1 (e.g. to check a refusal).
    pub fn listen_on(mut self, ip: &str) -> Self {
        self.listen_ip = ip.into();
        self
    }

    /// Sets an environment variable for the node's processes.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Writes host.toml into a new temp dir, for commands run before (or
    /// instead of) `serve`; see [`milagro`] and [`Node::start_in`].
    pub fn write(&self) -> tempfile::TempDir {
        write_config(self)
    }

    /// Appends TOML tables, e.g. `[ipfs]` or `[transport]`.
    pub fn section(mut self, toml: &str) -> Self {
        self.sections.push_str(toml);
        self.sections.push('\n');
        self
    }

    pub fn plugin(mut self, entry: PluginEntry) -> Self {
        self.plugins.push(entry);
        self
    }

    /// Extra lines for the `[http]` table.
    pub fn http(mut self, lines: &str) -> Self {
        self.extra_http.push_str(lines);
        self.extra_http.push('\n');
        self
    }

    fn to_toml(&self) -> String {
        let mut s = format!(
            "[node]\nname = \"{}\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"{}:{}\"\n{}\n",
            self.name, self.listen_ip, self.port, self.extra_http
        );
        s.push_str(&self.sections);
        s.push('\n');
        for p in &self.plugins {
            let _ = write!(
                s,
                "[[plugins]]\nname = \"{}\"\npath = \"{}\"\nsha256 = \"{}\"\nenabled = {}\n",
                p.name,
                p.path.display(),
                p.sha256,
                p.enabled
            );
            if let Some(m) = &p.mount {
                let _ = writeln!(s, "mount = \"{m}\"");
            }
            let _ = writeln!(s, "config = {}\n", p.config);
        }
        s
    }
}

/// How long a node may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `milagro serve` process; killed (SIGKILL) and reaped on drop.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub port: u16,
    env: Vec<(String, String)>,
    child: Child,
    /// `https` with a CA the agent trusts, else `http`.
    scheme: &'static str,
    agent: ureq::Agent,
}

/// A finished process: exit status and its stderr.
pub struct Exited {
    pub status: ExitStatus,
    pub stderr: String,
    /// Whether the node created its data dir before exiting.
    pub wrote_data: bool,
}

fn write_config(config: &NodeConfig) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("milagro-e2e-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(dir.path().join("host.toml"), config.to_toml()).expect("write host.toml");
    dir
}

fn spawn(dir: &Path, env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .expect("log file");
    Command::new(artifact("milagro"))
        .arg("serve")
        .arg("--config")
        .arg(dir.join("host.toml"))
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn milagro")
}

/// Runs `milagro <args> --config <dir>/host.toml` to completion.
pub fn milagro(dir: &Path, args: &[&str], env: &[(String, String)]) -> std::process::Output {
    Command::new(artifact("milagro"))
        .args(args)
        .arg("--config")
        .arg(dir.join("host.toml"))
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run milagro")
}

impl Exited {
    /// The one line a refusing node logs: asserts it exited non-zero with
    /// exactly one ERROR line.
    pub fn refusal_line(&self) -> &str {
        assert!(!self.status.success(), "the node must exit non-zero");
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "exactly one error line, got:\n{}",
            self.stderr
        );
        errors[0]
    }
}

impl Node {
    /// Starts a node and waits until `/v1/status` answers.
    pub fn start(config: NodeConfig) -> Node {
        let dir = write_config(&config);
        Node::start_in(dir, &config)
    }

    /// Starts a node in a dir [`NodeConfig::write`] prepared (and commands
    /// may have used since).
    pub fn start_in(dir: tempfile::TempDir, config: &NodeConfig) -> Node {
        let mut node = Node {
            child: spawn(dir.path(), &config.env),
            port: config.port,
            env: config.env.clone(),
            dir,
            scheme: if config.client_ca.is_some() {
                "https"
            } else {
                "http"
            },
            agent: match &config.client_ca {
                Some(ca) => pki::agent(ca),
                None => ureq::Agent::new(),
            },
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.get("/v1/status").0 == 200 {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("milagro exited during start ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "milagro did not answer within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node again on the same config and data (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path(), &self.env);
        self.wait_ready();
    }

    /// This node's identity document (`GET /v1/identity`).
    pub fn identity(&self) -> serde_json::Value {
        json(&self.get("/v1/identity").1)
    }

    /// This node's ID.
    pub fn id(&self) -> String {
        self.identity()["id"]
            .as_str()
            .expect("identity has an id")
            .to_string()
    }

    /// Its IPFS multiaddrs (with `/p2p/`), for other nodes' bootstrap lists.
    pub fn ipfs_addresses(&self) -> Vec<String> {
        strings(&self.identity()["endpoints"]["multiaddrs"])
    }

    /// Runs a node that is expected to refuse to start; returns how it exited.
    pub fn start_expecting_exit(config: NodeConfig) -> Exited {
        let dir = write_config(&config);
        let mut child = spawn(dir.path(), &config.env);
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait milagro") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("milagro kept running although it should have refused to start");
            }
            thread::sleep(Duration::from_millis(50));
        };
        Exited {
            status,
            stderr: std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default(),
            wrote_data: dir.path().join("data").exists(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// The HTTP client the harness reaches this node with (it trusts the
    /// node's CA when the node serves HTTPS).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The process ID of the running node.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP (the node reloads its TLS certificate).
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    /// The operator token the node created.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/api-token"))
            .expect("token file")
            .trim()
            .to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    /// GET without a token: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        request(self.agent.get(&self.url(path)), None)
    }

    /// GET with the operator token.
    pub fn get_auth(&self, path: &str) -> (u16, String) {
        request(
            self.agent
                .get(&self.url(path))
                .set("Authorization", &format!("Bearer {}", self.token())),
            None,
        )
    }

    /// Any method with the operator token and an optional body.
    pub fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
        let req = self
            .agent
            .request(method, &self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token()));
        request(req, body)
    }

    /// Freezes the process (SIGSTOP): a peer that never answers, whose
    /// connections stay open, until [`Node::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the process (SIGKILL) without waiting for it: a crash in the
    /// middle of whatever it is doing, seen by callers holding a `&Node`.
    /// [`Node::restart`] brings it back.
    pub fn crash(&self) {
        self.signal("KILL");
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Runs `milagro <args>` on this node's config and data (stop it
    /// first for a command that needs the node stopped).
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        milagro(self.dir.path(), args, &self.env)
    }

    /// Stops the node with SIGKILL (as a crash would) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    /// Kills the process. With `MILAGRO_TEST_KEEP` set, the node's directory
    /// (config, data, `node.log`) is kept for a post-mortem and named on
    /// stderr.
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("MILAGRO_TEST_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("node directory kept: {}", self.dir.path().display());
        }
    }
}

/// Sends a request and returns (status, body) for every status, 2xx or not.
pub fn request(req: ureq::Request, body: Option<&[u8]>) -> (u16, String) {
    let req = req.timeout(Duration::from_secs(60));
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    match result {
        Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Transport(t)) => (0, t.to_string()),
    }
}

/// Parses a JSON body, with the body in the panic message if it is not JSON.
/// The strings of a JSON array (none if it is not one).
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Asserts a JSON error body with the given code.
pub fn assert_error(response: &(u16, String), status: u16, code: &str) {
    assert_eq!(
        response.0, status,
        "unexpected status, body: {}",
        response.1
    );
    let v = json(&response.1);
    assert_eq!(v["error"]["code"], code, "body: {}", response.1);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// Checks an OpenAPI document with a real validator: the
/// `openapi-spec-validator` package from PyPI (scripts/test installs it).
pub fn assert_valid_openapi(dir: &Path, document: &str) {
    let file = dir.join("openapi.json");
    std::fs::write(&file, document).expect("write openapi.json");
    let python = std::env::var("MILAGRO_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the document (pip install openapi-spec-validator, as scripts/test does):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
