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

//! The plugin pin covers the code that runs: a real `milagro` process whose
//! plugin library is replaced at its configured path right after the node
//! read it and checked its sha256 runs the checked bytes, never the
//! replacement; a library replaced before the read is refused by the pin.
//!
//! The replacement is a second valid build of the probe: the same library
//! with its build mark patched, so whichever copy runs says which it is.
//! The node pauses after the check (a hook compiled into debug builds only,
//! `MILAGRO_TEST_PAUSE_AFTER_PLUGIN_CHECK`), so the swap happens exactly
//! between the check and the load, every run.

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use milagro_tests::{Node, NodeConfig, PluginEntry, json, plugin_library, sha256_file};

const ORIGINAL: &[u8] = b"probe-build-mark:original";
const SWAPPED: &[u8] = b"probe-build-mark:SWAPPED!";

/// The probe library and a copy of it whose build mark says `SWAPPED!`.
fn original_and_swapped() -> (Vec<u8>, Vec<u8>) {
    assert_eq!(ORIGINAL.len(), SWAPPED.len());
    let original = std::fs::read(plugin_library("milagro-test-probe")).expect("probe library");
    let at: Vec<usize> = original
        .windows(ORIGINAL.len())
        .enumerate()
        .filter(|(_, w)| *w == ORIGINAL)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the probe holds its build mark exactly once");
    let mut swapped = original.clone();
    swapped[at[0]..at[0] + SWAPPED.len()].copy_from_slice(SWAPPED);
    (original, swapped)
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what} did not happen in 30 s");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The files the process of `node` has mapped, from `/proc/<pid>/maps`
/// (the process found by its config path).
fn mapped_files(node: &Node) -> String {
    let config = node.dir.path().join("host.toml");
    let config = config.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let path = entry.expect("/proc entry").path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.contains(&config) && args.iter().any(|a| a == "serve") {
            return std::fs::read_to_string(path.join("maps")).expect("maps of the node");
        }
    }
    panic!("no process serves {config}");
}

#[test]
fn a_library_swapped_after_its_hash_was_checked_is_never_run() {
    let (original, swapped) = original_and_swapped();
    let libs = tempfile::tempdir().unwrap();
    let library: PathBuf = libs.path().join("libpinned_probe.so");
    std::fs::write(&library, &original).unwrap();
    let replacement = libs.path().join("replacement.so");
    std::fs::write(&replacement, &swapped).unwrap();
    let pinned = sha256_file(&library);
    assert_ne!(pinned, sha256_file(&replacement));

    let pause = tempfile::tempdir().unwrap();
    let config = NodeConfig::new("pin")
        .env(
            "MILAGRO_TEST_PAUSE_AFTER_PLUGIN_CHECK",
            pause.path().to_str().unwrap(),
        )
        .plugin(PluginEntry::new("pinned", &library, "{ label = \"P\" }"));
    let starting = thread::spawn(move || Node::start(config));

    // The node has read the library and checked its hash: replace the file
    // at the configured path (a new file renamed over it, as an attacker
    // with write access to the plugin dir would) and let the node go on.
    wait_for(&pause.path().join("pinned.checked"), "the node's check");
    std::fs::rename(&replacement, &library).unwrap();
    assert_ne!(
        sha256_file(&library),
        pinned,
        "the file at the path is swapped"
    );
    std::fs::write(pause.path().join("pinned.go"), b"").unwrap();
    let node = starting.join().expect("the node starts");

    let whoami = json(&node.get_auth("/v1/pinned/whoami").1);
    assert_eq!(whoami["label"], "P");
    assert_eq!(
        whoami["build"],
        String::from_utf8_lossy(ORIGINAL).as_ref(),
        "the node runs the bytes it checked, not the swapped file"
    );
    let plugins = json(&node.get_auth("/v1/plugins").1);
    assert_eq!(plugins[0]["sha256"], pinned.as_str());

    // The loader mapped a sealed memory copy, never the file at the path.
    let maps = mapped_files(&node);
    assert!(maps.contains("/memfd:milagro-plugin"), "{maps}");
    assert!(
        !maps.contains(library.to_str().unwrap()),
        "the library file was mapped: {maps}"
    );
    println!("swapped after the check: the node ran the checked build ({pinned})");
}

#[test]
fn a_library_swapped_before_the_read_is_refused_by_the_pin() {
    let (original, swapped) = original_and_swapped();
    let libs = tempfile::tempdir().unwrap();
    let library = libs.path().join("libpinned_probe.so");
    std::fs::write(&library, &original).unwrap();
    let entry = PluginEntry::new("pinned", &library, "{ label = \"P\" }");
    std::fs::write(&library, &swapped).unwrap();

    let exited = Node::start_expecting_exit(NodeConfig::new("pin-before").plugin(entry.clone()));
    let line = exited.refusal_line();
    assert!(
        line.contains("\"pinned\"") && line.contains("sha256") && line.contains(&entry.sha256),
        "{line}"
    );
    assert!(
        !exited.wrote_data,
        "a refused library leaves nothing on disk"
    );
    assert!(
        !exited.stderr.contains("plugin loaded"),
        "{}",
        exited.stderr
    );
}

/// Without any hook: the configured path is a named pipe, which hands out
/// its bytes once per opening. The node reads the library through it once
/// and never opens the path again (a loader opening it a second time would
/// get whatever the writer sends next: here, the swapped build).
#[test]
fn the_library_path_is_opened_once() {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};

    let (original, swapped) = original_and_swapped();
    let libs = tempfile::tempdir().unwrap();
    let copy = libs.path().join("copy.so");
    std::fs::write(&copy, &original).unwrap();
    let mut entry = PluginEntry::new("piped", &copy, "{ label = \"F\" }");
    let fifo = libs.path().join("libpiped.so");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    entry.path = fifo.clone();

    // Serves `original` to the first reader, then `swapped` to any later
    // one, until told to stop; returns how many readers it served.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (fifo, stop) = (fifo.clone(), std::sync::Arc::clone(&stop));
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                // Opening a pipe for writing without blocking fails (ENXIO)
                // while nobody has it open for reading.
                let Ok(mut pipe) = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(0o4000) // O_NONBLOCK
                    .open(&fifo)
                else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let bytes = if served == 0 { &original } else { &swapped };
                served += 1;
                let mut at = 0;
                while at < bytes.len() && Instant::now() < deadline {
                    match pipe.write(&bytes[at..]) {
                        Ok(n) => at += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(1))
                        }
                        Err(_) => break, // the reader went away
                    }
                }
                drop(pipe);
                // Let the reader drain the pipe and close its end before
                // looking for another one (a writer opening now would join
                // this reading). A second opening by the node would block
                // it until a writer comes, so waiting misses nothing.
                thread::sleep(Duration::from_secs(1));
            }
            served
        })
    };
    let node = Node::start(NodeConfig::new("pipe").plugin(entry.clone()));
    let whoami = json(&node.get_auth("/v1/piped/whoami").1);
    assert_eq!(whoami["build"], String::from_utf8_lossy(ORIGINAL).as_ref());
    let plugins = json(&node.get_auth("/v1/plugins").1);
    assert_eq!(plugins[0]["sha256"], entry.sha256.as_str());
    // Give a late second opening every chance to show.
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let served = writer.join().unwrap();
    assert_eq!(served, 1, "the node opened the library path {served} times");
}
