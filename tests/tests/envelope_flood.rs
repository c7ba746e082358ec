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

//! Issue 9 scenario: 1,000 bad envelopes (forged, replayed, re-addressed,
//! oversized, truncated), generated from a seeded RNG, each delivered over
//! both transports: `POST /v1/inbox`, and a delivery published on the
//! node's inbox topic by a second IPFS peer the test runs in-process. None
//! may be accepted; an envelope the node already holds must come back as a
//! harmless duplicate, not processed again; a valid control envelope sent
//! over each transport every 100 cases must still be processed; and the node
//! must end healthy with nothing but the controls in its inbox.
//!
//! Pubsub gives the publisher no answer, so the test counts on the node: a
//! refusal is a log line naming the test's peer, an acceptance (or a
//! duplicate) is the signed receipt the node publishes for it; after the
//! run the node's store must hold only the control envelopes.

use std::{
    collections::{BTreeMap, HashSet},
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use ipld_core::ipld::Ipld;
use milagro_ipfs::RAW;
use milagro_proto::{Block, Cid, VerifiedIdentity, block::cid_of, encode_delivery, inbox_topic};
use milagro_tests::{
    Node, NodeConfig, PluginEntry,
    attacker::Peer,
    craft::{
        self as craft, Party, deliver, encode, fetch_identity, now_ms, party, publish, resign,
        sealed, to_map, wait_processed,
    },
    json, plugin_library,
};

/// Seed of the case generator; `MILAGRO_FLOOD_SEED` overrides it.
const SEED: u64 = 0x6d69_6c61_6772_6f09;
const CASES_PER_FAMILY: usize = 200;
/// A control envelope goes over each transport before every this many cases.
const CONTROL_EVERY: usize = 100;
/// Deliveries published before waiting for the node's answers (the node's
/// subscription buffers 50 messages).
const BATCH: usize = 20;
/// How long the node may take to answer one batch.
const BATCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The node's `max_envelope_bytes` (the protocol default).
const MAX_ENVELOPE: usize = 4 * 1024 * 1024;
/// Largest gossipsub message the embedded IPFS node sends or accepts.
const PUBSUB_FRAME: usize = 2 * 1024 * 1024;
/// The node's `max_clock_skew_ms` (the default).
const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// SplitMix64: deterministic and plenty to pick cases with.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.range(0, i + 1);
            items.swap(i, j);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Forged,
    Replayed,
    Readdressed,
    Oversized,
    Truncated,
}

const FAMILIES: [Family; 5] = [
    Family::Forged,
    Family::Replayed,
    Family::Readdressed,
    Family::Oversized,
    Family::Truncated,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Transport {
    Http,
    Pubsub,
}

/// One bad delivery.
struct Case {
    family: Family,
    /// What was done to it.
    what: &'static str,
    /// The body of `POST /v1/inbox`, and the block of the pubsub delivery.
    bytes: Vec<u8>,
    /// The CID claimed for `bytes` (`milagro-cid` header, delivery `cid`)
    /// when it is not theirs.
    claimed: Option<Cid>,
    /// Published on pubsub as it is, not wrapped in a delivery.
    raw: bool,
    /// An envelope the node already accepted: it must be a duplicate.
    duplicate: bool,
}

impl Case {
    fn new(family: Family, what: &'static str, bytes: Vec<u8>) -> Case {
        Case {
            family,
            what,
            bytes,
            claimed: None,
            raw: false,
            duplicate: false,
        }
    }

    fn claiming(mut self, cid: Cid) -> Case {
        self.claimed = Some(cid);
        self
    }

    fn raw(mut self) -> Case {
        self.raw = true;
        self
    }

    /// The CID the node would file it under.
    fn cid(&self) -> Cid {
        self.claimed.unwrap_or_else(|| cid_of(&self.bytes))
    }

    /// What goes on the node's inbox topic.
    fn message(&self) -> Vec<u8> {
        if self.raw {
            self.bytes.clone()
        } else {
            delivery(&self.bytes, &self.cid())
        }
    }
}

/// A delivery `{"block", "cid"}` whatever the block and CID (the protocol
/// crate only encodes matching ones).
fn delivery(block: &[u8], cid: &Cid) -> Vec<u8> {
    encode(&BTreeMap::from([
        ("block".to_string(), Ipld::Bytes(block.to_vec())),
        ("cid".to_string(), Ipld::Link(*cid)),
    ]))
}

/// A plaintext `test/note` envelope addressed to `to`.
fn plain(from: &Party, to: &[&VerifiedIdentity], body: &str, time_ms: u64) -> Vec<u8> {
    craft::note(from, to, body, None, time_ms)
}

fn entry<'a>(value: &'a Ipld, key: &str) -> &'a Ipld {
    match value {
        Ipld::Map(map) => map.get(key).unwrap_or_else(|| panic!("no {key}")),
        other => panic!("{key} looked up in {other:?}"),
    }
}

