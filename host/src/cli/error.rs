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

//! Why a command failed: one line for a person, an exit code for a script.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | failed (the node or this machine failed the operation) |
//! | 2 | usage: bad arguments, or the node found the input bad (400) |
//! | 3 | the node could not be reached (down, wrong address, TLS refused) |
//! | 4 | the node refused the operator token (401) |
//! | 5 | not found: no such order, wallet, identity, route or plugin (404) |
//! | 6 | refused by the node's policy or state (403, 409, 422, 423, 429) |
//! | 7 | timed out: no answer within `--timeout`, or the node's own wait (504) |

/// A failed command; its text is the one line printed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Exit code 1.
    #[error("{0}")]
    Failed(String),
    /// Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Exit code 3.
    #[error("{0}")]
    Unreachable(String),
    /// Exit code 4.
    #[error("{0}")]
    TokenRefused(String),
    /// Exit code 5.
    #[error("{0}")]
    NotFound(String),
    /// Exit code 6.
    #[error("{0}")]
    Refused(String),
    /// Exit code 7.
    #[error("{0}")]
    TimedOut(String),
}

impl CliError {
    /// The process exit code (see the table above and docs/cli.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
            CliError::TokenRefused(_) => 4,
            CliError::NotFound(_) => 5,
            CliError::Refused(_) => 6,
            CliError::TimedOut(_) => 7,
        }
    }

    /// The error for a node's answer with HTTP `status`, saying `message`.
    pub fn from_status(status: u16, message: String) -> CliError {
        match status {
            400 | 405 | 413 => CliError::Usage(message),
            401 => CliError::TokenRefused(message),
            404 => CliError::NotFound(message),
            403 | 409 | 422 | 423 | 429 => CliError::Refused(message),
            504 => CliError::TimedOut(message),
            _ => CliError::Failed(message),
        }
    }
}

/// Errors of the node-side code the offline commands call (config, keys,
/// store) arrive as text.
impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError::Failed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_documented_codes() {
        let code = |status| CliError::from_status(status, String::new()).exit_code();
        assert_eq!(
            [400, 401, 403, 404, 409, 422, 423, 429, 500, 503, 504].map(code),
            [2, 4, 6, 5, 6, 6, 6, 6, 1, 1, 7]
        );
    }
}
