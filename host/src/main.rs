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

//! The `milagro` command line (see `milagro::cli` and docs/cli.md).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use milagro::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

/// Logs on standard error: the node's at info, a client command's at warn
/// and without time or target, so its one error line reads plainly.
fn init_logging(format: LogFormat, node_side: bool) {
    let default = if node_side { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or a script reading the
    // CLI's error line gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match (format, node_side) {
        (LogFormat::Json, _) => builder.json().init(),
        (LogFormat::Text, true) => builder.init(),
        (LogFormat::Text, false) => builder.without_time().with_target(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.command.is_node_side());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", cli::output::visible(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}