fn list_mut<'a>(map: &'a mut BTreeMap<String, Ipld>, key: &str) -> &'a mut Vec<Ipld> {
    match map.get_mut(key) {
        Some(Ipld::List(list)) => list,
        other => panic!("{key} is not a list: {other:?}"),
    }
}

/// The key stanzas of a sealed envelope's map.
fn stanzas(map: &mut BTreeMap<String, Ipld>) -> &mut Vec<Ipld> {
    match map.get_mut("sealed") {
        Some(Ipld::Map(sealed)) => list_mut(sealed, "keys"),
        other => panic!("not sealed: {other:?}"),
    }
}

/// A field's value as it appears in the encoded envelope (for a list of
/// links, one of them).
fn value_bytes(bytes: &[u8], field: &str, rng: &mut Rng) -> Vec<u8> {
    let envelope = Ipld::Map(to_map(bytes));
    let value = match field {
        "nonce" | "ct" => entry(entry(&envelope, "sealed"), field),
        "epk" | "kem_ct" | "wrapped_key" => match entry(entry(&envelope, "sealed"), "keys") {
            Ipld::List(keys) => entry(&keys[0], field),
            other => panic!("keys: {other:?}"),
        },
        _ => entry(&envelope, field),
    };
    match value {
        Ipld::Bytes(b) => b.clone(),
        Ipld::String(s) => s.as_bytes().to_vec(),
        Ipld::Link(cid) => cid.to_bytes(),
        Ipld::Integer(i) => u64::try_from(*i).unwrap().to_be_bytes().to_vec(),
        Ipld::List(links) => match &links[rng.range(0, links.len())] {
            Ipld::Link(cid) => cid.to_bytes(),
            other => panic!("{field}: {other:?}"),
        },
        other => panic!("{field}: {other:?}"),
    }
}

/// The block with one random bit flipped inside `field`'s value.
fn flip(bytes: &[u8], field: &str, rng: &mut Rng) -> Vec<u8> {
    let value = value_bytes(bytes, field, rng);
    let start = bytes
        .windows(value.len())
        .position(|w| w == value)
        .unwrap_or_else(|| panic!("{field} not found in the block"));
    let bit = rng.range(0, value.len() * 8);
    let mut out = bytes.to_vec();
    out[start + bit / 8] ^= 1 << (bit % 8);
    out
}

fn fake_cid(rng: &mut Rng) -> Ipld {
    Ipld::Link(cid_of(&rng.bytes(16)))
}

/// The identities the cases are made from, and what the node accepted.
struct World {
    /// The node under test.
    node: VerifiedIdentity,
    /// The legitimate sender (its document published on the node's IPFS).
    x: Party,
    /// Another published identity.
    y: Party,
    /// An identity published nowhere.
    z: Party,
    /// Control envelopes the node accepted, oldest first.
    controls: Vec<Vec<u8>>,
}

impl World {
    /// A genuine envelope from X to the node: sealed, or (1 in 4) plaintext.
    fn genuine(&self, rng: &mut Rng, note: &str) -> Vec<u8> {
        if rng.range(0, 4) == 0 {
            plain(&self.x, &[&self.node], note, now_ms())
        } else {
            sealed(&self.x, &[&self.node], note, now_ms())
        }
    }

    fn case(&self, family: Family, rng: &mut Rng, n: usize) -> Case {
        let note = format!("flood case {n}");
        match family {
            Family::Forged => self.forged(rng, &note),
            Family::Replayed => self.replayed(rng, &note),
            Family::Readdressed => self.readdressed(rng, &note),
            Family::Oversized => self.oversized(rng, &note),
            Family::Truncated => self.truncated(rng, &note),
        }
    }

