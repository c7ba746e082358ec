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

//! The cost of crossing the plugin ABI: one request through a loaded
//! plugin library (host -> `PluginObj::handle` -> response) against the same
//! handler of the same plugin linked into this binary and called directly.
//!
//! The library is the example plugin as cargo built it for this bench, in
//! the same profile, next to the bench binary.

use std::{hint::black_box, path::PathBuf};

use abi_stable::{sabi_trait::TD_Opaque, std_types::RArc};
use criterion::{Criterion, criterion_group, criterion_main};
use milagro::{config::PluginConfig, facilities::PluginHost, plugins, store::Store};
use milagro_plugin_api::{
    Host, Plugin, Request,
    abi::{AbiRequest, HostObj_TO},
};
use milagro_plugin_example::{Config, Example};
use sha2::{Digest, Sha256};

fn example_library() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    [
        deps.join("libmilagro_plugin_example.so"),
        deps.join("../libmilagro_plugin_example.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("cargo builds the example plugin's cdylib as a dev-dependency of this bench")
}

fn greeting_request() -> Request {
    Request {
        operation: "greeting".into(),
        method: "GET".into(),
        path: "/v1/example/greeting".into(),
        params: vec![],
        query: "name=bench".into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: vec![],
    }
}

fn abi_overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let path = example_library();
    let config = PluginConfig {
        name: "example".into(),
        sha256: hex::encode(Sha256::digest(std::fs::read(&path).unwrap())),
        path,
        enabled: true,
        mount: None,
        config: toml::Table::new(),
    };
    let loaded = plugins::construct_all(plugins::open_all(&[config]).unwrap(), &store, None)
        .unwrap()
        .remove(0);

    let host = HostObj_TO::from_ptr(
        RArc::new(PluginHost::new(
            "inproc",
            store.namespace("plugin/inproc"),
            None,
        )),
        TD_Opaque,
    );
    let config: Config = serde_json::from_str("{}").unwrap();
    let in_process = Example::new(config, Host::new(host)).unwrap();
    let greeting = in_process
        .routes()
        .into_iter()
        .find(|route| route.operation() == "greeting")
        .expect("the example plugin serves a greeting")
        .handler();

    let mut group = c.benchmark_group("plugin_request");
    group.bench_function("in_process", |b| {
        b.iter(|| {
            let request = black_box(greeting_request());
            let response = runtime.block_on(greeting(&in_process, &request));
            black_box(response.unwrap().body.len())
        })
    });
    group.bench_function("through_abi", |b| {
        b.iter(|| {
            let request = AbiRequest::from(black_box(greeting_request()));
            let response = runtime.block_on(loaded.object.handle(request));
            black_box(response.body.len())
        })
    });
    group.finish();
}

criterion_group!(benches, abi_overhead);
criterion_main!(benches);
