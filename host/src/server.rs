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

//! The REST front door: matches routes, checks the operator token, limits
//! bodies, dispatches to core handlers or plugins, and records metrics.
//!
//! A plugin handler runs as its own task under a deadline, so a panic or a
//! stall in one plugin becomes a 500 or 504 for that request only.

use std::{
    convert::Infallible,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use hyper::{
    StatusCode,
    body::Incoming,
    header::{self, HeaderName, HeaderValue},
    service::service_fn,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use milagro_plugin_api::{Error, ErrorCode, Request as PluginRequest, Response as PluginResponse};
use serde_json::json;
use tokio::net::TcpListener;

use milagro_proto::CID_HEADER;

use crate::{
    api_error, audit,
    auth::Auth,
    backup,
    handler::Handler,
    identity,
    metrics::{self, Metrics},
    node::Node,
    plugins::LoadedPlugin,
    rate_limit::RateLimiter,
    router::{Access, Endpoint, Match, Router, Target},
    transport::{
        consumer::Consumers,
        inbox::{Accepted, Admission, InboxError},
    },
};

/// A response body: whole (every route but one), or streamed (a backup).
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub type Response = hyper::Response<Body>;

/// A body of `bytes`, sent whole.
fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Everything a request may need, shared by all connections.
pub struct App {
    pub node_name: String,
    pub started: Instant,
    pub router: Router,
    pub plugins: Arc<Vec<LoadedPlugin>>,
    /// The plugins as the inbox's consumers.
    pub consumers: Arc<Consumers>,
    pub node: Arc<Node>,
    pub auth: Auth,
    pub metrics: &'static Metrics,
    pub openapi: Bytes,
    pub max_body_bytes: usize,
    pub handler_timeout: Duration,
    /// Per-client-address limit of [`Access::Public`] routes.
    pub rate_limiter: RateLimiter,
    /// `[http] inbox_client_ca` is set: `POST /v1/inbox` only from clients
    /// whose certificate the TLS handshake verified.
    pub inbox_needs_client_cert: bool,
    /// What `GET /v1/backup` reads.
    pub backup: Arc<backup::Sources>,
}

/// Who sent a request: its address, and whether it presented a client
/// certificate that the TLS handshake verified.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    pub certified: bool,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = hyper::Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &Error) -> Response {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, error.to_json())
}

/// Header of a backup stream naming the node backed up.
pub const BACKUP_NODE_HEADER: &str = "milagro-node-id";

/// Response headers a plugin may not set: the host owns framing and connection.
const HOST_OWNED_HEADERS: [HeaderName; 4] = [
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl App {
    /// Answers one request from `client`.
    pub async fn handle(&self, request: hyper::Request<Incoming>, client: Client) -> Response {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let (route, response) = match self.router.find(&method, &path) {
            Match::NotFound => (
                "unmatched",
                error_response(&Error::not_found(format!("no route for {path}"))),
            ),
            Match::MethodNotAllowed { template, allow } => {
                let mut response = error_response(&Error::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{method} is not allowed on {template}; allowed: {allow}"),
                ));
                if let Ok(allow) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                (template, response)
            }
            Match::Found {
                template,
                target: endpoint,
                params,
            } => (
                template,
                match self.refusal(endpoint, template, client, &request) {
                    None => self.dispatch(endpoint, params, request, client).await,
                    Some(refused) => refused,
                },
            ),
        };
        self.metrics.record(
            route,
            method.as_str(),
            response.status().as_u16(),
            started.elapsed(),
        );
        response
    }

    /// The access check of a matched route: the operator's token on
    /// operator routes, the client address's rate limit on public plugin
    /// routes, nothing on the open core routes. `Some` is the refusal.
    fn refusal(
        &self,
        endpoint: &Endpoint,
        template: &str,
        client: Client,
        request: &hyper::Request<Incoming>,
    ) -> Option<Response> {
        if matches!(endpoint.target, Target::Inbox)
            && self.inbox_needs_client_cert
            && !client.certified
        {
            // Stops deliveries (and their storage and processing) from
            // anyone but the nodes the operator's CA certified.
            ::metrics::counter!(
                crate::transport::inbox::INBOX_REFUSED,
                "reason" => "client_certificate"
            )
            .increment(1);
            return Some(error_response(&Error::new(
                ErrorCode::Unauthorized,
                "POST /v1/inbox needs a client certificate from a CA this node trusts ([http] inbox_client_ca)",
            )));
        }
        match endpoint.access {
            Access::Open => None,
            Access::Operator => {
                let presented = request
                    .headers()
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes);
                if self.auth.allows(presented) {
                    return None;
                }
                let mut response = error_response(&Error::new(
                    ErrorCode::Unauthorized,
                    "this route needs the operator's bearer token",
                ));
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                Some(response)
            }
            Access::Public => self.rate_limiter.check(client.ip).err().map(|wait| {
                ::metrics::counter!(metrics::RATE_LIMITED, "route" => template.to_string())
                    .increment(1);
                let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
                let mut response = error_response(&Error::new(
                    ErrorCode::TooManyRequests,
                    format!("too many requests from this address; retry in {seconds} s"),
                ));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }),
        }
    }

    async fn dispatch(
        &self,
        endpoint: &Endpoint,
        params: Vec<(String, String)>,
        request: hyper::Request<Incoming>,
        client: Client,
    ) -> Response {
        match &endpoint.target {
            Target::Status => self.status(),
            Target::Plugins => self.plugin_list(),
            Target::OpenApi => json_response(StatusCode::OK, self.openapi.to_vec()),
            Target::Metrics => {
                let mut response = hyper::Response::new(full(self.metrics.render()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            Target::Identity => json_response(
                StatusCode::OK,
                identity::to_json(&self.node.identity.document)
                    .to_string()
                    .into_bytes(),
            ),
            Target::IdentityLookup => self.identity_lookup(&params, client).await,
            Target::Backup => self.backup().await,
            Target::Inbox => match self.read_body(request).await {
                Ok((parts, body)) => self.inbox(&parts.headers, body, client).await,
                Err(e) => error_response(&e),
            },
            Target::Audit => match param_cid(&params) {
                Ok(cid) => {
                    let report = audit::audit(&self.node, cid).await;
                    json_response(
                        StatusCode::OK,
                        serde_json::to_vec(&report).expect("an audit report serialises"),
                    )
                }
                Err(e) => error_response(&e),
            },
            Target::Plugin { index, operation } => {
                match self.plugin_request(operation, params, request).await {
                    Ok(plugin_request) => {
                        self.call_plugin(&self.plugins[*index], plugin_request)
                            .await
                    }
                    Err(e) => error_response(&e),
                }
            }
        }
    }

    /// `GET /v1/backup`: the archive's plaintext, streamed from a snapshot
    /// of the database (see `backup`); the CLI encrypts it.
    async fn backup(&self) -> Response {
        match backup::stream(&self.backup).await {
            Ok((manifest, chunks)) => {
                let frames = futures::stream::unfold(chunks, |mut chunks| async move {
                    let chunk = chunks.recv().await?;
                    Some((chunk.map(hyper::body::Frame::data), chunks))
                });
                let mut response = hyper::Response::new(StreamBody::new(frames).boxed_unsync());
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if let Ok(id) = HeaderValue::from_str(&manifest.node_id) {
                    headers.insert(BACKUP_NODE_HEADER, id);
                }
                response
            }
            Err(backup::BackupError::Refused(message)) => {
                error_response(&Error::new(ErrorCode::Conflict, message))
            }
            Err(e) => {
                tracing::error!("backup refused: {e}");
                error_response(&Error::internal(format!("cannot take a backup: {e}")))
            }
        }
    }

    fn status(&self) -> Response {
        let body = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "node": self.node_name,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "plugins": self.plugins.iter().map(|p| &p.name).collect::<Vec<_>>(),
        });
        json_response(StatusCode::OK, body.to_string().into_bytes())
    }

    fn plugin_list(&self) -> Response {
        let list: Vec<_> = self.plugins.iter().map(LoadedPlugin::summary).collect();
        json_response(
            StatusCode::OK,
            serde_json::Value::from(list).to_string().into_bytes(),
        )
    }

    /// Reads the body, refusing more than the configured limit.
    async fn read_body(
        &self,
        request: hyper::Request<Incoming>,
    ) -> Result<(hyper::http::request::Parts, Bytes), Error> {
        let too_large = || {
            Error::new(
                ErrorCode::PayloadTooLarge,
                format!("request body exceeds {} bytes", self.max_body_bytes),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, self.max_body_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    Error::bad_request(format!("cannot read request body: {e}"))
                }
            })?
            .to_bytes();
        Ok((parts, body))
    }

    /// Builds the request a plugin sees. The operator's token is not passed on.
    async fn plugin_request(
        &self,
        operation: &str,
        params: Vec<(String, String)>,
        request: hyper::Request<Incoming>,
    ) -> Result<PluginRequest, Error> {
        let (parts, body) = self.read_body(request).await?;
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION)
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        Ok(PluginRequest {
            operation: operation.to_string(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            params,
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers,
            body: body.to_vec(),
        })
    }

    /// `GET /v1/identity/{cid}`: open to anyone, so an identity this node
    /// does not know yet is charged to the client's address (the resolved
    /// document is fetched and kept), as an HTTP delivery from a new sender is.
    async fn identity_lookup(&self, params: &[(String, String)], client: Client) -> Response {
        let cid = match param_cid(params) {
            Ok(cid) => cid,
            Err(e) => return error_response(&e),
        };
        if let Err(over) = self
            .node
            .transport
            .charge_new_identity(&cid, &client.ip.to_string())
        {
            return error_response(&Error::new(
                ErrorCode::TooManyRequests,
                format!("identity lookup refused: {over}"),
            ));
        }
        match self.node.resolver.resolve(&cid).await {
            Ok(document) => {
                let mut body = identity::to_json(&document);
                match self.node.chains.view(&cid) {
                    Ok(view) => body["chain"] = view,
                    Err(e) => return error_response(&Error::unavailable(e.to_string())),
                }
                json_response(StatusCode::OK, body.to_string().into_bytes())
            }
            Err(e) => error_response(&api_error::identity(&cid, e)),
        }
    }

    /// `POST /v1/inbox`: an envelope block delivered over HTTP. The block's
    /// CID may come in the `milagro-cid` header, and is then checked.
    async fn inbox(&self, headers: &hyper::HeaderMap, body: Bytes, client: Client) -> Response {
        let cid = match headers.get(CID_HEADER).map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| milagro_proto::Cid::try_from(t).ok())
        }) {
            None => milagro_proto::block::cid_of(&body),
            Some(Some(cid)) => cid,
            Some(None) => {
                return error_response(&Error::bad_request(format!(
                    "the {CID_HEADER} header is not a CID"
                )));
            }
        };
        let block = match milagro_proto::Block::from_parts(
            &cid,
            body.to_vec(),
            self.node.limits.max_envelope_bytes,
        ) {
            Ok(block) => block,
            Err(e) => return error_response(&api_error::inbox(InboxError::Invalid(e))),
        };
        match self
            .node
            .transport
            .receive_over_http(block, client.ip, &self.consumers)
            .await
        {
            Ok(Admission { accepted, cid, .. }) => {
                let status = match accepted {
                    Accepted::New => "accepted",
                    Accepted::Duplicate => "duplicate",
                };
                json_response(
                    StatusCode::ACCEPTED,
                    json!({"cid": cid.to_string(), "status": status})
                        .to_string()
                        .into_bytes(),
                )
            }
            Err(e) => error_response(&api_error::inbox(e)),
        }
    }

    async fn call_plugin(&self, plugin: &dyn Handler, request: PluginRequest) -> Response {
        let operation = request.operation.clone();
        let name = plugin.name();
        // Dropping the handler's future on a timeout aborts its task.
        match tokio::time::timeout(self.handler_timeout, plugin.handle(request)).await {
            Ok(Ok(response)) => plugin_response(name, response),
            Ok(Err(e)) => {
                tracing::error!(plugin = %name, %operation, "handler failed: {e}");
                error_response(&Error::internal(format!(
                    "plugin {name} failed while handling {operation}"
                )))
            }
            Err(_) => {
                tracing::warn!(plugin = %name, %operation, "handler timed out");
                error_response(&Error::timeout(format!(
                    "plugin {name} did not answer {operation} within {} ms",
                    self.handler_timeout.as_millis()
                )))
            }
        }
    }
}