    fn forged(&self, rng: &mut Rng, note: &str) -> Case {
        let f = Family::Forged;
        match rng.range(0, 5) {
            0 => Case::new(
                f,
                "signed by another identity's key",
                resign(to_map(&self.genuine(rng, note)), &self.y.signer),
            ),
            1 => {
                let mut map = to_map(&self.genuine(rng, note));
                let other = if rng.range(0, 2) == 0 {
                    self.y.doc.id()
                } else {
                    self.node.id()
                };
                map.insert("sender".into(), Ipld::Link(*other));
                Case::new(
                    f,
                    "sender named as another identity",
                    resign(map, &self.x.signer),
                )
            }
            2 => Case::new(
                f,
                "bit flipped in the signature",
                flip(&self.genuine(rng, note), "sig", rng),
            ),
            3 => {
                let field = ["kind", "sender", "time", "id", "recipients"][rng.range(0, 5)];
                Case::new(
                    f,
                    "bit flipped in the header",
                    flip(&self.genuine(rng, note), field, rng),
                )
            }
            _ => {
                let fields = ["body", "nonce", "ct", "epk", "kem_ct", "wrapped_key"];
                let field = fields[rng.range(0, fields.len())];
                let whole = sealed(&self.x, &[&self.node], note, now_ms());
                Case::new(f, "bit flipped in the body", flip(&whole, field, rng))
            }
        }
    }

    fn replayed(&self, rng: &mut Rng, note: &str) -> Case {
        let f = Family::Replayed;
        let control = &self.controls[rng.range(0, self.controls.len())];
        match rng.range(0, 4) {
            0 => {
                let mut map = to_map(control);
                map.insert("body".into(), Ipld::Bytes(note.as_bytes().to_vec()));
                Case::new(
                    f,
                    "message id reused by its sender",
                    resign(map, &self.x.signer),
                )
            }
            1 => {
                let mut map = to_map(&sealed(&self.y, &[&self.node], note, now_ms()));
                map.insert("id".into(), to_map(control)["id"].clone());
                Case::new(
                    f,
                    "message id reused by another sender",
                    resign(map, &self.y.signer),
                )
            }
            2 => Case {
                duplicate: true,
                ..Case::new(f, "accepted envelope sent again", control.clone())
            },
            _ => {
                let off = (MAX_SKEW_MS + 1000) as usize..48 * 3600 * 1000;
                let off = rng.range(off.start, off.end) as u64;
                let time = if rng.range(0, 2) == 0 {
                    now_ms() - off
                } else {
                    now_ms() + off
                };
                Case::new(
                    f,
                    "captured envelope replayed outside the clock skew",
                    sealed(&self.x, &[&self.node], note, time),
                )
            }
        }
    }

    fn readdressed(&self, rng: &mut Rng, note: &str) -> Case {
        let f = Family::Readdressed;
        match rng.range(0, 5) {
            variant @ (0 | 1) => {
                let both = sealed(&self.x, &[&self.node, &self.y.doc], note, now_ms());
                let mut map = to_map(&both);
                let z = Ipld::Link(*self.z.doc.id());
                match rng.range(0, 4) {
                    0 => list_mut(&mut map, "recipients")[1] = z,
                    1 => {
                        list_mut(&mut map, "recipients").pop();
                        stanzas(&mut map).pop();
                    }
                    2 => {
                        list_mut(&mut map, "recipients").swap(0, 1);
                        stanzas(&mut map).swap(0, 1);
                    }
                    _ => {
                        list_mut(&mut map, "recipients").push(z);
                        let copy = stanzas(&mut map)[1].clone();
                        stanzas(&mut map).push(copy);
                    }
                }
                if variant == 0 {
                    Case::new(f, "recipients altered after signing", encode(&map))
                } else {
                    Case::new(
                        f,
                        "recipients altered, re-signed by the sender",
                        resign(map, &self.x.signer),
                    )
                }
            }
            2 => {
                let mut map = to_map(&sealed(&self.x, &[&self.y.doc], note, now_ms()));
                map.insert(
                    "recipients".into(),
                    Ipld::List(vec![Ipld::Link(*self.node.id())]),
                );
                Case::new(
                    f,
                    "sealed to another identity, re-addressed here",
                    resign(map, &self.x.signer),
                )
            }
            3 => {
                let bytes = if rng.range(0, 2) == 0 {
                    sealed(&self.x, &[&self.y.doc], note, now_ms())
                } else {
                    plain(&self.x, &[&self.y.doc], note, now_ms())
                };
                Case::new(f, "for another identity, delivered here", bytes)
            }
            _ => Case::new(
                f,
                "addressed to no one",
                plain(&self.x, &[], note, now_ms()),
            ),
        }
    }

