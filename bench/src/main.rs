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

//! `milagro-bench`: drives load at Milagro nodes on 127.0.0.1 and reports
//! throughput and latency percentiles.
//!
//! `milagro-bench http --url http://127.0.0.1:7070/v1/status -c 16 -d 10`
//! keeps 16 keep-alive connections busy for 10 seconds.
//!
//! `milagro-bench orders --principal http://127.0.0.1:7070 --token-file T
//! --fiduciary ID --coin btc -c 16 -n 400 --redeem` places 400 custody
//! orders from 16 clients, redeems them, and compares the figures with the
//! floor of one order measured in the same process. With `--rate 30` the
//! orders start at a steady 30 per second instead (`scripts/soak`).

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Uri, client::conn::http1};

mod client;
mod dta;
mod floor;
mod node_cpu;
mod orders;

#[derive(Parser)]
#[command(
    name = "milagro-bench",
    version,
    about = "Load generator for Milagro Server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// GET one URL from many keep-alive connections.
    Http {
        #[arg(long)]
        url: Uri,
        /// Concurrent connections.
        #[arg(short, long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(short, long, default_value_t = 10)]
        duration: u64,
        /// File holding an operator token to send as `Authorization: Bearer`.
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
    },
    /// Place custody orders (and redeem them) from many keep-alive
    /// connections; compare with the floor of one order.
    Orders {
        /// Base URL of the principal node.
        #[arg(long)]
        principal: Uri,
        /// File holding the principal node's operator token.
        #[arg(long)]
        token_file: std::path::PathBuf,
        /// A fiduciary's node ID (repeat for each).
        #[arg(long = "fiduciary", required = true)]
        fiduciaries: Vec<String>,
        /// The beneficiary's node ID (default: the principal).
        #[arg(long)]
        beneficiary: Option<String>,
        /// Base URL of the beneficiary node (default: the principal's).
        #[arg(long)]
        beneficiary_url: Option<Uri>,
        /// Its operator token file (default: the principal's).
        #[arg(long)]
        beneficiary_token_file: Option<std::path::PathBuf>,
        #[arg(long, default_value = "btc")]
        coin: String,
        /// Concurrent clients.
        #[arg(short, long, default_value_t = 16)]
        concurrency: usize,
        /// Orders to place.
        #[arg(short = 'n', long, default_value_t = 400)]
        orders: usize,
        /// Then redeem every order and wait until the beneficiary has
        /// every wallet complete.
        #[arg(long)]
        redeem: bool,
        /// Prefix of the order references (default: from the clock).
        #[arg(long)]
        run_id: Option<String>,
        /// Seconds to wait for the wallets after the redemptions.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Orders in each single-threaded floor measurement (at least).
        #[arg(long, default_value_t = 50)]
        floor_runs: usize,
        /// Orders placed one by one before the load (not counted).
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Start orders (and redeems) at this steady rate per second
        /// instead of as fast as the clients can (a soak at a fixed load).
        #[arg(long)]
        rate: Option<f64>,
        /// A node process whose CPU time per order to report, as
        /// NAME=PID (repeat for each node; Linux only).
        #[arg(long = "node-pid")]
        node_pids: Vec<node_cpu::Watched>,
    },
    /// Client secrets per second from a requester node asking several
    /// D-TAs (`POST /v1/dta/secrets`), one ID per request and batched,
    /// next to the in-process floor.
    Dta {
        /// Base URL of the requester node.
        #[arg(long)]
        requester: Uri,
        /// File holding its operator token.
        #[arg(long)]
        token_file: std::path::PathBuf,
        /// A D-TA's node ID (repeat for each).
        #[arg(long = "authority", required = true)]
        authorities: Vec<String>,
        /// Concurrent clients.
        #[arg(short, long, default_value_t = 4)]
        concurrency: usize,
        /// Client secrets per phase (single, then batched).
        #[arg(short = 'n', long, default_value_t = 200)]
        secrets: usize,
        /// IDs per batched request (1-256).
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Client secrets in the floor measurement.
        #[arg(long, default_value_t = 100)]
        floor_runs: usize,
    },
    /// Only the floor of one custody order (in-process crypto + one durable
    /// write), single-threaded and on several threads.
    Floor {
        /// Fiduciaries per order.
        #[arg(long, default_value_t = 1)]
        fiduciaries: usize,
        #[arg(long, default_value = "btc")]
        coin: String,
        /// Orders measured (at least).
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// Threads for the throughput run (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

/// What one worker saw.
struct Tally {
    latencies: Histogram<u64>,
    errors: u64,
}

async fn connect(uri: &Uri) -> Result<http1::SendRequest<Empty<Bytes>>, String> {
    let host = uri.host().ok_or("url has no host")?;
    client::connect(host, uri.port_u16().unwrap_or(80)).await
}

async fn worker(uri: Uri, auth: Option<String>, until: Instant) -> Tally {
    let mut tally = Tally {
        latencies: Histogram::new(3).expect("3 significant figures is valid"),
        errors: 0,
    };
    let mut sender = None;
    while Instant::now() < until {
        if sender.is_none() {
            match connect(&uri).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = sender.as_mut().expect("connected above");
        let mut request = Request::get(uri.clone()).header(
            "host",
            uri.authority().map(|a| a.as_str()).unwrap_or("localhost"),
        );
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        let request = request.body(Empty::new()).expect("a GET request builds");
        let started = Instant::now();
        let ok = match s.send_request(request).await {
            Ok(response) => {
                let success = response.status().is_success();
                success && response.into_body().collect().await.is_ok()
            }
            Err(_) => false,
        };
        if ok {
            let micros = started.elapsed().as_micros() as u64;
            tally
                .latencies
                .record(micros.max(1))
                .expect("histogram auto-resizes");
        } else {
            tally.errors += 1;
            sender = None;
        }
    }
    tally
}

async fn run_http(uri: Uri, concurrency: usize, duration: Duration, auth: Option<String>) {
    let started = Instant::now();
    let until = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(uri.clone(), auth.clone(), until)))
        .collect();
    let mut total = Histogram::<u64>::new(3).expect("valid precision");
    let mut errors = 0;
    for w in workers {
        let tally = w.await.expect("worker does not panic");
        total
            .add(&tally.latencies)
            .expect("histograms of the same precision add");
        errors += tally.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = total.len();
    println!("target       {uri}");
    println!("connections  {concurrency}, {elapsed:.1} s");
    println!("requests     {ok} ok, {errors} errors");
    println!("throughput   {:.0} req/s", ok as f64 / elapsed);
    for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        println!("latency {name}  {} µs", total.value_at_quantile(q));
    }
    println!("latency max  {} µs", total.max());
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match cli.command {
        Command::Http {
            url,
            concurrency,
            duration,
            token_file,
        } => {
            let auth = token_file.map(|path| {
                let token = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read token file {}: {e}", path.display()));
                format!("Bearer {}", token.trim())
            });
            runtime.block_on(run_http(
                url,
                concurrency,
                Duration::from_secs(duration),
                auth,
            ));
        }
        Command::Orders {
            principal,
            token_file,
            fiduciaries,
            beneficiary,
            beneficiary_url,
            beneficiary_token_file,
            coin,
            concurrency,
            orders,
            redeem,
            run_id,
            timeout,
            floor_runs,
            warmup,
            rate,
            node_pids,
        } => {
            let coin: milagro_custody::Coin = coin
                .parse()
                .unwrap_or_else(|_| panic!("unknown coin {coin:?}: btc, btc-testnet or eth"));
            let token = orders::read_token(&token_file);
            let beneficiary_token = beneficiary_token_file
                .map(|f| orders::read_token(&f))
                .unwrap_or_else(|| token.clone());
            let clean = runtime.block_on(orders::run(orders::Options {
                beneficiary_url: beneficiary_url.unwrap_or_else(|| principal.clone()),
                principal,
                token,
                fiduciaries,
                beneficiary,
                beneficiary_token,
                coin,
                concurrency: concurrency.max(1),
                orders,
                redeem,
                run_id: run_id.unwrap_or_else(orders::default_run_id),
                timeout: std::time::Duration::from_secs(timeout),
                floor_runs: floor_runs.max(1),
                warmup,
                rate: rate.filter(|r| *r > 0.0),
                nodes: node_pids,
            }));
            if !clean {
                std::process::exit(1);
            }
        }
        Command::Dta {
            requester,
            token_file,
            authorities,
            concurrency,
            secrets,
            batch,
            floor_runs,
        } => {
            let clean = runtime.block_on(dta::run(dta::Options {
                requester,
                token: orders::read_token(&token_file),
                authorities,
                concurrency: concurrency.max(1),
                secrets,
                batch,
                floor_runs: floor_runs.max(1),
            }));
            if !clean {
                std::process::exit(1);
            }
        }
        Command::Floor {
            fiduciaries,
            coin,
            runs,
            threads,
        } => {
            let coin: milagro_custody::Coin = coin
                .parse()
                .unwrap_or_else(|_| panic!("unknown coin {coin:?}: btc, btc-testnet or eth"));
            orders::floor_only(fiduciaries.max(1), coin, runs.max(1), threads);
        }
    }
}