fn param_cid(params: &[(String, String)]) -> Result<milagro_proto::Cid, Error> {
    let text = params
        .iter()
        .find(|(k, _)| k == "cid")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    api_error::parse_cid(text, "path parameter")
}

/// Turns a plugin's answer into an HTTP response, dropping what it may not set.
fn plugin_response(plugin: &str, response: PluginResponse) -> Response {
    let Ok(status) = StatusCode::from_u16(response.status) else {
        tracing::error!(
            plugin,
            status = response.status,
            "handler returned an invalid status"
        );
        return error_response(&Error::internal(format!(
            "plugin {plugin} returned an invalid status"
        )));
    };
    let mut out = hyper::Response::new(full(response.body));
    *out.status_mut() = status;
    for (name, value) in response.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.as_str()),
        ) else {
            continue;
        };
        if !HOST_OWNED_HEADERS.contains(&name) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

/// How long a client may take over the TLS handshake before the
/// connection is dropped (a client that opens connections and never
/// speaks must not hold tasks).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1 and HTTP/2 on `listener` (inside TLS when `tls` is set:
/// then a client that does not speak TLS gets no HTTP answer) until
/// `shutdown` completes, then lets in-flight requests finish for up to
/// `drain`.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok((stream, peer)) => (stream, peer.ip()),
                    Err(e) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = move |client: Client| {
                    service_fn(move |request| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, Infallible>(app.handle(request, client).await) }
                    })
                };
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let ended = match tls {
                        None => {
                            let service = service(Client { ip: peer, certified: false });
                            let connection = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                        Some(acceptor) => {
                            let stream = match tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(stream),
                            )
                            .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    ::metrics::counter!(metrics::TLS_HANDSHAKE_FAILED).increment(1);
                                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                                    return;
                                }
                                Err(_) => {
                                    ::metrics::counter!(metrics::TLS_HANDSHAKE_FAILED).increment(1);
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                            // The verifier checked any certificate presented.
                            let certified = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .is_some_and(|chain| !chain.is_empty());
                            let service = service(Client { ip: peer, certified });
                            let connection = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                    };
                    if let Err(e) = ended {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {drain:?}; stopping anyway");
    }
}
