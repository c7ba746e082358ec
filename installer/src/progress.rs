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

//! What the installer tells the operator while it works: one plain line per
//! step on stdout (so a log or a pipe gets one line each), and, when stderr
//! is a terminal, bars for download bytes and crates compiled, and spinners
//! for the waits.

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
pub struct Progress {
    bars: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            bars: std::io::stderr().is_terminal(),
        }
    }
}

/// Counts the crates a cargo build compiles.
pub struct Counter {
    bar: ProgressBar,
    compiled: usize,
}

impl Counter {
    pub fn compiled(&mut self, krate: &str) {
        self.compiled += 1;
        self.bar
            .set_message(format!("{} crate(s) compiled, {krate}", self.compiled));
    }

    /// Removes the spinner; the number of crates compiled.
    pub fn finish(self) -> usize {
        self.bar.finish_and_clear();
        self.compiled
    }
}

impl Progress {
    /// One line for one step.
    pub fn step(&self, message: &str) {
        println!("milagro-install: {message}");
    }

    /// A byte counter for a download of `total` bytes (when announced).
    pub fn bytes(&self, total: Option<u64>) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bytes:>10} / {total_bytes:<10} {bar:30} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    }

    /// A spinner counting the crates a build compiles.
    pub fn counter(&self, what: &str) -> Counter {
        self.step(&format!("{what}: building"));
        let bar = if self.bars {
            spinner(what)
        } else {
            ProgressBar::hidden()
        };
        Counter { bar, compiled: 0 }
    }
}

/// A spinner on stderr (drawn only on a terminal).
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
