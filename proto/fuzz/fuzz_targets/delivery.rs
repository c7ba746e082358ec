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

//! Fuzz the pubsub delivery decoder: any input must be refused with an
//! error, or be the canonical delivery of a block whose bytes hash to its
//! CID; an accepted block then goes to the envelope decoder, as the inbox
//! does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use milagro_proto::block::cid_of;
use milagro_proto::{Envelope, Limits, decode_delivery, encode_delivery};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(block) = decode_delivery(data, limits.max_envelope_bytes) else {
        return;
    };
    assert_eq!(&cid_of(block.bytes()), block.cid());
    assert_eq!(encode_delivery(&block).unwrap(), data);
    let _ = Envelope::decode(block.cid(), block.bytes(), &limits);
});
