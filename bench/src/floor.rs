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

//! The floor of one custody order: the cryptographic work the protocol
//! makes the principal, the fiduciaries and the beneficiary do for one
//! order, done in this process on one thread with no network, plus one
//! durable write (a redb commit, as the node's store does).
//!
//! Per fiduciary: seal the `custody/order` envelope to it, decode, verify
//! and open it as the fiduciary, draw k_i and commit to it with the proof of
//! knowledge, seal the `custody/commitment` envelope back, decode, verify
//! and open it as the principal, `verify_commitment`. Then the wallet key
//! and address, and one `custody/notice` envelope sealed to the beneficiary
//! and opened by it.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use milagro_custody::{
    Coin, PublicKey, SecretScalar,
    messages::{self, Commitment, Notice, NoticeFiduciary, Order},
};
use milagro_proto::{
    Cid, DecapsulationKey, EcdhKey, Envelope, EnvelopeDraft, IdentityDraft, Limits, LocalEcdhKey,
    LocalSigner, Signer, VerifiedIdentity, seal,
};
use redb::{Database, TableDefinition};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const TIME_MS: u64 = 1_700_000_000_000;

struct Party {
    signer: LocalSigner,
    ecdh: LocalEcdhKey,
    kem: DecapsulationKey,
    identity: VerifiedIdentity,
    /// The node ID as text (what custody bodies carry).
    id: String,
}

fn party(name: &str) -> Result<Party, Error> {
    let signer = LocalSigner::generate()?;
    let ecdh = LocalEcdhKey::generate()?;
    let kem = DecapsulationKey::generate()?;
    let identity = IdentityDraft::new(
        name,
        TIME_MS,
        signer.public_key(),
        ecdh.public_key(),
        kem.public_key(),
    )
    .sign(&signer)?;
    let id = identity.id().to_string();
    Ok(Party {
        signer,
        ecdh,
        kem,
        identity,
        id,
    })
}

/// The parties of one order and a redb database for the durable write.
pub struct Floor {
    principal: Party,
    fiduciaries: Vec<Party>,
    beneficiary: Party,
    beneficiary_key: PublicKey,
    coin: Coin,
    db: Database,
    dir: PathBuf,
    seq: u64,
}

/// Where the crypto time of one order went (wall time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Breakdown {
    /// `seal` of the order, commitment and notice envelopes.
    pub seal: Duration,
    /// `decode_and_verify` + `open` of those envelopes.
    pub open: Duration,
    /// Drawing k_i and `Commitment::new` (the proof).
    pub prove: Duration,
    /// `verify_commitment`, `wallet_key` and the address.
    pub verify: Duration,
    /// Body encoding and decoding.
    pub codec: Duration,
}

impl Breakdown {
    fn add(&mut self, o: &Breakdown) {
        self.seal += o.seal;
        self.open += o.open;
        self.prove += o.prove;
        self.verify += o.verify;
        self.codec += o.codec;
    }
}

/// A stopwatch that charges each lap to a part.
struct Laps(Instant);

impl Laps {
    fn lap(&mut self, to: &mut Duration) {
        let now = Instant::now();
        *to += now - self.0;
        self.0 = now;
    }
}

/// How long the parts of one order took.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Wall time of the crypto part.
    pub crypto: Duration,
    /// Wall time of the durable write.
    pub write: Duration,
    /// CPU time of this thread for the whole order.
    pub cpu: Duration,
    pub breakdown: Breakdown,
}

impl Sample {
    pub fn total(&self) -> Duration {
        self.crypto + self.write
    }
}

/// CPU time of the calling thread (Linux: /proc/thread-self/schedstat).
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

