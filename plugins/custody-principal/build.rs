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

//! Links the handler tests, which run the fiduciary and beneficiary
//! plugins beside this one in one process (`tests/handlers.rs`). Every
//! plugin library exports the root-module symbol the host's loader looks
//! up by name, so a binary that links three plugins defines it three
//! times; the tests never look it up, so the linker may keep any.

fn main() {
    println!("cargo::rustc-link-arg-tests=-Wl,--allow-multiple-definition");
}
