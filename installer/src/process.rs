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

//! The installed node as a process: `milagro init` and `identity rotate`,
//! starting it detached (pid file, log file), stopping it, and asking it
//! (and bootstrap peers) over HTTP or HTTPS through `milagro api`.

use std::{
    fs::OpenOptions,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{InstallError, layout::Layout, progress::spinner};

/// The node's pid, if the pid file names a live `milagro` process.
pub fn running(layout: &Layout) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(layout.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

/// Whether `pid` is a live (not zombie) `milagro` process.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ...": the state follows the last ')'.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.trim_start().chars().next());
    let comm = stat.split('(').nth(1).and_then(|s| s.split(')').next());
    state.is_some_and(|s| s != 'Z') && comm == Some("milagro")
}

/// Stops the node: SIGTERM, then SIGKILL after 20 s.
pub fn stop(layout: &Layout, pid: u32) -> Result<(), InstallError> {
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .stderr(Stdio::null())
            .status()
    };
    signal("-TERM").map_err(|e| InstallError::Start(format!("cannot run kill: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = signal("-KILL");
            thread::sleep(Duration::from_millis(200));
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(layout.pid_file());
    Ok(())
}

/// Runs a `milagro` subcommand on `config`; returns its stdout, or its
/// error line.
fn milagro(
    layout: &Layout,
    config: &Path,
    args: &[&str],
    what: &str,
) -> Result<String, InstallError> {
    let bar = spinner(what);
    let out = Command::new(layout.bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output();
    bar.finish_and_clear();
    let out =
        out.map_err(|e| InstallError::Init(format!("cannot run {}: {e}", layout.bin().display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .rev()
            .find(|l| l.contains("ERROR"))
            .or_else(|| stderr.lines().last())
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(InstallError::Init(format!(
            "`milagro {}` failed: {line}",
            args.join(" ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `milagro init` on `config` (the node's config without bootstrap peers):
/// creates keys and identity if the node has none; returns the node ID.
pub fn init(layout: &Layout, config: &Path) -> Result<String, InstallError> {
    milagro(
        layout,
        config,
        &["init"],
        "milagro init: keystore, identity, IPFS (publishing the identity)",
    )
    .map(|out| out.lines().last().unwrap_or_default().to_string())
}

/// `milagro identity rotate` on `config`: new keys and a new node ID.
pub fn rotate(layout: &Layout, config: &Path) -> Result<String, InstallError> {
    milagro(
        layout,
        config,
        &["identity", "rotate"],
        "milagro identity rotate: new keys and identity",
    )
    .map(|out| out.lines().last().unwrap_or_default().to_string())
}

/// Where to reach a listen address from this machine.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// A node `milagro api` calls.
pub enum Node<'a> {
    /// The installed node, by its config: its listen address, its TLS
    /// settings and its token, as the CLI finds them.
    Local(&'a Path),
    /// Another node at a base URL, `http://` or `https://`, trusting the CA
    /// bundle if given (else the system roots).
    Remote {
        url: &'a str,
        tls_ca: Option<&'a Path>,
    },
}

/// GETs `path` of `node` through `milagro api` (the CLI's HTTP and HTTPS
/// client, so the installer speaks TLS exactly as the node does): the
/// answer's body, or the one line the CLI said went wrong.
pub fn api_get(milagro: &Path, node: &Node<'_>, path: &str) -> Result<String, String> {
    let mut command = Command::new(milagro);
    command.args(["--log-format", "json", "api", "GET", path]);
    match node {
        Node::Local(config) => {
            command.arg("--config").arg(config);
        }
        Node::Remote { url, tls_ca } => {
            command.args(["--url", url]);
            if let Some(ca) = tls_ca {
                command.arg("--tls-ca").arg(ca);
            }
        }
    }
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", milagro.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(stderr
        .lines()
        .rev()
        .find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            v["fields"]["message"].as_str().map(String::from)
        })
        .unwrap_or_else(|| format!("milagro api failed ({}): {}", out.status, stderr.trim())))
}

/// Starts `milagro serve` detached (own process group, output appended to
/// the log file), writes the pid file and waits until `/v1/status` answers.
pub fn start(
    layout: &Layout,
    listen: SocketAddr,
    scheme: &str,
    timeout: Duration,
) -> Result<u32, InstallError> {
    let io = |what: &str, e: std::io::Error| InstallError::Io {
        what: what.into(),
        source: e,
    };
    let log_path = layout.log();
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the log directory", e))?;
    }
    if let Some(dir) = layout.pid_file().parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the pid directory", e))?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| io("open the log file", e))?;
    let log_err = log.try_clone().map_err(|e| io("open the log file", e))?;
    let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = Command::new(layout.bin())
        .arg("serve")
        .arg("--config")
        .arg(layout.host_toml())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|e| io("start milagro serve", e))?;
    let pid = child.id();
    std::fs::write(layout.pid_file(), format!("{pid}\n"))
        .map_err(|e| io("write the pid file", e))?;
    let url = format!("{scheme}://{}/v1/status", reachable(listen));
    let bar = spinner(&format!(
        "starting the node (IPFS, plugins); waiting for {url}"
    ));
    let deadline = Instant::now() + timeout;
    let config = layout.host_toml();
    let result = loop {
        let last_answer = match api_get(&layout.bin(), &Node::Local(&config), "/v1/status") {
            Ok(_) => break Ok(pid),
            Err(e) => e,
        };
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the node exited during start ({status})"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Err(format!(
                "the node did not answer {url} within {timeout:?} ({last_answer}); stopped it"
            ));
        }
        thread::sleep(Duration::from_millis(200));
    };
    bar.finish_and_clear();
    result.map_err(|message| {
        let _ = std::fs::remove_file(layout.pid_file());
        let last = last_error(&log_path, log_len);
        InstallError::Start(match last {
            Some(line) => format!("{message}: {line} (log: {})", log_path.display()),
            None => format!("{message} (log: {})", log_path.display()),
        })
    })
}

/// The last ERROR line written to the log after `from`.
fn last_error(log: &Path, from: u64) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?).into_owned();
    text.lines()
        .rev()
        .find(|l| l.contains("ERROR"))
        .map(|l| l.trim().to_string())
}
