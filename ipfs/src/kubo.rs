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

//! The `kubo` backend: a thin client of the Kubo RPC API (`/api/v0/...`)
//! over hyper, for an external node run by the operator (Kubo, or js-ipfs
//! with its Kubo-compatible API).
//!
//! It uses only the endpoints the facility needs (block put/get/stat, pin
//! add, pubsub pub/sub, id, swarm connect) and tolerates the differences
//! between implementations and API versions measured on this project (see
//! DESIGN.md §11): CIDs are parsed, never compared as strings; pubsub topics
//! are sent as multibase base64url; `pubsub/sub` lines may be `{}`, carry
//! their data as multibase (newer APIs) or plain base64 (older ones), and
//! their seqno may have any length.
//!
//! Errors: a node that cannot be reached (refused, reset, silent past the
//! timeout) is [`IpfsError::Unavailable`]; an answer with an error status is
//! [`IpfsError::Backend`] with the node's message; a block fetch that runs
//! out of time is [`IpfsError::NotFound`]. Every request is bounded in time,
//! except the body of a pubsub subscription, which lasts until it is dropped.

use std::{fmt::Write as _, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, Uri, body::Incoming, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use ipld_core::cid::Cid;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Backend, DAG_CBOR, IpfsError, NodeInfo, PubsubMessage, RAW};

/// How long opening a TCP connection to the API may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound of one request (pin, connect, id, put...).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time given to a block fetch beyond the timeout passed to the node,
/// so the node's own answer ("timed out") normally arrives first.
const FETCH_GRACE: Duration = Duration::from_secs(2);
/// Largest response body read into memory. Blocks are at most a few MiB
/// (bitswap refuses blocks over 4 MiB); anything larger is refused.
const MAX_BODY: usize = 8 << 20;
/// Largest `pubsub/sub` line accepted; a longer one ends the subscription.
const MAX_LINE: usize = 8 << 20;

/// Client of one node's Kubo RPC API.
pub struct KuboClient {
    /// `http://host:port`, without a trailing slash.
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

/// A request body: multipart with one file part, or none.
enum Body {
    Empty,
    File(Vec<u8>),
}

impl KuboClient {
    /// A client for the API at `api`: a base URL (`http://127.0.0.1:5001`,
    /// optionally ending in `/api/v0`) or the multiaddr form Kubo writes to
    /// its `api` file (`/ip4/127.0.0.1/tcp/5001`). Only plain http is
    /// supported (the API is meant to listen on loopback). No request is
    /// made: an unreachable node shows up on first use.
    pub fn new(api: &str) -> Result<KuboClient, IpfsError> {
        let base = normalise_base(api)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(KuboClient {
            base,
            client,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the bound of each request (default 30 s). Block fetches use the
    /// timeout passed to `get_block` instead.
    pub fn with_timeout(mut self, timeout: Duration) -> KuboClient {
        self.timeout = timeout;
        self
    }

    /// The API base URL, e.g. `http://127.0.0.1:5001`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Size in bytes of a block the node has (`block/stat`), fetching it
    /// from peers if needed, within the client's timeout.
    pub async fn block_stat(&self, cid: &Cid) -> Result<u64, IpfsError> {
        #[derive(Deserialize)]
        struct Stat {
            #[serde(rename = "Size")]
            size: serde_json::Value,
        }
        let arg = cid.to_string();
        let ms = format!("{}ms", self.timeout.as_millis());
        let body = self
            .call(
                "block/stat",
                &[("arg", &arg), ("timeout", &ms)],
                Body::Empty,
                self.timeout + FETCH_GRACE,
            )
            .await
            .map_err(|e| not_found_on_timeout(e, cid))?;
        let stat: Stat = parse_json("block/stat", &body)?;
        // Kubo reports Size as a number, some versions and js-ipfs as a string.
        match &stat.size {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| IpfsError::Backend {
            operation: "block/stat",
            message: format!("unexpected Size {}", stat.size),
        })
    }

    fn url(&self, path: &str, args: &[(&str, &str)]) -> String {
        let mut url = format!("{}/api/v0/{path}", self.base);
        for (i, (k, v)) in args.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            percent_encode_into(&mut url, v);
        }
        url
    }

    /// Sends a POST and returns the response once its headers arrived with
    /// a success status; maps every failure to a typed error.
    async fn open(
        &self,
        operation: &'static str,
        args: &[(&str, &str)],
        body: Body,
    ) -> Result<Response<Incoming>, IpfsError> {
        let url = self.url(operation, args);
        let builder = Request::builder().method(Method::POST).uri(&url);
        let request = match body {
            Body::Empty => builder.body(Full::new(Bytes::new())),
            Body::File(data) => {
                let (content_type, bytes) = multipart(&data);
                builder
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Full::new(bytes))
            }
        }
        .map_err(|e| IpfsError::Backend {
            operation,
            message: format!("cannot build the request: {e}"),
        })?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| self.transport_error(operation, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // An error answer: Kubo and js-ipfs send {"Message": ..., "Code": ..., "Type": "error"}.
        let body = Limited::new(response.into_body(), 64 << 10)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(IpfsError::Backend {
            operation,
            message: error_message(status, &body),
        })
    }

    /// A bounded request whose whole (bounded) body is returned.
    async fn call(
        &self,
        operation: &'static str,
        args: &[(&str, &str)],
        body: Body,
        timeout: Duration,
    ) -> Result<Bytes, IpfsError> {
        let work = async {
            let response = self.open(operation, args, body).await?;
            Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        IpfsError::Backend {
                            operation,
                            message: format!("answer larger than {MAX_BODY} bytes"),
                        }
                    } else {
                        IpfsError::Unavailable(format!(
                            "{operation} at {}: answer cut short: {}",
                            self.base,
                            error_chain(&*e)
                        ))
                    }
                })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(IpfsError::Unavailable(format!(
                "{operation} at {}: no answer within {timeout:?}",
                self.base
            ))),
        }
    }

