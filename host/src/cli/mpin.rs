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

//! `milagro mpin`: an M-Pin client on the command line, so a user sees the
//! whole flow (see docs/mpin.md), and the operator's commands of the mpin
//! plugin.
//!
//! - `token`: a client secret `C` (from `milagro dta secret`) and a PIN
//!   become the device token `T = C - pin*H(id)`, printed as hex.
//! - `login`: the two passes against a node's `mpin` plugin with that token
//!   and the PIN; prints the server's answer.
//! - `status`, `server-secret`, `unblock ID`: the plugin's state, obtaining
//!   the server secret now, clearing an ID's failed logins (operator).
//!
//! The PIN is read from `--pin` or, without it, from the first line of
//! standard input (so it need not appear in the process list).

use std::io::BufRead;

use milagro_mpin::{
    client::{self, Token},
    g1_from_hex, g1_to_hex, scalar_from_be_hex,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{
    CliError,
    node_api::NodeApi,
    output::{Format, print_answer, print_json, spinner},
};

/// The plugin the operator's commands talk to.
const PLUGIN: &str = "mpin";

/// Longest PIN, in digits (a u32 holds nine).
const MAX_PIN_DIGITS: usize = 9;

/// The `milagro mpin` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum MpinCommand {
    /// Turn a client secret and a PIN into the device token
    /// T = C - pin*H(id); prints it as hex.
    Token {
        /// The combined client secret C (compressed G1, hex).
        #[arg(long)]
        client_secret: String,
        /// The user's M-Pin ID.
        #[arg(long)]
        mpin_id: String,
        /// The PIN; read from the first line of standard input if absent.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Log in with 2-pass M-Pin at the node's mpin plugin (--url or --config).
    Login {
        /// Where the mpin plugin is mounted.
        #[arg(long, default_value = "/v1/mpin")]
        mount: String,
        /// The user's M-Pin ID.
        #[arg(long)]
        mpin_id: String,
        /// The file `milagro mpin token` wrote.
        #[arg(long, value_name = "FILE")]
        device_token: std::path::PathBuf,
        /// The PIN; read from the first line of standard input if absent.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Whether the server secret is held; authorities, limits, open sessions.
    Status,
    /// Obtain the server secret from the authorities now.
    ServerSecret,
    /// Clear an ID's failed-login count (unblocks it).
    Unblock {
        /// The user's M-Pin ID.
        mpin_id: String,
    },
}

/// Runs a `milagro mpin` subcommand; `node` is opened only by those that
/// talk to one.
pub async fn run(
    node: impl FnOnce() -> Result<NodeApi, CliError>,
    format: Format,
    command: MpinCommand,
) -> Result<(), CliError> {
    match command {
        MpinCommand::Token {
            client_secret,
            mpin_id,
            pin,
        } => token(&client_secret, &mpin_id, read_pin(pin)?),
        MpinCommand::Login {
            mount,
            mpin_id,
            device_token,
            pin,
        } => {
            let pin = read_pin(pin)?;
            let answer = login(&node()?, &mount, &mpin_id, &device_token, pin).await?;
            match format {
                Format::Json => print_json(&answer),
                Format::Human => {
                    println!("logged in as {}", super::output::cell(&answer["mpin_id"]))
                }
            }
            Ok(())
        }
        MpinCommand::Status => {
            let node = node()?;
            let mount = node.mount(PLUGIN).await?;
            let status = node.json("GET", &format!("{mount}/status"), None).await?;
            print_answer(
                format,
                &status,
                &[
                    ("server secret held", "ready"),
                    ("last error", "last_error"),
                    ("authorities", "authorities"),
                    ("max attempts", "max_attempts"),
                    ("open sessions", "sessions"),
                ],
            );
            Ok(())
        }
        MpinCommand::ServerSecret => {
            let node = node()?;
            let mount = node.mount(PLUGIN).await?;
            let bar = spinner("asking the authorities for the server secret".into());
            let answer = node
                .json("POST", &format!("{mount}/server-secret"), None)
                .await;
            bar.finish_and_clear();
            let answer = answer?;
            print_answer(
                format,
                &answer,
                &[
                    ("server secret held", "ready"),
                    ("envelopes", "envelope_cids"),
                ],
            );
            Ok(())
        }
        MpinCommand::Unblock { mpin_id } => {
            let node = node()?;
            let mount = node.mount(PLUGIN).await?;
            let body = json!({"mpin_id": mpin_id});
            let answer = node
                .json("POST", &format!("{mount}/unblock"), Some(&body))
                .await?;
            print_answer(
                format,
                &answer,
                &[
                    ("mpin id", "mpin_id"),
                    ("was blocked", "was_blocked"),
                    ("failures", "failures"),
                ],
            );
            Ok(())
        }
    }
}

/// The PIN from `--pin` or from the first line of standard input.
pub fn read_pin(pin: Option<String>) -> Result<u32, CliError> {
    let text = Zeroizing::new(match pin {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                CliError::Failed(format!("cannot read the PIN from standard input: {e}"))
            })?;
            line
        }
    });
    let digits = text.trim();
    if digits.is_empty()
        || digits.len() > MAX_PIN_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CliError::Usage(format!(
            "the PIN must be 1 to {MAX_PIN_DIGITS} digits"
        )));
    }
    digits
        .parse()
        .map_err(|_| CliError::Usage("the PIN is not a number".into()))
}

