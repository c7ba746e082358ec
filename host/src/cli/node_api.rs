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

//! The node a client command talks to, and how: its base URL, the HTTP(S)
//! client that trusts its certificate, and the operator token.
//!
//! `--config FILE` (or `MILAGRO_CONFIG`) names the local node: its listen
//! address, `[http] tls_ca` and the token in its data dir. `--url` names
//! another, with `--tls-ca` and `--token-file`. The token is read when the
//! first call is made and sent with every call; a node that refuses it
//! gets exit code 4 and a line naming the file.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use zeroize::Zeroizing;

use super::error::CliError;
use crate::{config::Config, outbound::OutboundError};

/// Largest answer the CLI reads (a hostile node could send without end).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Longest list a `list` command gathers, in pages (a hostile node could
/// hand out cursors without end).
pub const MAX_PAGES: usize = 1000;

/// Which node, and how long to wait for it: the options every client
/// command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// The local node's config (its address, TLS settings and token);
    /// default $MILAGRO_CONFIG.
    #[arg(
        long,
        short,
        global = true,
        value_name = "FILE",
        conflicts_with = "url"
    )]
    pub config: Option<PathBuf>,
    /// Another node, e.g. https://node.example.org:7070
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// CA bundle (PEM) trusted for https://; default the config's
    /// `[http] tls_ca`, else the system roots.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The file holding the operator token to send; default, with
    /// --config, the node's `<data_dir>/api-token`.
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// How long to wait for each answer of the node.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
}

impl NodeArgs {
    /// The config file named by `--config`, else by `MILAGRO_CONFIG`.
    pub fn config_path(&self) -> Result<PathBuf, CliError> {
        self.config
            .clone()
            .or_else(|| std::env::var_os("MILAGRO_CONFIG").map(PathBuf::from))
            .ok_or_else(|| {
                CliError::Usage("name the node: --config FILE (or MILAGRO_CONFIG)".into())
            })
    }

    /// The node's config, loaded.
    pub fn load_config(&self) -> Result<Config, CliError> {
        let path = self.config_path()?;
        Config::load(&path).map_err(|e| CliError::Usage(e.to_string()))
    }

    /// The node these options name: `--url` if given, else the config's.
    pub fn open(&self) -> Result<NodeApi, CliError> {
        let timeout = Duration::from_secs(self.timeout);
        match &self.url {
            Some(url) => NodeApi::remote(
                url,
                self.tls_ca.as_deref(),
                self.token_file.clone(),
                timeout,
            ),
            None => {
                let path = self.config_path().map_err(|_| {
                    CliError::Usage(
                        "name the node: --config FILE (or MILAGRO_CONFIG), or --url URL".into(),
                    )
                })?;
                let mut config = Config::load(&path).map_err(|e| CliError::Usage(e.to_string()))?;
                // Given with --config, they override the config's own.
                if let Some(ca) = &self.tls_ca {
                    config.http.tls_ca = Some(ca.clone());
                }
                let mut node = NodeApi::local(&config, timeout)?;
                if let Some(file) = &self.token_file {
                    node.token = Some(Token::named(file)?);
                }
                Ok(node)
            }
        }
    }
}

/// A node the CLI calls.
pub struct NodeApi {
    url: String,
    client: crate::outbound::Outbound,
    token: Option<Token>,
    timeout: Duration,
}

/// The operator token of a node, read once: from a file named on the
/// command line (which must be readable), or from the config's data dir
/// (which may not be: open routes need no token, and a 401 then says why
/// none was sent).
struct Token {
    file: PathBuf,
    read: Result<Zeroizing<String>, String>,
}

impl Token {
    /// The token in `file`, named by the operator: unreadable is an error now.
    fn named(file: &Path) -> Result<Token, CliError> {
        let read = read_token(file).map_err(CliError::Failed)?;
        Ok(Token {
            file: file.to_path_buf(),
            read: Ok(read),
        })
    }

    /// The token in the node's own token file, if it can be read.
    fn of_node(file: PathBuf) -> Token {
        let read = read_token(&file);
        Token { file, read }
    }
}