    fn transport_error(
        &self,
        operation: &'static str,
        e: &hyper_util::client::legacy::Error,
    ) -> IpfsError {
        let what = if e.is_connect() {
            "cannot connect"
        } else {
            "connection failed"
        };
        IpfsError::Unavailable(format!(
            "{operation} at {}: {what}: {}",
            self.base,
            error_chain(e)
        ))
    }
}

#[async_trait::async_trait]
impl Backend for KuboClient {
    async fn put_block(&self, codec: u64, data: Vec<u8>) -> Result<Cid, IpfsError> {
        // js-ipfs ignores `cid-codec` and uses `format`; Kubo takes the
        // deprecated `format` too, but refuses it next to a `cid-codec`
        // other than raw. These pairs give CIDv1 sha2-256 on both.
        let args: &[(&str, &str)] = match codec {
            RAW => &[
                ("format", "raw"),
                ("cid-codec", "raw"),
                ("mhtype", "sha2-256"),
                ("pin", "true"),
            ],
            DAG_CBOR => &[
                ("format", "dag-cbor"),
                ("mhtype", "sha2-256"),
                ("pin", "true"),
            ],
            other => {
                return Err(IpfsError::Backend {
                    operation: "block/put",
                    message: format!(
                        "codec 0x{other:x} is not supported (raw 0x55 and dag-cbor 0x71 are)"
                    ),
                });
            }
        };
        let body = self
            .call("block/put", args, Body::File(data), self.timeout)
            .await?;
        #[derive(Deserialize)]
        struct Put {
            #[serde(rename = "Key")]
            key: String,
        }
        let put: Put = parse_json("block/put", &body)?;
        parse_cid("block/put", &put.key)
    }

    async fn get_block(&self, cid: &Cid, timeout: Duration) -> Result<Vec<u8>, IpfsError> {
        let arg = cid.to_string();
        // Both Kubo (a global option) and js-ipfs take `timeout` as a duration.
        let ms = format!("{}ms", timeout.as_millis().max(1));
        let body = self
            .call(
                "block/get",
                &[("arg", &arg), ("timeout", &ms)],
                Body::Empty,
                timeout + FETCH_GRACE,
            )
            .await
            .map_err(|e| not_found_on_timeout(e, cid))?;
        Ok(body.to_vec())
    }

    async fn pin(&self, cid: &Cid) -> Result<(), IpfsError> {
        let arg = cid.to_string();
        let ms = format!("{}ms", self.timeout.as_millis());
        self.call(
            "pin/add",
            &[("arg", &arg), ("recursive", "true"), ("timeout", &ms)],
            Body::Empty,
            self.timeout + FETCH_GRACE,
        )
        .await
        .map_err(|e| not_found_on_timeout(e, cid))?;
        Ok(())
    }

