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

//! The attacker's own IPFS peer, run in the test process (an embedded
//! node on 127.0.0.1): it dials a victim node, serves the identity
//! documents it crafts, reads what any peer may read (the deliveries on a
//! node's inbox topic, whose CIDs a forged reply links to) and publishes
//! deliveries of its own.

use std::{
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use futures::StreamExt;
use milagro_ipfs::{Ipfs, IpfsConfig};
use milagro_proto::{
    Block, Cid, Envelope, Limits, Receipt, VerifiedIdentity, block::cid_of, decode_delivery,
    encode_delivery, inbox_topic, receipt_topic,
};

use milagro_proto::DAG_CBOR;

use crate::Node;

/// The attacker's IPFS peer, dialled to one victim.
pub struct Peer {
    ipfs: Ipfs,
    /// Its libp2p peer ID.
    pub peer_id: String,
    receipts: Arc<Mutex<Vec<Cid>>>,
    runtime: tokio::runtime::Runtime,
    _repo: tempfile::TempDir,
}

impl Peer {
    /// A fresh peer connected to `victim`'s IPFS node.
    pub fn start(victim: &Node) -> Peer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let repo = tempfile::tempdir().unwrap();
        let ipfs = runtime
            .block_on(Ipfs::open(&IpfsConfig::default(), repo.path()))
            .unwrap();
        runtime
            .block_on(ipfs.connect(&victim.ipfs_addresses()[0]))
            .unwrap();
        let peer_id = runtime.block_on(ipfs.id()).unwrap().peer_id;
        Peer {
            ipfs,
            peer_id,
            receipts: Arc::default(),
            runtime,
            _repo: repo,
        }
    }

    /// Serves a DAG-CBOR block (a crafted identity document) to the
    /// victim's IPFS node, which fetches it from this peer; its CID.
    pub fn serve(&self, bytes: &[u8]) -> Cid {
        self.runtime
            .block_on(self.ipfs.put(DAG_CBOR, bytes.to_vec()))
            .unwrap()
    }

    /// Fetches and verifies node `id`'s identity document, as anyone can.
    pub fn identity(&self, id: &str) -> VerifiedIdentity {
        let cid = Cid::try_from(id).unwrap();
        let bytes = self.runtime.block_on(self.ipfs.get(&cid)).unwrap();
        VerifiedIdentity::decode(&cid, &bytes, &Limits::default()).unwrap()
    }

    /// The envelopes delivered over pubsub to `node` from now on, as any
    /// peer subscribed to its inbox topic sees them: CID, and the kind and
    /// sender in their clear header.
    pub fn watch_inbox(&self, node: &Cid) -> Inbox {
        let mut messages = self
            .runtime
            .block_on(self.ipfs.subscribe(&inbox_topic(node)))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        self.runtime.spawn(async move {
            let limits = Limits::default();
            while let Some(message) = messages.next().await {
                let Ok(block) = decode_delivery(&message.data, limits.max_envelope_bytes) else {
                    continue;
                };
                let Ok(envelope) = Envelope::from_block(block, &limits) else {
                    continue;
                };
                let seen = (
                    *envelope.cid(),
                    envelope.kind().to_string(),
                    *envelope.sender(),
                );
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        Inbox(rx)
    }

    /// Collects the receipts `victim` signs for envelopes of `sender`.
    pub fn listen_receipts(&self, sender: &Cid, victim: &VerifiedIdentity) {
        let mut messages = self
            .runtime
            .block_on(self.ipfs.subscribe(&receipt_topic(sender)))
            .unwrap();
        let (receipts, victim) = (Arc::clone(&self.receipts), victim.clone());
        self.runtime.spawn(async move {
            while let Some(message) = messages.next().await {
                if let Ok(receipt) = Receipt::decode(&message.data)
                    && receipt.verify(&victim).is_ok()
                {
                    receipts.lock().unwrap().push(*receipt.envelope());
                }
            }
        });
    }

    /// Publishes any bytes on any topic (hostile messages included).
    pub fn publish(&self, topic: &str, message: Vec<u8>) -> Result<(), String> {
        self.runtime
            .block_on(self.ipfs.publish(topic, message))
            .map_err(|e| e.to_string())
    }

    /// Every receipt [`Peer::listen_receipts`] collected, in arrival order.
    pub fn receipts(&self) -> Vec<Cid> {
        self.receipts.lock().unwrap().clone()
    }

    /// Publishes `bytes` as a delivery on `victim`'s inbox topic, retrying
    /// while the victim's subscription is not known yet.
    pub fn deliver(&self, victim: &VerifiedIdentity, bytes: &[u8]) -> Cid {
        let block = Block::from_parts(&cid_of(bytes), bytes.to_vec(), 4 << 20).unwrap();
        let message = encode_delivery(&block).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Err(e) = self.publish(&inbox_topic(victim.id()), message.clone()) {
            assert!(
                Instant::now() < deadline,
                "cannot publish to the victim: {e}"
            );
            thread::sleep(Duration::from_millis(100));
        }
        *block.cid()
    }

    /// Waits up to `wait` for the victim's receipt for `cid`.
    pub fn receipt(&self, cid: &Cid, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.receipts.lock().unwrap().contains(cid) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// The envelopes seen on a node's inbox topic, see [`Peer::watch_inbox`].
pub struct Inbox(mpsc::Receiver<(Cid, String, Cid)>);

impl Inbox {
    /// The CID of the next envelope of `kind` from `sender` seen, waiting
    /// up to `wait` in all.
    pub fn next(&self, kind: &str, sender: &Cid, wait: Duration) -> Cid {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok((cid, k, s)) if k == kind && s == *sender => return cid,
                Ok(_) => {}
                Err(e) => panic!("no {kind} from {sender} seen within {wait:?}: {e}"),
            }
        }
    }
}
