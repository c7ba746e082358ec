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

//! `milagro completions SHELL` and `milagro man [--dir DIR]`: shell
//! completions and man pages generated from the command definitions, so
//! they never drift from the commands.

use std::path::Path;

use clap::CommandFactory;

use super::{Cli, CliError};

/// Prints the completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "milagro", &mut std::io::stdout());
}

/// The man page of `milagro` on standard output, or with `dir`, one page
/// per command (`milagro.1`, `milagro-custody-order.1`, ...) written there.
pub fn man(dir: Option<&Path>) -> Result<(), CliError> {
    let command = Cli::command();
    let Some(dir) = dir else {
        return clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .map_err(|e| CliError::Failed(format!("cannot write the man page: {e}")));
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    clap_mangen::generate_to(command, dir).map_err(|e| {
        CliError::Failed(format!(
            "cannot write man pages into {}: {e}",
            dir.display()
        ))
    })?;
    Ok(())
}
