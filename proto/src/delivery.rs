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

//! Delivery messages: how an envelope travels over pubsub.
//!
//! A delivery is a DAG-CBOR map `{"cid": <link>, "block": <bytes>}` published
//! on the recipient's inbox topic `/milagro/1/inbox/<node-id>`. It carries the
//! envelope's bytes so the receiver need not fetch them; the receiver still
//! checks that they hash to the CID (see [`Block::from_parts`]).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{
    Block, Cid, Result,
    block::{from_dag_cbor_canonical, to_dag_cbor},
    limits,
};

/// Prefix of every node's inbox topic; the node ID follows.
pub const INBOX_TOPIC_PREFIX: &str = "/milagro/1/inbox/";

/// HTTP header of an envelope delivered to `POST /v1/inbox`: the CID of the
/// envelope block in the body (checked against the body).
pub const CID_HEADER: &str = "milagro-cid";

/// The pubsub topic a node with this ID listens on.
pub fn inbox_topic(node: &Cid) -> String {
    format!("{INBOX_TOPIC_PREFIX}{node}")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryWire {
    cid: Cid,
    block: ByteBuf,
}

/// Encodes a delivery of `block`.
pub fn encode_delivery(block: &Block) -> Result<Vec<u8>> {
    to_dag_cbor(&DeliveryWire {
        cid: *block.cid(),
        block: ByteBuf::from(block.bytes().to_vec()),
    })
}

/// Decodes a delivery and checks its block against its CID and size limit.
pub fn decode_delivery(message: &[u8], max_block_bytes: usize) -> Result<Block> {
    // The CID and a little framing ride beside the block.
    limits::check("delivery", message.len(), max_block_bytes + 128)?;
    let wire: DeliveryWire = from_dag_cbor_canonical(message)?;
    Block::from_parts(&wire.cid, wire.block.into_vec(), max_block_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn delivery_round_trips_and_checks_the_hash() {
        let block = Block::encode(&("hello", 1u8)).unwrap();
        let message = encode_delivery(&block).unwrap();
        assert_eq!(decode_delivery(&message, 1024).unwrap(), block);

        let other = Block::encode(&("other", 2u8)).unwrap();
        let forged = to_dag_cbor(&DeliveryWire {
            cid: *other.cid(),
            block: ByteBuf::from(block.bytes().to_vec()),
        })
        .unwrap();
        assert!(matches!(
            decode_delivery(&forged, 1024),
            Err(Error::HashMismatch { .. })
        ));
        assert!(matches!(
            decode_delivery(&message, 4),
            Err(Error::Oversize { .. })
        ));
        assert!(decode_delivery(b"\xa1garbage", 1024).is_err());
    }

    #[test]
    fn topic_names_the_node() {
        let block = Block::encode(&1u8).unwrap();
        assert_eq!(
            inbox_topic(block.cid()),
            format!("/milagro/1/inbox/{}", block.cid())
        );
    }
}
