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

//! Fuzz the identity document decoder: any input must be refused with an
//! error or accepted as a document whose bytes re-encode identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use milagro_proto::block::cid_of;
use milagro_proto::{Limits, VerifiedIdentity};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let cid = cid_of(data);
    if let Ok(id) = VerifiedIdentity::decode(&cid, data, &limits) {
        assert_eq!(id.block().bytes(), data);
        assert_eq!(id.id(), &cid);
        let _ = id.verify_rotation(&id);
    }
});