    fn oversized(&self, rng: &mut Rng, note: &str) -> Case {
        let f = Family::Oversized;
        let mut map = to_map(&plain(&self.x, &[&self.node], note, now_ms()));
        let what = match rng.range(0, 20) {
            0 => {
                let size = MAX_ENVELOPE + rng.range(1, 1 << 20);
                map.insert("body".into(), Ipld::Bytes(rng.bytes(size)));
                "over the envelope size limit"
            }
            1..=6 => {
                let extra = rng.range(64, 96);
                list_mut(&mut map, "recipients").extend((0..extra).map(|_| fake_cid(rng)));
                "over the recipients limit"
            }
            7..=13 => {
                let links = rng.range(65, 129);
                map.insert(
                    "links".into(),
                    Ipld::List((0..links).map(|_| fake_cid(rng)).collect()),
                );
                "over the links limit"
            }
            _ => {
                let len = rng.range(1025, 4097);
                map.insert("kind".into(), Ipld::String("k".repeat(len)));
                "kind over the text limit"
            }
        };
        Case::new(f, what, resign(map, &self.x.signer))
    }

    fn truncated(&self, rng: &mut Rng, note: &str) -> Case {
        let f = Family::Truncated;
        let whole = self.genuine(rng, note);
        let cid = cid_of(&whole);
        match rng.range(0, 6) {
            0 => {
                let cut = rng.range(0, whole.len());
                Case::new(f, "cut at a random point", whole[..cut].to_vec())
            }
            1 => {
                let cut = rng.range(0, whole.len());
                Case::new(f, "cut, under the whole block's CID", whole[..cut].to_vec())
                    .claiming(cid)
            }
            2 => {
                let other = if rng.range(0, 2) == 0 {
                    cid_of(&self.controls[rng.range(0, self.controls.len())])
                } else {
                    cid_of(&rng.bytes(32))
                };
                Case::new(f, "under another block's CID", whole).claiming(other)
            }
            3 => {
                let other = if rng.range(0, 2) == 0 {
                    Cid::new_v1(RAW, *cid.hash())
                } else {
                    Cid::new_v0(*cid.hash()).unwrap()
                };
                Case::new(f, "under a CID of another form", whole).claiming(other)
            }
            4 => {
                let message = delivery(&whole, &cid);
                let cut = rng.range(0, message.len());
                Case::new(f, "delivery cut at a random point", message[..cut].to_vec()).raw()
            }
            _ => {
                let len = rng.range(0, 4096);
                Case::new(f, "random bytes", rng.bytes(len)).raw()
            }
        }
    }
}

/// What became of a family's cases on one transport.
#[derive(Default)]
struct Tally {
    cases: usize,
    refused: usize,
    duplicates: usize,
    accepted: usize,
    /// Larger than a pubsub message may be: the test's own IPFS node will
    /// not publish it.
    unsent: usize,
    /// HTTP: neither 2xx nor 4xx; pubsub: neither refused nor receipted.
    other: usize,
}

impl Tally {
    fn add(&mut self, t: &Tally) {
        self.cases += t.cases;
        self.refused += t.refused;
        self.duplicates += t.duplicates;
        self.accepted += t.accepted;
        self.unsent += t.unsent;
        self.other += t.other;
    }

    fn print(&self, family: &str, via: &str) {
        println!(
            "{family:<12} {via:<7} {:>6} {:>8} {:>11} {:>9} {:>7} {:>6}",
            self.cases, self.refused, self.duplicates, self.accepted, self.unsent, self.other
        );
    }
}

/// Counts, as the node's log grows, its lines refusing a pubsub delivery
/// from the test's peer.
struct RefusalLines {
    path: PathBuf,
    peer: String,
    offset: u64,
    count: usize,
}

impl RefusalLines {
    fn count(&mut self) -> usize {
        let mut file = File::open(&self.path).unwrap();
        file.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut new = Vec::new();
        file.read_to_end(&mut new).unwrap();
        let complete = new.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        self.count += String::from_utf8_lossy(&new[..complete])
            .lines()
            .filter(|l| l.contains(&self.peer) && l.contains("refused"))
            .count();
        self.count
    }
}

/// Sends a control envelope over HTTP; it must be accepted and processed.
fn control_http(node: &Node, world: &mut World, n: usize) {
    let bytes = sealed(&world.x, &[&world.node], &format!("control {n}"), now_ms());
    let r = deliver(node, &bytes, None);
    assert_eq!(r.0, 202, "control {n} over HTTP: {}", r.1);
    assert_eq!(json(&r.1)["status"], "accepted", "control {n}: {}", r.1);
    world.controls.push(bytes);
    wait_processed(node, world.controls.len());
}