/// What a node answered.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl NodeApi {
    /// The node of `config`: its listen address (loopback when it listens
    /// on all addresses), `https` when it has TLS (its certificate must
    /// then name that address, trusted through `[http] tls_ca`), the token
    /// in its data dir.
    pub fn local(config: &Config, timeout: Duration) -> Result<NodeApi, CliError> {
        let mut addr = config.http.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.is_ipv4() {
                true => std::net::Ipv4Addr::LOCALHOST.into(),
                false => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(NodeApi {
            url: format!("{}://{addr}", config.http.scheme()),
            client: client(config.http.tls_ca.as_deref())?,
            token: Some(Token::of_node(config.token_file())),
            timeout,
        })
    }

    /// The node at `url` (`http://` or `https://`), trusting the CA bundle
    /// `tls_ca` (else the system roots), with the token in `token_file`.
    pub fn remote(
        url: &str,
        tls_ca: Option<&Path>,
        token_file: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<NodeApi, CliError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--url {url:?}: expected http://host:port or https://host:port"
            )));
        }
        Ok(NodeApi {
            url: url.trim_end_matches('/').to_string(),
            client: client(tls_ca)?,
            token: token_file.as_deref().map(Token::named).transpose()?,
            timeout,
        })
    }

    /// The node's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `method path` with `body` (JSON when not empty); the answer, 2xx or
    /// not. Fails when the node cannot be reached or does not answer in time.
    pub async fn call(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Answer, CliError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let response = self.send(method, path, body, deadline).await?;
        let status = response.status().as_u16();
        let read = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect();
        let body = tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| {
                CliError::Failed(format!(
                    "{}{path}: the answer could not be read: {e}",
                    self.url
                ))
            })?
            .to_bytes()
            .to_vec();
        Ok(Answer { status, body })
    }

    /// `GET path`, streamed: each chunk of a 2xx answer's body is sent to
    /// `sink` as it arrives (each within the timeout); a broken body ends
    /// with an `Err` item. Any other answer is the error [`NodeApi::check`]
    /// makes of it. Returns early, `Ok`, if `sink` is closed.
    pub async fn download(
        &self,
        path: &str,
        sink: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<(), CliError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let response = self.send("GET", path, Vec::new(), deadline).await?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            self.check("GET", path, Answer { status, body })?;
            return Ok(());
        }
        let mut body = response.into_body();
        loop {
            let chunk = match tokio::time::timeout(self.timeout, body.frame()).await {
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data from the node within {} s", self.timeout.as_secs()),
                )),
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => Err(std::io::Error::other(format!(
                    "the node's answer broke off: {e}"
                ))),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
            };
            let failed = chunk.is_err();
            if sink.send(chunk).await.is_err() || failed {
                return Ok(());
            }
        }
    }

    fn timed_out(&self) -> CliError {
        CliError::TimedOut(format!(
            "no answer from {} within {} s (--timeout SECONDS waits longer)",
            self.url,
            self.timeout.as_secs()
        ))
    }

    /// Sends `method path` with `body` (JSON when not empty) and the token;
    /// the answer's head, by `deadline`.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> Result<hyper::Response<hyper::body::Incoming>, CliError> {
        if !path.starts_with('/') {
            return Err(CliError::Usage(format!(
                "path {path:?}: expected an absolute path such as /v1/status"
            )));
        }
        let method = hyper::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| CliError::Usage(format!("{method:?} is not an HTTP method")))?;
        let url = format!("{}{path}", self.url);
        let mut request = hyper::Request::builder().method(method).uri(&url);
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        // A token that cannot be read is not an error yet: open routes
        // need none. A 401 then names why there was none.
        if let Some(Token {
            read: Ok(token), ..
        }) = &self.token
        {
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
        match self.client.request(request, deadline).await {
            Ok(response) => Ok(response),
            Err(OutboundError::Timeout(_)) => Err(self.timed_out()),
            Err(e) => {
                let hint = match e.to_string().contains("onnection refused") {
                    true => " (is it running?)",
                    false => "",
                };
                Err(CliError::Unreachable(format!(
                    "cannot call the node at {}{hint}: {e}",
                    self.url
                )))
            }
        }
    }

    /// `method path` with a JSON `body`; the answer's JSON when it is 2xx,
    /// else the error its status maps to, with the node's message.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let bytes = body.map(Value::to_string).unwrap_or_default().into_bytes();
        let answer = self.call(method, path, bytes).await?;
        let answer = self.check(method, path, answer)?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| CliError::Failed(format!("{method} {path}: the answer is not JSON: {e}")))
    }

    /// `answer` if 2xx, else the error its status maps to: one line with
    /// the method, path, status and the node's message; for 401, the token
    /// file named.
    pub fn check(&self, method: &str, path: &str, answer: Answer) -> Result<Answer, CliError> {
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        let message = error_message(&answer.body);
        let status = answer.status;
        let method = method.to_ascii_uppercase();
        if status == 401 {
            let why = match &self.token {
                None => "no token was sent: --token-file FILE".to_string(),
                Some(Token { file, read: Ok(_) }) => format!(
                    "the node refused the token in {}: {message}",
                    file.display()
                ),
                Some(Token { read: Err(e), .. }) => format!("{e}: {message}"),
            };
            return Err(CliError::TokenRefused(format!(
                "{method} {path}: 401: {why}"
            )));
        }
        Err(CliError::from_status(
            status,
            format!("{method} {path}: {status}: {message}"),
        ))
    }

    /// Where plugin `plugin` (e.g. `custody-principal`) is mounted on the
    /// node, from `GET /v1/plugins`.
    pub async fn mount(&self, plugin: &str) -> Result<String, CliError> {
        let plugins = self.json("GET", "/v1/plugins", None).await?;
        plugins
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["plugin"] == plugin)
            .and_then(|p| p["mount"].as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                CliError::NotFound(format!(
                    "the node at {} runs no {plugin} plugin (see `milagro plugins`)",
                    self.url
                ))
            })
    }

    /// This node's ID, from `GET /v1/identity`.
    pub async fn own_id(&self) -> Result<String, CliError> {
        let identity = self.json("GET", "/v1/identity", None).await?;
        identity["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Failed("GET /v1/identity: the answer has no id".into()))
    }

    /// `ids` with `self` replaced by this node's ID (asked once).
    pub async fn resolve_self(&self, ids: &[String]) -> Result<Vec<String>, CliError> {
        let mut own = None;
        let mut resolved = Vec::with_capacity(ids.len());
        for id in ids {
            if id == "self" {
                if own.is_none() {
                    own = Some(self.own_id().await?);
                }
                resolved.extend(own.clone());
            } else {
                resolved.push(id.clone());
            }
        }
        Ok(resolved)
    }

    /// Every item of a paged list at `path` (answers `{key: [...],
    /// next_cursor}`), following cursors up to [`MAX_PAGES`] pages.
    pub async fn list(&self, path: &str, key: &str) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page_path = match &cursor {
                None => format!("{path}?limit=1000"),
                Some(c) => format!("{path}?limit=1000&cursor={}", segment(c)),
            };
            let mut page = self.json("GET", &page_path, None).await?;
            match page[key].take() {
                Value::Array(page_items) => items.extend(page_items),
                _ => {
                    return Err(CliError::Failed(format!(
                        "GET {path}: the answer has no {key:?} list"
                    )));
                }
            }
            match page["next_cursor"].as_str() {
                // A cursor that does not move would loop.
                Some(next) if cursor.as_deref() != Some(next) => cursor = Some(next.to_string()),
                _ => return Ok(items),
            }
        }
        Err(CliError::Failed(format!(
            "GET {path}: more than {MAX_PAGES} pages; use `milagro api` with limit and cursor"
        )))
    }
}

/// Characters escaped in a path segment or query value: all but the
/// unreserved ones, so a reference cannot reach another route.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` as one path segment (or query value).
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// The CLI's HTTP and HTTPS client: trusts the CA bundle `tls_ca`, else
/// the system roots; any address, the target being the operator's choice.
pub fn client(tls_ca: Option<&Path>) -> Result<crate::outbound::Outbound, CliError> {
    let tls =
        crate::tls::client_config(tls_ca, None).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(crate::outbound::Outbound::new(
        tls,
        crate::outbound::EndpointPolicy::any(),
        Duration::from_secs(5),
    ))
}

fn read_token(path: &Path) -> Result<Zeroizing<String>, String> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read the API token in {}: {e}", path.display()))
}

/// The message of a node's error answer (`{"error": {"message"}}`), else
/// its text.
pub fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_leave_their_route() {
        assert_eq!(segment("order-1"), "order-1");
        assert_eq!(
            segment("../../v1/plugins?x=1"),
            "..%2F..%2Fv1%2Fplugins%3Fx%3D1"
        );
        assert_eq!(segment("a b#c"), "a%20b%23c");
    }
}
