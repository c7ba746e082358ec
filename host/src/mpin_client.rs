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
//! whole flow (see docs/mpin.md).
//!
//! - `milagro mpin token`: a client secret `C` (from `POST /v1/dta/secrets`)
//!   and a PIN become the device token `T = C - pin*H(id)`, printed as hex.
//! - `milagro mpin login`: the two passes against a node's `mpin` plugin
//!   with that token and the PIN; prints the server's answer.
//!
//! The PIN is read from `--pin` or, without it, from the first line of
//! standard input (so it need not appear in the process list).

use std::io::BufRead;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use milagro_mpin::{
    client::{self, Token},
    g1_from_hex, g1_to_hex, scalar_from_be_hex,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Longest PIN, in digits (a u32 holds nine).
const MAX_PIN_DIGITS: usize = 9;

/// The PIN from `--pin` or from the first line of standard input.
pub fn read_pin(pin: Option<String>) -> Result<u32, String> {
    let text = Zeroizing::new(match pin {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
            line
        }
    });
    let digits = text.trim();
    if digits.is_empty()
        || digits.len() > MAX_PIN_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("the PIN must be 1 to {MAX_PIN_DIGITS} digits"));
    }
    digits.parse().map_err(|_| "the PIN is not a number".into())
}

/// `milagro mpin token`: prints `T = C - pin*H(id)` as hex.
pub fn token(client_secret: &str, mpin_id: &str, pin: u32) -> Result<(), String> {
    let c = g1_from_hex(client_secret.trim())
        .map_err(|e| format!("--client-secret is not a client secret: {e}"))?;
    let token = Token::from_client_secret(&c, mpin_id.as_bytes(), pin);
    println!("{}", token.to_hex().as_str());
    Ok(())
}

/// POSTs a JSON body; returns (status, body).
async fn post(
    client: &crate::outbound::Outbound,
    url: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("bad URL {url}: {e}"))?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let response = client
        .request(request, deadline)
        .await
        .map_err(|e| format!("{url} does not answer: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"error": {"message": String::from_utf8_lossy(&bytes)}}));
    Ok((status, value))
}

fn refusal(pass: &str, status: u16, body: &Value) -> String {
    format!(
        "{pass}: {status} {}",
        body["error"]["message"].as_str().unwrap_or("(no message)")
    )
}

/// `milagro mpin login`: pass 1 and pass 2; prints the server's answer.
pub async fn login(
    client: &crate::outbound::Outbound,
    url: &str,
    mount: &str,
    mpin_id: &str,
    token_file: &std::path::Path,
    pin: u32,
) -> Result<(), String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(token_file)
            .map_err(|e| format!("cannot read {}: {e}", token_file.display()))?,
    );
    let token =
        Token::from_hex(text.trim()).map_err(|e| format!("the token file holds no token: {e}"))?;
    let base = format!("{}{}", url.trim_end_matches('/'), mount);
    let (x, u) = client::pass1(mpin_id.as_bytes()).map_err(|e| format!("no randomness: {e}"))?;
    let (status, answer) = post(
        client,
        &format!("{base}/pass1"),
        &json!({"mpin_id": mpin_id, "u": g1_to_hex(&u)}),
    )
    .await?;
    if status != 200 {
        return Err(refusal("pass 1", status, &answer));
    }
    let session = answer["session"].as_str().unwrap_or_default();
    let y = scalar_from_be_hex(answer["y"].as_str().unwrap_or_default())
        .map_err(|e| format!("pass 1: the server's challenge y is not a scalar: {e}"))?;
    let v = client::pass2(&x, &y, &token, pin, mpin_id.as_bytes());
    let (status, answer) = post(
        client,
        &format!("{base}/pass2"),
        &json!({"session": session, "v": g1_to_hex(&v)}),
    )
    .await?;
    if status != 200 {
        return Err(refusal("pass 2", status, &answer));
    }
    println!("{answer}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_digits_only() {
        assert_eq!(read_pin(Some("1234".into())), Ok(1234));
        assert_eq!(read_pin(Some(" 0007\n".into())), Ok(7));
        for bad in ["", "12a4", "-1", "1234567890", "１２３"] {
            assert!(read_pin(Some(bad.into())).is_err(), "{bad:?}");
        }
    }
}
