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

//! A custody network for the end-to-end tests: a beneficiary, n
//! fiduciaries and a principal, separate `milagro` processes on 127.0.0.1,
//! all dialling each other.

use crate::{
    Node, NodeConfig, PluginEntry,
    custody::{self, Role, peers},
    free_port,
    test_plugins::test_faults_library,
};

/// How to build a [`Network`].
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// How many fiduciaries.
    pub fiduciaries: usize,
    /// Fiduciaries (0-based) that play a test fault: they run the plugin
    /// built with `test-faults`, configured with that `test_fault`.
    pub faults: &'a [(usize, &'a str)],
    /// Every fiduciary runs the `test-faults` build (faulty or not), for
    /// its test-only routes.
    pub test_builds: bool,
    /// Fixed IPFS ports, so a restarted node is found where it was.
    pub restartable: bool,
    /// How long the principal waits for each fiduciary.
    pub reply_timeout_ms: u64,
    /// The beneficiary plugin's inline config table.
    pub beneficiary_config: &'a str,
    /// The beneficiary node's host handler timeout, if not the default.
    pub beneficiary_handler_timeout_ms: Option<u64>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            fiduciaries: 3,
            faults: &[],
            test_builds: false,
            restartable: false,
            reply_timeout_ms: 20_000,
            beneficiary_config: "{}",
            beneficiary_handler_timeout_ms: None,
        }
    }
}

/// The running network.
pub struct Network {
    pub beneficiary: Node,
    pub fiduciaries: Vec<Node>,
    /// The fiduciaries' node IDs (known even while one is down).
    pub ids: Vec<String>,
    pub principal: Node,
}

impl Network {
    /// Starts the beneficiary, then each fiduciary dialling those before
    /// it, then the principal dialling everyone.
    pub fn start(options: &Options) -> Network {
        let ipfs = |known: &[&Node]| {
            let port = if options.restartable { free_port() } else { 0 };
            format!(
                "[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/{port}\"]\nbootstrap = {:?}\n",
                peers(known)
            )
        };
        let mut beneficiary_config = NodeConfig::new("beneficiary")
            .section(&ipfs(&[]))
            .section("[identity]\nbeneficiary = true\n")
            .plugin(custody::entry(
                Role::Beneficiary,
                options.beneficiary_config,
            ));
        if let Some(ms) = options.beneficiary_handler_timeout_ms {
            beneficiary_config = beneficiary_config.http(&format!("handler_timeout_ms = {ms}"));
        }
        let beneficiary = Node::start(beneficiary_config);
        let mut fiduciaries: Vec<Node> = Vec::new();
        for i in 0..options.fiduciaries {
            let mut known: Vec<&Node> = vec![&beneficiary];
            known.extend(fiduciaries.iter());
            let fault = options
                .faults
                .iter()
                .find(|(f, _)| *f == i)
                .map(|(_, f)| *f);
            let entry = if options.test_builds || fault.is_some() {
                let config =
                    fault.map_or("{}".to_string(), |f| format!("{{ test_fault = \"{f}\" }}"));
                PluginEntry::new(
                    "fiduciary",
                    &test_faults_library("milagro-plugin-custody-fiduciary"),
                    &config,
                )
                .mount("/v1/fiduciary")
            } else {
                custody::entry(Role::Fiduciary, "{}")
            };
            let config = NodeConfig::new(&format!("fiduciary-{}", i + 1))
                .section(&ipfs(&known))
                .plugin(entry);
            fiduciaries.push(Node::start(config));
        }
        let mut known: Vec<&Node> = vec![&beneficiary];
        known.extend(fiduciaries.iter());
        // An order to a dead fiduciary fails after the delivery attempt plus
        // the reply timeout: the host's default 30 s handler timeout would
        // race the plugin's own 504 naming who did not answer.
        let principal = Node::start(
            NodeConfig::new("principal")
                .section(&ipfs(&known))
                .plugin(custody::entry(
                    Role::Principal,
                    &format!("{{ reply_timeout_ms = {} }}", options.reply_timeout_ms),
                ))
                .http("handler_timeout_ms = 90000"),
        );
        Network {
            ids: fiduciaries.iter().map(Node::id).collect(),
            beneficiary,
            fiduciaries,
            principal,
        }
    }
}