    /// Fails with [`IpfsError::NoSubscribers`] when js-ipfs knows no
    /// subscribed peer (its `InsufficientPeers`; Kubo publishes anyway).
    async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), IpfsError> {
        let encoded = encode_topic(topic);
        match self
            .call(
                "pubsub/pub",
                &[("arg", &encoded)],
                Body::File(data),
                self.timeout,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(IpfsError::Backend { message, .. }) if message.contains("InsufficientPeers") => {
                Err(IpfsError::NoSubscribers(topic.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, PubsubMessage>, IpfsError> {
        let encoded = encode_topic(topic);
        let args: &[(&str, &str)] = &[("arg", &encoded)];
        let response =
            tokio::time::timeout(self.timeout, self.open("pubsub/sub", args, Body::Empty))
                .await
                .map_err(|_| {
                    IpfsError::Unavailable(format!(
                        "pubsub/sub at {}: no answer within {:?}",
                        self.base, self.timeout
                    ))
                })??;
        Ok(message_stream(response.into_body(), topic.to_string()))
    }

    async fn id(&self) -> Result<NodeInfo, IpfsError> {
        let body = self.call("id", &[], Body::Empty, self.timeout).await?;
        parse_id(&body)
    }

    async fn connect(&self, address: &str) -> Result<(), IpfsError> {
        self.call(
            "swarm/connect",
            &[("arg", address)],
            Body::Empty,
            self.timeout,
        )
        .await?;
        Ok(())
    }

    /// The external node bootstraps its own routing from its own config.
    async fn join_routing(&self, _bootstrap: &[String]) -> Result<(), IpfsError> {
        Ok(())
    }

    /// Kubo resolves a bare `/p2p/<peer id>` through its routing (the DHT
    /// when it runs one) and dials what it finds.
    async fn connect_peer(&self, peer_id: &str) -> Result<(), IpfsError> {
        if peer_id.is_empty() || !peer_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IpfsError::Config(format!("{peer_id:?} is not a peer ID")));
        }
        self.connect(&format!("/p2p/{peer_id}")).await
    }

    async fn reconnect(&self, address: &str) -> Result<(), IpfsError> {
        // Refused when the peer is not connected, which is as good.
        if let Err(e) = self
            .call(
                "swarm/disconnect",
                &[("arg", address)],
                Body::Empty,
                self.timeout,
            )
            .await
        {
            tracing::debug!(%address, "swarm/disconnect: {e}");
        }
        self.connect(address).await
    }
}

/// Turns the configured API address into `http://host:port`.
fn normalise_base(api: &str) -> Result<String, IpfsError> {
    let api = api.trim();
    let url = if api.starts_with('/') {
        multiaddr_to_url(api)?
    } else {
        api.to_string()
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| IpfsError::Config(format!("ipfs.api {url:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(IpfsError::Config(format!(
                "ipfs.api: scheme {other:?} is not supported, use http:// (the API should listen on loopback)"
            )));
        }
        None => {
            return Err(IpfsError::Config(format!("ipfs.api {url:?} lacks http://")));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| IpfsError::Config(format!("ipfs.api {url:?} lacks a host")))?;
    if authority.as_str().contains('@') {
        // Never echo credentials back.
        return Err(IpfsError::Config(
            "ipfs.api must not contain credentials (user:password@)".into(),
        ));
    }
    let path = uri.path().trim_end_matches('/');
    if !(path.is_empty() || path == "/api/v0") || uri.query().is_some() {
        return Err(IpfsError::Config(format!(
            "ipfs.api {url:?}: give the base URL, e.g. http://127.0.0.1:5001"
        )));
    }
    Ok(format!("http://{authority}"))
}

/// `/ip4/127.0.0.1/tcp/5001` (optionally `/http`) -> `http://127.0.0.1:5001`.
fn multiaddr_to_url(addr: &str) -> Result<String, IpfsError> {
    let parts: Vec<&str> = addr.trim_start_matches('/').split('/').collect();
    let bad = || {
        IpfsError::Config(format!(
            "ipfs.api {addr:?}: expected /ip4/<host>/tcp/<port>, /ip6/... or /dns/..., or a URL"
        ))
    };
    match parts.as_slice() {
        [proto, host, "tcp", port] | [proto, host, "tcp", port, "http"] => {
            port.parse::<u16>().map_err(|_| bad())?;
            match *proto {
                "ip4" | "dns" | "dns4" | "dns6" => Ok(format!("http://{host}:{port}")),
                "ip6" => Ok(format!("http://[{host}]:{port}")),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved bytes).
fn percent_encode_into(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A multipart/form-data body with `data` as its one file part. The
/// boundary is derived from the data's hash, so the data cannot contain it.
fn multipart(data: &[u8]) -> (String, Bytes) {
    let digest = Sha256::digest(data);
    let mut boundary = String::from("milagro-");
    for b in &digest[..16] {
        let _ = write!(boundary, "{b:02x}");
    }
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(
        b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
          Content-Type: application/octet-stream\r\n\r\n",
    );
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

/// A pubsub topic as the newer APIs take it: multibase base64url (`u`).
fn encode_topic(topic: &str) -> String {
    multibase::encode(multibase::Base::Base64Url, topic.as_bytes())
}

/// The message of an error answer, from its JSON `Message` if there is one.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(rename = "Message")]
        message: String,
    }
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => format!("{status}: {}", e.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.to_string()
            } else {
                let short: String = text.chars().take(300).collect();
                format!("{status}: {short}")
            }
        }
    }
}

/// A fetch the node itself gave up on (its `timeout` passed, or it knows
/// the block is not to be had) becomes `NotFound`. A node that does not
/// answer at all, even past that timeout, stays `Unavailable`.
fn not_found_on_timeout(e: IpfsError, cid: &Cid) -> IpfsError {
    match &e {
        IpfsError::Backend { message, .. } => {
            let m = message.to_ascii_lowercase();
            if m.contains("timed out")
                || m.contains("timeout")
                || m.contains("deadline exceeded")
                || m.contains("not found")
            {
                IpfsError::NotFound(Box::new(*cid))
            } else {
                e
            }
        }
        _ => e,
    }
}

/// An error and its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn parse_json<'a, T: Deserialize<'a>>(
    operation: &'static str,
    body: &'a [u8],
) -> Result<T, IpfsError> {
    serde_json::from_slice(body).map_err(|e| IpfsError::Backend {
        operation,
        message: format!(
            "unexpected answer ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    })
}

fn parse_cid(operation: &'static str, text: &str) -> Result<Cid, IpfsError> {
    Cid::try_from(text).map_err(|e| IpfsError::Backend {
        operation,
        message: format!("the node returned an invalid CID {text:?}: {e}"),
    })
}

/// The `id` answer, with every address ending in `/p2p/<peer id>`.
fn parse_id(body: &[u8]) -> Result<NodeInfo, IpfsError> {
    #[derive(Deserialize)]
    struct Id {
        #[serde(rename = "ID")]
        id: String,
        #[serde(rename = "Addresses", default)]
        addresses: Option<Vec<String>>,
    }
    let id: Id = parse_json("id", body)?;
    if id.id.is_empty() {
        return Err(IpfsError::Backend {
            operation: "id",
            message: "the node reported an empty peer ID".into(),
        });
    }
    let suffix = format!("/p2p/{}", id.id);
    let addresses = id
        .addresses
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            if a.ends_with(&suffix) || a.ends_with(&format!("/ipfs/{}", id.id)) {
                a
            } else {
                format!("{a}{suffix}")
            }
        })
        .collect();
    Ok(NodeInfo {
        peer_id: id.id,
        addresses,
    })
}

/// One decoded `pubsub/sub` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubLine {
    from: String,
    data: Vec<u8>,
    /// Informational only; any length (js-ipfs drops leading zero bytes).
    seqno: Vec<u8>,
}

/// How a `pubsub/sub` line encodes its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Newer APIs (Kubo >= 0.11, js-ipfs): multibase (`u...`), `from` is a
    /// peer ID string.
    Multibase,
    /// Older APIs: plain standard base64, `from` is the base64 of the peer
    /// ID's bytes.
    Base64,
}