impl Floor {
    /// Parties for an order with `n` fiduciaries; the database lives in a
    /// new directory under `parent`.
    pub fn new(n: usize, coin: Coin, parent: &Path, tag: &str) -> Result<Floor, Error> {
        let principal = party("principal")?;
        let fiduciaries = (0..n)
            .map(|i| party(&format!("fiduciary-{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        let beneficiary = party("beneficiary")?;
        let beneficiary_key = SecretScalar::random()?.public_key();
        let dir = parent.join(format!("milagro-bench-floor-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let db = Database::create(dir.join("floor.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(KV)?;
        tx.commit()?;
        Ok(Floor {
            principal,
            fiduciaries,
            beneficiary,
            beneficiary_key,
            coin,
            db,
            dir,
            seq: 0,
        })
    }

    /// One order's work; returns how long its parts took.
    pub fn run_once(&mut self) -> Result<Sample, Error> {
        self.seq += 1;
        let cpu0 = thread_cpu_time();
        let started = Instant::now();
        let breakdown = self.crypto()?;
        let crypto = started.elapsed();
        let w0 = Instant::now();
        self.durable_write()?;
        let write = w0.elapsed();
        let cpu = match (cpu0, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => crypto + write,
        };
        Ok(Sample {
            crypto,
            write,
            cpu,
            breakdown,
        })
    }

    fn crypto(&self) -> Result<Breakdown, Error> {
        let mut b = Breakdown::default();
        let mut t = Laps(Instant::now());
        let limits = Limits::default();
        let custody_limits = messages::Limits::default();
        let p = &self.principal;
        let order = Order {
            reference: format!("floor-{}", self.seq),
            coin: self.coin,
            principal: p.id.clone(),
            beneficiary: self.beneficiary.id.clone(),
            fiduciaries: self.fiduciaries.iter().map(|f| f.id.clone()).collect(),
            threshold: self.fiduciaries.len() as u32,
        };
        let order_body = messages::encode(&order)?;
        let order_cid = order.cid()?;
        t.lap(&mut b.codec);
        let mut verified = Vec::with_capacity(self.fiduciaries.len());
        let mut notice_fiduciaries = Vec::with_capacity(self.fiduciaries.len());
        let mut links: Vec<Cid> = Vec::new();
        for f in &self.fiduciaries {
            // principal -> fiduciary
            let sent = seal(
                &p.signer,
                &p.identity,
                &[&f.identity],
                &EnvelopeDraft {
                    secret_body: Some(&order_body),
                    ..EnvelopeDraft::new("custody/order", TIME_MS)
                },
            )?;
            t.lap(&mut b.seal);
            let got = Envelope::decode_and_verify(
                sent.cid(),
                sent.block().bytes(),
                &p.identity,
                &limits,
            )?;
            let body = got.open(f.identity.id(), &f.ecdh, &f.kem)?;
            t.lap(&mut b.open);
            let received: Order = messages::decode(&body, &custody_limits)?;
            let received_cid = received.cid()?;
            t.lap(&mut b.codec);
            // the fiduciary draws k_i and commits to it
            let k = SecretScalar::random()?;
            let commitment = Commitment::new(&received_cid, &f.id, &k)?;
            t.lap(&mut b.prove);
            let commitment_body = messages::encode(&commitment)?;
            t.lap(&mut b.codec);
            let order_link = [*sent.cid()];
            let answer = seal(
                &f.signer,
                &f.identity,
                &[&p.identity],
                &EnvelopeDraft {
                    links: &order_link,
                    secret_body: Some(&commitment_body),
                    ..EnvelopeDraft::new("custody/commitment", TIME_MS)
                },
            )?;
            t.lap(&mut b.seal);
            let got = Envelope::decode_and_verify(
                answer.cid(),
                answer.block().bytes(),
                &f.identity,
                &limits,
            )?;
            let body = got.open(p.identity.id(), &p.ecdh, &p.kem)?;
            t.lap(&mut b.open);
            let commitment: Commitment = messages::decode(&body, &custody_limits)?;
            t.lap(&mut b.codec);
            let v = milagro_custody::verify::verify_commitment(&order, &f.id, &commitment)?;
            t.lap(&mut b.verify);
            notice_fiduciaries.push(NoticeFiduciary {
                id: f.id.clone(),
                share_public_key: commitment.share_public_key,
                commitment_cid: *answer.cid(),
            });
            verified.push(v);
            links.push(*sent.cid());
            links.push(*answer.cid());
        }
        let wallet = milagro_custody::verify::wallet_key(&order, &self.beneficiary_key, &verified)?;
        let address = order.coin.address(&wallet)?;
        t.lap(&mut b.verify);
        let notice = Notice {
            order_cid,
            reference: order.reference.clone(),
            coin: order.coin,
            public_key: milagro_custody::keys::encode_public_key(&wallet),
            address,
            threshold: order.threshold,
            fiduciaries: notice_fiduciaries,
            dealer_commitments: None,
            order,
        };
        let notice_body = messages::encode(&notice)?;
        t.lap(&mut b.codec);
        let ben = &self.beneficiary;
        let sent = seal(
            &p.signer,
            &p.identity,
            &[&ben.identity],
            &EnvelopeDraft {
                links: &links,
                secret_body: Some(&notice_body),
                ..EnvelopeDraft::new("custody/notice", TIME_MS)
            },
        )?;
        t.lap(&mut b.seal);
        let got =
            Envelope::decode_and_verify(sent.cid(), sent.block().bytes(), &p.identity, &limits)?;
        let body = got.open(ben.identity.id(), &ben.ecdh, &ben.kem)?;
        t.lap(&mut b.open);
        let _: Notice = messages::decode(&body, &custody_limits)?;
        t.lap(&mut b.codec);
        Ok(b)
    }

    /// One durable redb commit of ~1 KiB, as the node's store does.
    fn durable_write(&self) -> Result<(), Error> {
        let key = format!("order/floor-{}", self.seq);
        let value = [0x5au8; 1024];
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(KV)?;
            table.insert(key.as_bytes(), value.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The floor measured on one thread: medians of `runs` orders (after a
/// warm-up).
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub latency: Duration,
    pub crypto: Duration,
    pub write: Duration,
    pub cpu: Duration,
    pub runs: usize,
    /// Mean of each part over the runs.
    pub breakdown: Breakdown,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the floor for at least `min_runs` orders or `min_time`, whichever
/// is longer (capped at 10 × min_runs orders).
pub fn measure(floor: &mut Floor, min_runs: usize, min_time: Duration) -> Result<Measured, Error> {
    for _ in 0..3 {
        floor.run_once()?;
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min_runs
        || (started.elapsed() < min_time && samples.len() < 10 * min_runs)
    {
        samples.push(floor.run_once()?);
    }
    let mut sum = Breakdown::default();
    for s in &samples {
        sum.add(&s.breakdown);
    }
    let k = samples.len() as u32;
    let breakdown = Breakdown {
        seal: sum.seal / k,
        open: sum.open / k,
        prove: sum.prove / k,
        verify: sum.verify / k,
        codec: sum.codec / k,
    };
    Ok(Measured {
        breakdown,
        latency: median(samples.iter().map(Sample::total).collect()),
        crypto: median(samples.iter().map(|s| s.crypto).collect()),
        write: median(samples.iter().map(|s| s.write).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        runs: samples.len(),
    })
}

/// The floor run by several threads at once.
#[derive(Debug, Clone, Copy)]
pub struct Concurrent {
    pub orders_per_second: f64,
    /// Median wall time of one order, waits for a core included.
    pub latency: Duration,
}

/// `threads` threads each running the floor (each with its own parties and
/// database) for `duration`: orders per second and the median latency.
pub fn concurrent(
    n: usize,
    coin: Coin,
    parent: &Path,
    threads: usize,
    duration: Duration,
) -> Result<Concurrent, Error> {
    let floors = (0..threads)
        .map(|t| Floor::new(n, coin, parent, &format!("t{t}")))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let until = started + duration;
    let handles: Vec<_> = floors
        .into_iter()
        .map(|mut floor| {
            std::thread::spawn(move || -> Result<Vec<Duration>, Error> {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t0 = Instant::now();
                    floor.run_once()?;
                    latencies.push(t0.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().map_err(|_| "a floor thread panicked")??);
    }
    let elapsed = started.elapsed();
    Ok(Concurrent {
        orders_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latency: median(latencies),
    })
}
