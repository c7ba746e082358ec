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

//! Fuzz the host.toml decoder (`milagro::config::Config::parse`: TOML,
//! strict fields, validation of names, hashes and mounts) and the conversion
//! of each `[[plugins]]` entry's `config` table into the JSON its plugin's
//! constructor decodes. Any input must be refused with an error or yield a
//! config whose plugin tables convert to JSON objects.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use milagro::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text, Path::new("/fuzz/host.toml")) else {
        return;
    };
    for plugin in &config.plugins {
        let json = plugin.config_json().expect("a TOML table converts to JSON");
        let value: serde_json::Value =
            serde_json::from_str(&json).expect("the host hands plugins valid JSON");
        assert!(value.is_object(), "{json}");
    }
});