/// Parses one line of a `pubsub/sub` stream: `Ok(None)` for a line without
/// a message (the `{}` the stream may start with, blank lines).
fn parse_sub_line(line: &[u8]) -> Result<Option<SubLine>, String> {
    #[derive(Deserialize)]
    struct Raw {
        from: Option<String>,
        data: Option<String>,
        seqno: Option<String>,
    }
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    let raw: Raw = serde_json::from_slice(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let Some(data) = raw.data else {
        // `{}` or another line without data: nothing to deliver.
        return Ok(None);
    };
    let encoding = match raw.from.as_deref() {
        // A peer ID string is base58btc (or a CIDv1 in base32, all
        // lowercase); the base64 of its bytes is neither (it has `I`,
        // `+`, `/` or `=`).
        Some(from) if is_peer_id_text(from) => Encoding::Multibase,
        Some(_) => Encoding::Base64,
        None => guess_encoding(&data),
    };
    let data = decode_bytes(&data, encoding).map_err(|e| format!("data: {e}"))?;
    let from = match (raw.from, encoding) {
        (None, _) => String::new(),
        (Some(from), Encoding::Multibase) => from,
        (Some(from), Encoding::Base64) => {
            let bytes = decode_bytes(&from, Encoding::Base64).map_err(|e| format!("from: {e}"))?;
            // The peer ID's usual text form: base58btc without the `z`.
            multibase::encode(multibase::Base::Base58Btc, bytes)[1..].to_string()
        }
    };
    // The seqno is never trusted to have 8 bytes, nor to decode at all.
    let seqno = raw
        .seqno
        .and_then(|s| decode_bytes(&s, encoding).ok())
        .unwrap_or_default();
    Ok(Some(SubLine { from, data, seqno }))
}

fn is_peer_id_text(s: &str) -> bool {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    !s.is_empty() && s.chars().all(|c| BASE58.contains(c))
}

/// Without a `from` to tell: `u` + valid base64url is multibase, anything
/// else is taken as plain base64.
fn guess_encoding(data: &str) -> Encoding {
    match data.strip_prefix('u') {
        Some(rest)
            if base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(rest)
                .is_ok() =>
        {
            Encoding::Multibase
        }
        _ => Encoding::Base64,
    }
}

fn decode_bytes(text: &str, encoding: Encoding) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Multibase if text.is_empty() => Ok(Vec::new()),
        Encoding::Multibase => multibase::decode(text)
            .map(|(_, bytes)| bytes)
            .map_err(|e| format!("invalid multibase: {e}")),
        Encoding::Base64 => {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            engine
                .decode(text)
                .map_err(|e| format!("invalid base64: {e}"))
        }
    }
}

