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

//! `milagro-bench dta`: client secrets per second from a requester node
//! asking several D-TAs, one ID per request and in batches, next to the
//! floor measured in this process: per share, hash-to-curve, the scalar
//! multiplication and the DLEQ proof (`MasterShare::prove_client_share`),
//! times the number of D-TAs, on one thread and on every core.

use std::time::Instant;

use hyper::{Method, Uri};
use milagro_mpin::{MasterShare, wire};
use serde_json::json;

use crate::client::Client;

/// What to run.
pub struct Options {
    pub requester: Uri,
    pub token: String,
    pub authorities: Vec<String>,
    pub concurrency: usize,
    /// Client secrets per phase.
    pub secrets: usize,
    pub batch: usize,
    pub floor_runs: usize,
}

/// Seconds per client secret of the floor, one thread.
fn floor(dtas: usize, runs: usize) -> f64 {
    let master = MasterShare::generate().expect("randomness");
    let started = Instant::now();
    for i in 0..runs * dtas {
        let id = format!("floor-{i}@example.org");
        let _ = master
            .prove_client_share(id.as_bytes(), b"floor context")
            .expect("randomness");
    }
    started.elapsed().as_secs_f64() / runs as f64
}

/// Runs `requests` POSTs of `ids_per_request` IDs from `concurrency`
/// clients; returns (client secrets per second, errors, one error).
async fn phase(
    opts: &Options,
    label: &str,
    ids_per_request: usize,
    requests: usize,
) -> (f64, usize, String) {
    let per_client = requests.div_ceil(opts.concurrency);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..opts.concurrency {
        let mut client = Client::new(&opts.requester, &opts.token);
        let authorities = opts.authorities.clone();
        let label = label.to_string();
        let stamp = crate::orders::default_run_id();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut example) = (0usize, 0usize, String::new());
            for r in 0..per_client {
                let ids: Vec<String> = (0..ids_per_request)
                    .map(|i| format!("{stamp}-{label}-{c}-{r}-{i}@example.org"))
                    .collect();
                let body = if ids_per_request == 1 {
                    json!({"kind": "client", "mpin_id": ids[0], "authorities": authorities})
                } else {
                    json!({"kind": "client", "mpin_ids": ids, "authorities": authorities})
                };
                let (status, answer) = client
                    .call(
                        Method::POST,
                        "/v1/dta/secrets",
                        Some(body.to_string().into_bytes()),
                    )
                    .await;
                if status == 200 {
                    ok += ids_per_request;
                } else {
                    errors += 1;
                    example = format!("{status} {}", String::from_utf8_lossy(&answer));
                }
            }
            (ok, errors, example)
        }));
    }
    let (mut ok, mut errors, mut example) = (0, 0, String::new());
    for t in tasks {
        let (o, e, x) = t.await.expect("a client task");
        ok += o;
        errors += e;
        if !x.is_empty() {
            example = x;
        }
    }
    (ok as f64 / started.elapsed().as_secs_f64(), errors, example)
}

/// Runs the floor and both phases and prints them; false on errors.
pub async fn run(opts: Options) -> bool {
    let n = opts.authorities.len();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let per_secret = floor(n, opts.floor_runs);
    let floor_one = 1.0 / per_secret;
    let floor_all = floor_one * cores as f64;
    println!(
        "floor (in process: hash-to-curve + s*H(id) + DLEQ proof per share, {n} D-TA(s)): \
         {:.2} ms per client secret, {floor_one:.0} client secrets/s on 1 thread, \
         {floor_all:.0}/s on {cores} cores",
        per_secret * 1e3
    );
    // Warm up: the first contact pins each D-TA's key.
    let _ = phase(&opts, "warmup", 1, opts.concurrency).await;
    let singles = opts.secrets.max(1);
    let (single, e1, x1) = phase(&opts, "single", 1, singles).await;
    let batch = opts.batch.clamp(1, wire::MAX_MPIN_IDS);
    let (batched, e2, x2) = phase(
        &opts,
        "batch",
        batch,
        singles.div_ceil(batch).max(opts.concurrency),
    )
    .await;
    for (label, rate, errors, example) in [
        ("single (1 ID per request)", single, e1, x1),
        (
            &*format!("batched ({batch} IDs per request)"),
            batched,
            e2,
            x2,
        ),
    ] {
        println!(
            "{label}: {rate:.0} client secrets/s with {} client(s); {:.2}x the 1-thread floor, \
             {:.2}x the {cores}-core floor; {errors} error(s){}",
            opts.concurrency,
            rate / floor_one,
            rate / floor_all,
            if example.is_empty() {
                String::new()
            } else {
                format!(", e.g. {example}")
            }
        );
    }
    e1 == 0 && e2 == 0
}
