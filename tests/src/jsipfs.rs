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

//! Real js-ipfs daemons for the tests of the IPFS facility's Kubo RPC mode:
//! js-ipfs (npm `ipfs@0.66.1`, installed by `tests/js-ipfs/install`) is an
//! independent IPFS implementation with a Kubo-compatible RPC API, and the
//! only one that installs on the project's machines (DESIGN.md §11).
//!
//! [`JsIpfs::start`] makes a private repo in a temp dir, every address on
//! 127.0.0.1 with free ports, no bootstrap peers, no mDNS, no routing,
//! gossipsub on; it waits (bounded) for the API and kills the daemon's whole
//! process group when dropped.

use std::{
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{free_port, workspace_root};

/// How long `jsipfs init` plus the daemon's start may take. Alone it takes
/// ~4 s; several at once on 2 cores, beside the rest of the test suite, far
/// longer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `jsipfs` CLI that `tests/js-ipfs/install` installs, or the one named
/// by `MILAGRO_JSIPFS` (the release test points an unpacked source tarball,
/// which has no `node_modules`, at the checkout's install).
pub fn jsipfs_bin() -> PathBuf {
    std::env::var_os("MILAGRO_JSIPFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("tests/js-ipfs/node_modules/.bin/jsipfs"))
}

/// A running `jsipfs daemon`; its process group is killed on drop.
pub struct JsIpfs {
    dir: tempfile::TempDir,
    child: Option<Child>,
    api_port: u16,
    swarm_port: u16,
    peer_id: String,
    /// How long init + daemon start took.
    pub started_in: Duration,
}

impl JsIpfs {
    /// Initialises a repo and starts a daemon; panics (with the daemon's
    /// log) if it does not answer within 60 s.
    pub fn start() -> JsIpfs {
        let bin = jsipfs_bin();
        assert!(
            bin.exists(),
            "{} is missing: run tests/js-ipfs/install (scripts/test does)",
            bin.display()
        );
        let begun = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("milagro-jsipfs-")
            .tempdir()
            .expect("temp dir");
        let repo = dir.path().join("repo");
        let (api_port, swarm_port, gateway_port, rpc_port) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({
            "Addresses": {
                "Swarm": [format!("/ip4/127.0.0.1/tcp/{swarm_port}")],
                "Announce": [],
                "NoAnnounce": [],
                "API": format!("/ip4/127.0.0.1/tcp/{api_port}"),
                "Gateway": format!("/ip4/127.0.0.1/tcp/{gateway_port}"),
                "RPC": format!("/ip4/127.0.0.1/tcp/{rpc_port}"),
                "Delegates": []
            },
            "Bootstrap": [],
            "Discovery": {
                "MDNS": { "Enabled": false, "Interval": 10 },
                "webRTCStar": { "Enabled": false }
            },
            "Routing": { "Type": "none" },
            "Pubsub": { "Router": "gossipsub", "Enabled": true }
        });
        let cfg = dir.path().join("cfg.json");
        std::fs::write(&cfg, config.to_string()).expect("write cfg.json");

        let init = Command::new(&bin)
            .args(["init", "--emptyRepo", "--defaultConfig"])
            .arg(&cfg)
            .env("IPFS_PATH", &repo)
            .stdin(Stdio::null())
            .output()
            .expect("run jsipfs init");
        assert!(
            init.status.success(),
            "jsipfs init failed ({}):\n{}{}",
            init.status,
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let repo_config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(repo.join("config")).expect("jsipfs init wrote the repo config"),
        )
        .expect("repo config is JSON");
        let peer_id = repo_config["Identity"]["PeerID"]
            .as_str()
            .expect("Identity.PeerID in the repo config")
            .to_string();

        let mut node = JsIpfs {
            dir,
            child: None,
            api_port,
            swarm_port,
            peer_id,
            started_in: Duration::ZERO,
        };
        node.run_daemon();
        node.started_in = begun.elapsed();
        node
    }

    /// Starts the daemon on the repo (appending to its log) and waits until
    /// its API answers.
    fn run_daemon(&mut self) {
        let begun = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(jsipfs_bin())
            .args(["daemon", "--enable-preload=false"])
            .env("IPFS_PATH", self.dir.path().join("repo"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Its own process group, so everything it starts dies with it.
            .process_group(0)
            .spawn()
            .expect("spawn jsipfs daemon");
        self.child = Some(child);
        let deadline = begun + START_TIMEOUT;
        loop {
            if self.api_answers() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "jsipfs daemon exited during start ({status}):\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                let log = self.log();
                self.kill();
                panic!("jsipfs daemon did not answer within {START_TIMEOUT:?}:\n{log}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the daemon again on the same repo and ports. A killed daemon
    /// leaves its repo lock behind; it is stale once the process is gone.
    pub fn restart(&mut self) {
        self.kill();
        let lock = self.dir.path().join("repo").join("repo.lock");
        if lock.is_dir() {
            std::fs::remove_dir_all(&lock).expect("remove the stale repo lock");
        } else if lock.exists() {
            std::fs::remove_file(&lock).expect("remove the stale repo lock");
        }
        self.run_daemon();
    }

    /// Starts `n` daemons in parallel (start-up is mostly waiting).
    pub fn start_many(n: usize) -> Vec<JsIpfs> {
        let handles: Vec<_> = (0..n).map(|_| thread::spawn(JsIpfs::start)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    }

    /// Whether the API answers as this daemon: its `id` names our peer ID,
    /// so a daemon of another test on the same port never passes for ours.
    fn api_answers(&self) -> bool {
        ureq::post(&format!("{}/api/v0/id", self.api_url()))
            .timeout(Duration::from_secs(2))
            .call()
            .ok()
            .and_then(|r| r.into_json::<serde_json::Value>().ok())
            .is_some_and(|id| id["ID"].as_str() == Some(self.peer_id.as_str()))
    }

    /// The peers this daemon reports subscribed to `topic` (`pubsub/peers`).
    pub fn topic_peers(&self, topic: &str) -> Result<Vec<String>, String> {
        let arg = multibase::encode(multibase::Base::Base64Url, topic.as_bytes());
        let answer: serde_json::Value =
            ureq::post(&format!("{}/api/v0/pubsub/peers", self.api_url()))
                .query("arg", &arg)
                .timeout(Duration::from_secs(5))
                .call()
                .map_err(|e| format!("pubsub/peers: {e}"))?
                .into_json()
                .map_err(|e| format!("pubsub/peers answer: {e}"))?;
        Ok(answer["Strings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect())
    }

    /// The peers this daemon is connected to (`swarm/peers`), for failure
    /// messages.
    pub fn swarm_peers(&self) -> String {
        ureq::post(&format!("{}/api/v0/swarm/peers", self.api_url()))
            .timeout(Duration::from_secs(5))
            .call()
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_string().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| format!("(swarm/peers failed: {e})"))
    }

    /// Waits until this daemon reports `peer` subscribed to `topic`, polling
    /// `pubsub/peers`; panics after `timeout` with what it last saw.
    pub fn wait_for_topic_peer(&self, topic: &str, peer: &str, timeout: Duration) -> Duration {
        let begun = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            let seen = self.topic_peers(topic);
            if seen.as_ref().is_ok_and(|p| p.iter().any(|p| p == peer)) {
                return begun.elapsed();
            }
            if begun.elapsed() > timeout {
                panic!(
                    "daemon {} did not report {peer} subscribed to {topic:?} within {timeout:?} \
                     ({polls} polls); last pubsub/peers: {seen:?}; swarm/peers: {}",
                    self.peer_id,
                    self.swarm_peers()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Base URL of the RPC API, e.g. `http://127.0.0.1:45123`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The swarm address other nodes dial: `/ip4/127.0.0.1/tcp/<port>/p2p/<id>`.
    pub fn peer_multiaddr(&self) -> String {
        format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            self.swarm_port, self.peer_id
        )
    }

    /// The daemon's stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Freezes the daemon (SIGSTOP to its process group): it keeps its
    /// sockets open but answers nothing, like a hung node.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused daemon run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let group = format!("-{}", child.id());
            let status = Command::new("kill")
                .args([signal, "--", &group])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill {signal} {group} failed");
        }
    }

    /// Kills the daemon's process group (SIGKILL, as a crash would) and
    /// reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The group id is the child's pid (process_group(0)).
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JsIpfs {
    fn drop(&mut self) {
        self.kill();
    }
}
