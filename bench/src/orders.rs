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

//! `milagro-bench orders`: concurrent custody orders (and optionally their
//! redemption) against a principal node, compared with the floor of one
//! order measured in the same process (see [`crate::floor`]).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use hyper::{Method, Uri};
use milagro_custody::Coin;
use serde_json::{Value, json};

use crate::{
    client::Client,
    floor::{self, Floor, Measured},
    node_cpu::{self, Watched},
};

/// What `milagro-bench orders` was asked to do.
pub struct Options {
    pub principal: Uri,
    pub token: String,
    pub fiduciaries: Vec<String>,
    pub beneficiary: Option<String>,
    pub beneficiary_url: Uri,
    pub beneficiary_token: String,
    pub coin: Coin,
    pub concurrency: usize,
    pub orders: usize,
    pub redeem: bool,
    pub run_id: String,
    pub timeout: Duration,
    pub floor_runs: usize,
    pub warmup: usize,
    /// Steady start rate per second (None: as fast as the clients can).
    pub rate: Option<f64>,
    /// Node processes whose CPU time per order is reported.
    pub nodes: Vec<Watched>,
}

/// Latencies of the successful calls, and the failures by status (0: no
/// HTTP answer) with one example message each.
struct Tally {
    latencies: Histogram<u64>,
    errors: BTreeMap<u16, (u64, String)>,
    ok: Vec<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latencies: Histogram::new(3).expect("3 significant figures is valid"),
            errors: BTreeMap::new(),
            ok: Vec::new(),
        }
    }

    fn error(&mut self, status: u16, body: &[u8]) {
        let entry = self.errors.entry(status).or_insert((0, String::new()));
        entry.0 += 1;
        if entry.1.is_empty() {
            let text = String::from_utf8_lossy(body);
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(String::from))
                .unwrap_or_else(|| text.into_owned());
            entry.1 = message.chars().take(200).collect();
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies
            .add(&other.latencies)
            .expect("histograms of the same precision add");
        for (status, (count, example)) in other.errors {
            let entry = self.errors.entry(status).or_insert((0, example));
            entry.0 += count;
        }
        self.ok.extend(other.ok);
    }

    fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    fn print_errors(&self) {
        for (status, (count, example)) in &self.errors {
            let what = if *status == 0 {
                "no answer".to_string()
            } else {
                format!("HTTP {status}")
            };
            println!("  {count} × {what}: {example}");
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn path_of(base: &Uri, rest: &str) -> String {
    format!("{}{rest}", base.path().trim_end_matches('/'))
}

/// Runs `work(i)` for i in 0..count from `concurrency` clients of `base`,
/// each with its own keep-alive connection; `expect` is the success status.
/// With a `rate`, item i starts no earlier than i / rate seconds in.
async fn drive<F>(
    base: &Uri,
    token: &str,
    concurrency: usize,
    rate: Option<f64>,
    items: Arc<Vec<String>>,
    make: F,
) -> (Tally, Duration)
where
    F: Fn(&str) -> (Method, String, Option<Vec<u8>>, u16) + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = Client::new(base, token);
            let next = Arc::clone(&next);
            let items = Arc::clone(&items);
            let make = Arc::clone(&make);
            tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let (method, path, body, expect) = make(item);
                    let t0 = Instant::now();
                    let (status, answer) = client.call(method, &path, body).await;
                    if status == expect {
                        tally
                            .latencies
                            .record(micros(t0.elapsed()))
                            .expect("histogram auto-resizes");
                        tally.ok.push(item.clone());
                    } else {
                        tally.error(status, &answer);
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::new();
    for w in workers {
        total.merge(w.await.expect("worker does not panic"));
    }
    (total, started.elapsed())
}

/// Polls the beneficiary until every wallet in `references` is complete or
/// `timeout` passes; returns when each completed (seen), relative to
/// `since`, and the references still incomplete.
async fn await_wallets(
    opts: &Options,
    references: Vec<String>,
    since: Instant,
) -> (Histogram<u64>, Vec<String>, BTreeMap<String, u64>) {
    let deadline = Instant::now() + opts.timeout;
    let pending = Arc::new(Mutex::new(references));
    let seen = Arc::new(Mutex::new(
        Histogram::<u64>::new(3).expect("valid precision"),
    ));
    let statuses = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    loop {
        let round: Vec<String> = pending.lock().expect("not poisoned").clone();
        if round.is_empty() || Instant::now() >= deadline {
            break;
        }
        let round = Arc::new(round);
        let next = Arc::new(AtomicUsize::new(0));
        statuses.lock().expect("not poisoned").clear();
        let workers: Vec<_> = (0..opts.concurrency.clamp(1, 8))
            .map(|_| {
                let mut client = Client::new(&opts.beneficiary_url, &opts.beneficiary_token);
                let base = opts.beneficiary_url.clone();
                let round = Arc::clone(&round);
                let next = Arc::clone(&next);
                let pending = Arc::clone(&pending);
                let seen = Arc::clone(&seen);
                let statuses = Arc::clone(&statuses);
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(reference) = round.get(i) else { break };
                        let path = path_of(&base, &format!("/v1/beneficiary/wallets/{reference}"));
                        let (status, body) = client.call(Method::GET, &path, None).await;
                        let state = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v["status"].as_str().map(String::from));
                        let label = match (status, state.as_deref()) {
                            (200, Some(s)) => s.to_string(),
                            (s, _) => format!("HTTP {s}"),
                        };
                        if label == "complete" {
                            let at = micros(since.elapsed());
                            seen.lock()
                                .expect("not poisoned")
                                .record(at)
                                .expect("histogram auto-resizes");
                            pending
                                .lock()
                                .expect("not poisoned")
                                .retain(|r| r != reference);
                        } else {
                            *statuses
                                .lock()
                                .expect("not poisoned")
                                .entry(label)
                                .or_default() += 1;
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("poller does not panic");
        }
        if !pending.lock().expect("not poisoned").is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let seen = seen.lock().expect("not poisoned").clone();
    let left = pending.lock().expect("not poisoned").clone();
    let statuses = statuses.lock().expect("not poisoned").clone();
    (seen, left, statuses)
}

fn print_latencies(label: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        println!("{label}  (none)");
        return;
    }
    println!(
        "{label}  p50 {}  p90 {}  p99 {}  max {}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
}

fn print_floor(label: &str, m: &Measured) {
    println!(
        "floor {label}: {} per order (crypto {} + durable write {}), CPU {} ({} runs)",
        ms(micros(m.latency)),
        ms(micros(m.crypto)),
        ms(micros(m.write)),
        ms(micros(m.cpu)),
        m.runs
    );
    let b = &m.breakdown;
    println!(
        "  crypto parts (mean): seal {}, verify+open {}, k_i+proof {}, verify_commitment+wallet key+address {}, encode/decode {}",
        ms(micros(b.seal)),
        ms(micros(b.open)),
        ms(micros(b.prove)),
        ms(micros(b.verify)),
        ms(micros(b.codec))
    );
}

/// `milagro-bench floor`: the floor alone.
pub fn floor_only(n: usize, coin: Coin, runs: usize, threads: usize) {
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let mut f = Floor::new(n, coin, &std::env::temp_dir(), "only").expect("floor parties");
    let m = floor::measure(&mut f, runs, Duration::from_secs(2)).expect("floor runs");
    print_floor(&format!("{n} fiduciaries"), &m);
    let threads = if threads == 0 { cores } else { threads };
    let run = floor::concurrent(
        n,
        coin,
        &std::env::temp_dir(),
        threads,
        Duration::from_secs(2),
    )
    .expect("floor runs");
    println!(
        "floor throughput: {:.1} orders/s CPU-bound ({cores} cores); measured on {threads} threads: {:.1} orders/s, p50 {}",
        cores as f64 / m.cpu.as_secs_f64(),
        run.orders_per_second,
        ms(micros(run.latency))
    );
}

/// The floor measurement of one order on one thread, on a blocking thread
/// so that the runtime stays free.
async fn measure_floor(opts: &Options, tag: &'static str) -> Measured {
    let n = opts.fiduciaries.len();
    let coin = opts.coin;
    let runs = opts.floor_runs;
    tokio::task::spawn_blocking(move || {
        let mut f = Floor::new(n, coin, &std::env::temp_dir(), tag).expect("floor parties");
        floor::measure(&mut f, runs, Duration::from_secs(2)).expect("floor runs")
    })
    .await
    .expect("floor thread does not panic")
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// Runs the benchmark; true when every order, redeem and wallet succeeded.
pub async fn run(opts: Options) -> bool {
    let n = opts.fiduciaries.len();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    println!(
        "custody orders: principal {}, {n} fiduciar{}, coin {}, {} orders, {} clients, run {}",
        opts.principal,
        if n == 1 { "y" } else { "ies" },
        opts.coin,
        opts.orders,
        opts.concurrency,
        opts.run_id
    );
    if let Some(rate) = opts.rate {
        println!("paced: {rate} orders (then redeems) started per second");
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "machine: {cores} cores, load average {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    // Warm-up orders (not counted): the principal resolves the parties'
    // identities and the nodes' connections open.
    let order_path = path_of(&opts.principal, "/v1/custody/orders");
    let order_body = {
        let fiduciaries = opts.fiduciaries.clone();
        let beneficiary = opts.beneficiary.clone();
        let coin = opts.coin.to_string();
        move |reference: &str| {
            let mut body =
                json!({"fiduciaries": fiduciaries, "coin": coin, "reference": reference});
            if let Some(b) = &beneficiary {
                body["beneficiary"] = json!(b);
            }
            body.to_string().into_bytes()
        }
    };
    if opts.warmup > 0 {
        let mut client = Client::new(&opts.principal, &opts.token);
        for i in 0..opts.warmup {
            let reference = format!("{}-warmup-{i}", opts.run_id);
            let t0 = Instant::now();
            let (status, body) = client
                .call(Method::POST, &order_path, Some(order_body(&reference)))
                .await;
            println!(
                "warm-up order {i}: HTTP {status} in {}{}",
                ms(micros(t0.elapsed())),
                if status == 201 {
                    String::new()
                } else {
                    format!(": {}", String::from_utf8_lossy(&body))
                }
            );
        }
    }

    let before = measure_floor(&opts, "before").await;
    print_floor("before", &before);

    // Orders.
    let references: Arc<Vec<String>> = Arc::new(
        (0..opts.orders)
            .map(|i| format!("{}-{i:06}", opts.run_id))
            .collect(),
    );
    let order_path = path_of(&opts.principal, "/v1/custody/orders");
    let fiduciaries = opts.fiduciaries.clone();
    let beneficiary = opts.beneficiary.clone();
    let coin = opts.coin.to_string();
    let cpu_before_orders = node_cpu::snapshot(&opts.nodes);
    let (orders, order_time) = drive(
        &opts.principal,
        &opts.token,
        opts.concurrency,
        opts.rate,
        Arc::clone(&references),
        move |reference| {
            let mut body =
                json!({"fiduciaries": fiduciaries, "coin": coin, "reference": reference});
            if let Some(b) = &beneficiary {
                body["beneficiary"] = json!(b);
            }
            (
                Method::POST,
                order_path.clone(),
                Some(body.to_string().into_bytes()),
                201,
            )
        },
    )
    .await;
    let cpu_after_orders = node_cpu::snapshot(&opts.nodes);
    let order_rate = orders.ok.len() as f64 / order_time.as_secs_f64();
    println!();
    println!(
        "orders       {} created (201), {} errors, {:.1} s",
        orders.ok.len(),
        orders.error_count(),
        order_time.as_secs_f64()
    );
    orders.print_errors();
    println!("throughput   {order_rate:.1} orders/s");
    print_latencies("latency", &orders.latencies);

    let mut clean = orders.error_count() == 0;
    // Redemption.
    if opts.redeem && !orders.ok.is_empty() {
        let mut created = orders.ok.clone();
        created.sort();
        let base = opts.principal.clone();
        let cpu_before_redeems = node_cpu::snapshot(&opts.nodes);
        let started = Instant::now();
        let (redeems, redeem_time) = drive(
            &opts.principal,
            &opts.token,
            opts.concurrency,
            opts.rate,
            Arc::new(created.clone()),
            move |reference| {
                (
                    Method::POST,
                    path_of(&base, &format!("/v1/custody/orders/{reference}/redeem")),
                    None,
                    202,
                )
            },
        )
        .await;
        println!();
        println!(
            "redeem       {} accepted (202), {} errors, {:.1} s, {:.1} redeems/s",
            redeems.ok.len(),
            redeems.error_count(),
            redeem_time.as_secs_f64(),
            redeems.ok.len() as f64 / redeem_time.as_secs_f64()
        );
        redeems.print_errors();
        print_latencies("latency", &redeems.latencies);
        let (complete, left, statuses) = await_wallets(&opts, redeems.ok.clone(), started).await;
        clean &= redeems.error_count() == 0 && left.is_empty();
        let last = complete.max();
        println!(
            "wallets      {} of {} complete at the beneficiary within {:.1} s of the first redeem",
            complete.len(),
            redeems.ok.len(),
            last as f64 / 1e6
        );
        if !left.is_empty() {
            println!(
                "  {} not complete after {} s: {statuses:?}",
                left.len(),
                opts.timeout.as_secs()
            );
        }
        if last > 0 {
            println!(
                "redemption   {:.1} wallets/s (redeem sent to wallet complete)",
                complete.len() as f64 / (last as f64 / 1e6)
            );
        }
        print_latencies("complete at", &complete);
        node_cpu::print_per_operation(
            "node CPU per redemption:",
            &opts.nodes,
            &cpu_before_redeems,
            &node_cpu::snapshot(&opts.nodes),
            complete.len() as usize,
            None,
        );
    }

    println!();
    let after = measure_floor(&opts, "after").await;
    print_floor("after", &after);
    let floor = if before.latency <= after.latency {
        before
    } else {
        after
    };
    let cpu = floor.cpu.max(Duration::from_micros(1));
    let cpu_bound = cores as f64 / cpu.as_secs_f64();
    let (on_cores, at_concurrency) = tokio::task::spawn_blocking({
        let coin = opts.coin;
        let concurrency = opts.concurrency;
        move || -> Result<_, floor::Error> {
            let dir = std::env::temp_dir();
            let on_cores = floor::concurrent(n, coin, &dir, cores, Duration::from_secs(2))?;
            let at_concurrency =
                floor::concurrent(n, coin, &dir, concurrency, Duration::from_secs(2))?;
            Ok((on_cores, at_concurrency))
        }
    })
    .await
    .expect("floor threads do not panic")
    .expect("floor runs");
    let tn = on_cores.orders_per_second;
    println!(
        "floor        {} per order (the lower median of before/after)",
        ms(micros(floor.latency))
    );
    println!(
        "floor        {cpu_bound:.1} orders/s CPU-bound ({cores} cores / {} CPU per order); measured on {cores} threads: {tn:.1} orders/s",
        ms(micros(cpu))
    );
    println!(
        "floor        run by {} threads at once, as many as the clients: p50 {}, {:.1} orders/s",
        opts.concurrency,
        ms(micros(at_concurrency.latency)),
        at_concurrency.orders_per_second
    );
    node_cpu::print_per_operation(
        "node CPU per order:",
        &opts.nodes,
        &cpu_before_orders,
        &cpu_after_orders,
        orders.ok.len(),
        Some(cpu),
    );
    println!();
    let p50 = orders.latencies.value_at_quantile(0.50);
    let lat_target = 2 * micros(floor.latency);
    let lat_target_concurrent = 2 * micros(at_concurrency.latency);
    let p50_within = |target| !orders.latencies.is_empty() && p50 <= target;
    let rate_target = cpu_bound / 2.0;
    println!(
        "target p50 <= 2 × floor latency:  {} <= {}  {}",
        ms(p50),
        ms(lat_target),
        verdict(p50_within(lat_target))
    );
    println!(
        "  (against the floor run at the same concurrency: {} <= {}  {})",
        ms(p50),
        ms(lat_target_concurrent),
        verdict(p50_within(lat_target_concurrent))
    );
    println!(
        "target orders/s >= 50% of floor:  {order_rate:.1} >= {rate_target:.1}  {}",
        verdict(order_rate >= rate_target)
    );
    println!(
        "  (against the floor measured on {cores} threads under the same machine load: {order_rate:.1} >= {:.1}  {})",
        tn / 2.0,
        verdict(order_rate >= tn / 2.0)
    );
    println!(
        "errors       {}",
        if clean {
            "none"
        } else {
            "some (above): exit status 1"
        }
    );
    clean
}

/// A run id from the clock and the process id (references stay unique
/// across runs against the same nodes).
pub fn default_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("bench-{:x}-{:x}", now.as_millis(), std::process::id())
}

/// Reads an operator token file.
pub fn read_token(path: &PathBuf) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read token file {}: {e}", path.display()))
        .trim()
        .to_string()
}