/// Splits a streaming body into lines and decodes each into a message; the
/// stream ends when the body does (node stopped, connection lost) and the
/// connection closes when the stream is dropped.
fn message_stream(body: Incoming, topic: String) -> BoxStream<'static, PubsubMessage> {
    struct State {
        body: Incoming,
        buf: Vec<u8>,
        topic: String,
        done: bool,
    }
    let state = State {
        body,
        buf: Vec::new(),
        topic,
        done: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        loop {
            // Deliver every complete line already buffered.
            while let Some(pos) = st.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = st.buf.drain(..=pos).collect();
                match parse_sub_line(&line) {
                    Ok(Some(m)) => {
                        tracing::trace!(topic = %st.topic, seqno_len = m.seqno.len(), "pubsub message");
                        return Some((
                            PubsubMessage {
                                from: m.from,
                                data: m.data,
                            },
                            st,
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(topic = %st.topic, "pubsub/sub: skipping a line: {e}"),
                }
            }
            if st.done {
                if !st.buf.is_empty() {
                    let line = std::mem::take(&mut st.buf);
                    if let Ok(Some(m)) = parse_sub_line(&line) {
                        return Some((
                            PubsubMessage {
                                from: m.from,
                                data: m.data,
                            },
                            st,
                        ));
                    }
                }
                return None;
            }
            if st.buf.len() > MAX_LINE {
                tracing::warn!(topic = %st.topic, "pubsub/sub: line over {MAX_LINE} bytes, ending the subscription");
                return None;
            }
            match st.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        st.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(topic = %st.topic, "pubsub/sub: connection lost: {}", error_chain(&e));
                    st.done = true;
                }
                None => {
                    tracing::debug!(topic = %st.topic, "pubsub/sub: the node ended the subscription");
                    st.done = true;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests;