/// `milagro mpin token`: prints `T = C - pin*H(id)` as hex.
fn token(client_secret: &str, mpin_id: &str, pin: u32) -> Result<(), CliError> {
    let c = g1_from_hex(client_secret.trim())
        .map_err(|e| CliError::Usage(format!("--client-secret is not a client secret: {e}")))?;
    let token = Token::from_client_secret(&c, mpin_id.as_bytes(), pin);
    println!("{}", token.to_hex().as_str());
    Ok(())
}

/// `milagro mpin login`: pass 1 and pass 2; the server's answer.
async fn login(
    node: &NodeApi,
    mount: &str,
    mpin_id: &str,
    device_token: &std::path::Path,
    pin: u32,
) -> Result<Value, CliError> {
    let text =
        Zeroizing::new(std::fs::read_to_string(device_token).map_err(|e| {
            CliError::Failed(format!("cannot read {}: {e}", device_token.display()))
        })?);
    let token = Token::from_hex(text.trim())
        .map_err(|e| CliError::Usage(format!("the device token file holds no token: {e}")))?;
    let (x, u) = client::pass1(mpin_id.as_bytes())
        .map_err(|e| CliError::Failed(format!("no randomness: {e}")))?;
    let body = json!({"mpin_id": mpin_id, "u": g1_to_hex(&u)});
    let answer = node
        .json("POST", &format!("{mount}/pass1"), Some(&body))
        .await?;
    let session = answer["session"].as_str().unwrap_or_default();
    let y = scalar_from_be_hex(answer["y"].as_str().unwrap_or_default()).map_err(|e| {
        CliError::Failed(format!(
            "pass 1: the server's challenge y is not a scalar: {e}"
        ))
    })?;
    let v = client::pass2(&x, &y, &token, pin, mpin_id.as_bytes());
    let body = json!({"session": session, "v": g1_to_hex(&v)}).to_string();
    let path = format!("{mount}/pass2");
    let answer = node.call("POST", &path, body.into_bytes()).await?;
    // 401 here is the login refused (wrong PIN, expired session), not the
    // operator token: these routes take none.
    if answer.status == 401 {
        return Err(CliError::Refused(format!(
            "login refused (POST {path}: 401): {}",
            super::node_api::error_message(&answer.body)
        )));
    }
    let answer = node.check("POST", &path, answer)?;
    serde_json::from_slice(&answer.body)
        .map_err(|e| CliError::Failed(format!("POST {path}: the answer is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_digits_only() {
        assert_eq!(read_pin(Some("1234".into())).ok(), Some(1234));
        assert_eq!(read_pin(Some(" 0007\n".into())).ok(), Some(7));
        for bad in ["", "12a4", "-1", "1234567890", "１２３"] {
            assert!(read_pin(Some(bad.into())).is_err(), "{bad:?}");
        }
    }
}