/// Publishes a control envelope until its receipt arrives (the first ones
/// also wait for the peers to learn each other's subscriptions); it must be
/// processed.
fn control_pubsub(node: &Node, peer: &Peer, world: &mut World, n: usize) {
    let bytes = sealed(&world.x, &[&world.node], &format!("control {n}"), now_ms());
    let block = Block::from_parts(&cid_of(&bytes), bytes.clone(), MAX_ENVELOPE).unwrap();
    let message = encode_delivery(&block).unwrap();
    assert_eq!(message, delivery(&bytes, block.cid()), "delivery encoding");
    let topic = inbox_topic(world.node.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    'publish: loop {
        assert!(
            Instant::now() < deadline,
            "control {n} got no receipt over pubsub:\n{}",
            node.log()
        );
        let wait = match peer.publish(&topic, message.clone()) {
            Ok(()) => Duration::from_secs(2),
            Err(_) => Duration::from_millis(200), // the node's subscription is not known yet
        };
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if peer.receipts().contains(block.cid()) {
                break 'publish;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
    world.controls.push(bytes);
    wait_processed(node, world.controls.len());
}

fn over_http(node: &Node, case: &Case, tally: &mut Tally) {
    tally.cases += 1;
    let claimed = case.claimed.map(|c| c.to_string());
    let (status, body) = deliver(node, &case.bytes, claimed.as_deref());
    match status {
        202 if case.duplicate && json(&body)["status"] == "duplicate" => tally.duplicates += 1,
        202 => {
            tally.accepted += 1;
            println!("ACCEPTED over HTTP ({}): {body}", case.what);
        }
        400..=499 => tally.refused += 1,
        _ => {
            tally.other += 1;
            println!(
                "HTTP {status} for {:?} ({}): {body}",
                case.family, case.what
            );
        }
    }
}

/// Publishes up to [`BATCH`] cases and waits until the node has answered
/// each: a refusal in its log, or a receipt.
fn over_pubsub(
    peer: &Peer,
    log: &mut RefusalLines,
    topic: &str,
    batch: &[&Case],
    tally: &mut Tally,
) {
    let (refused_before, receipts_before) = (log.count(), peer.receipts().len());
    let mut sent = Vec::new();
    for case in batch {
        tally.cases += 1;
        let message = case.message();
        let size = message.len();
        match peer.publish(topic, message) {
            Ok(()) => sent.push(*case),
            Err(_) if size > PUBSUB_FRAME => tally.unsent += 1,
            Err(e) => panic!("publishing {} bytes: {e}", size),
        }
    }
    let deadline = Instant::now() + BATCH_TIMEOUT;
    loop {
        let refused = log.count() - refused_before;
        let receipts: HashSet<Cid> = peer.receipts()[receipts_before..].iter().copied().collect();
        let receipted: Vec<&&Case> = sent
            .iter()
            .filter(|c| !c.raw && receipts.contains(&c.cid()))
            .collect();
        if refused + receipted.len() >= sent.len() || Instant::now() >= deadline {
            tally.refused += refused;
            for case in &receipted {
                if case.duplicate {
                    tally.duplicates += 1;
                } else {
                    tally.accepted += 1;
                    println!("ACCEPTED over pubsub ({}): {}", case.what, case.cid());
                }
            }
            tally.other += sent.len().saturating_sub(refused + receipted.len());
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_thousand_bad_envelopes_on_both_transports_are_refused() {
    let started = Instant::now();
    let seed = std::env::var("MILAGRO_FLOOD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut b = Node::start(
        NodeConfig::new("b")
            // Oversized envelopes reach the inbox's own limit, not the HTTP one.
            .http("max_body_bytes = 8388608")
            // A bit flip in the sender's CID names an identity found nowhere.
            .section("[ipfs]\ntimeout_ms = 1000")
            .plugin(PluginEntry::new(
                "probe",
                &plugin_library("milagro-test-probe"),
                "{ label = \"b\", consumes = [\"test/note\"] }",
            )),
    );
    let mut world = World {
        node: fetch_identity(&b, &b.id()),
        x: party("x"),
        y: party("y"),
        z: party("z-unpublished"),
        controls: Vec::new(),
    };
    for p in [&world.x, &world.y] {
        assert_eq!(publish(&b, p.doc.block().bytes()), p.doc.id().to_string());
    }
    let senders = [*world.x.doc.id(), *world.y.doc.id(), *world.node.id()];
    // A second IPFS peer, in this process: publishes on the node's inbox
    // topic and collects the receipts the node publishes.
    let peer = Peer::start(&b);
    for sender in &senders {
        peer.listen_receipts(sender, &world.node);
    }
    let topic = inbox_topic(world.node.id());
    let mut log = RefusalLines {
        path: b.dir.path().join("node.log"),
        peer: peer.peer_id.clone(),
        offset: 0,
        count: 0,
    };

    let mut rng = Rng(seed);
    let mut plan: Vec<Family> = FAMILIES
        .iter()
        .flat_map(|&f| std::iter::repeat_n(f, CASES_PER_FAMILY))
        .collect();
    rng.shuffle(&mut plan);
    let mut tallies: BTreeMap<(Family, Transport), Tally> = BTreeMap::new();
    let mut expected_duplicates = 0;
    for (chunk_index, chunk) in plan.chunks(CONTROL_EVERY).enumerate() {
        control_http(&b, &mut world, chunk_index);
        control_pubsub(&b, &peer, &mut world, chunk_index);
        let cases: Vec<Case> = chunk
            .iter()
            .enumerate()
            .map(|(i, &family)| world.case(family, &mut rng, chunk_index * CONTROL_EVERY + i))
            .collect();
        expected_duplicates += cases.iter().filter(|c| c.duplicate).count();
        for case in &cases {
            over_http(
                &b,
                case,
                tallies.entry((case.family, Transport::Http)).or_default(),
            );
        }
        for family in FAMILIES {
            let group: Vec<&Case> = cases.iter().filter(|c| c.family == family).collect();
            for batch in group.chunks(BATCH) {
                let tally = tallies.entry((family, Transport::Pubsub)).or_default();
                over_pubsub(&peer, &mut log, &topic, batch, tally);
            }
        }
    }
    control_http(&b, &mut world, plan.len() / CONTROL_EVERY);
    control_pubsub(&b, &peer, &mut world, plan.len() / CONTROL_EVERY);
    let elapsed = started.elapsed();

    println!("seed {seed:#x}");
    println!(
        "{:<12} {:<7} {:>6} {:>8} {:>11} {:>9} {:>7} {:>6}",
        "family", "via", "cases", "refused", "duplicates", "accepted", "unsent", "other"
    );
    let mut total = Tally::default();
    for ((family, transport), t) in &tallies {
        t.print(&format!("{family:?}"), &format!("{transport:?}"));
        total.add(t);
        assert_eq!(
            t.refused + t.duplicates + t.accepted + t.unsent + t.other,
            t.cases,
            "{family:?} over {transport:?}: every case counted once"
        );
    }
    total.print("total", "both");
    println!(
        "{} control envelopes processed; {:.1} s",
        world.controls.len(),
        elapsed.as_secs_f64()
    );

    assert_eq!(total.cases, 2 * FAMILIES.len() * CASES_PER_FAMILY);
    assert_eq!(total.accepted, 0, "bad envelopes accepted");
    assert_eq!(total.other, 0, "deliveries neither refused nor answered");
    assert_eq!(
        total.duplicates,
        2 * expected_duplicates,
        "every envelope sent again is a duplicate"
    );
    assert_eq!(b.get("/v1/status").0, 200, "node healthy after the flood");
    assert!(!b.log().contains("panicked"), "a panic in the node log");

    // Processed: the controls, once each, and nothing else.
    let controls: HashSet<String> = world
        .controls
        .iter()
        .map(|c| cid_of(c).to_string())
        .collect();
    let received = json(&b.get_auth("/v1/probe/received").1);
    let received = received.as_array().unwrap();
    assert_eq!(received.len(), controls.len());
    for record in received {
        assert!(
            controls.contains(record["cid"].as_str().unwrap()),
            "{record}"
        );
        assert_eq!(record["processed"], 1, "processed once: {record}");
    }

    // The inbox holds the controls and nothing else.
    b.kill();
    let store = milagro::store::Store::open(&b.dir.path().join("data/milagro.redb")).unwrap();
    let inbox = store.namespace("inbox");
    let held: HashSet<String> = inbox
        .scan(b"env/", None, usize::MAX)
        .unwrap()
        .iter()
        .map(|(k, _)| Cid::try_from(&k[b"env/".len()..]).unwrap().to_string())
        .collect();
    assert_eq!(held, controls, "the inbox holds only the controls");
    let seen = inbox.scan(b"seen/", None, usize::MAX).unwrap().len();
    assert_eq!(seen, controls.len(), "message ids recorded: the controls'");
}
