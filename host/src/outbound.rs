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

//! The node's outbound HTTP(S): envelope deliveries to advertised
//! endpoints and the `milagro` CLI's calls to its node.
//!
//! Endpoints come from identity documents anybody can publish, so a
//! delivery is a request a stranger chose the target of. Two checks keep
//! that from being turned against the node's own network or its tasks:
//!
//! * **Address policy** ([`EndpointPolicy`]): a literal IP in the URL, and
//!   every address a name resolves to, must be public (not loopback,
//!   private, link-local, CGNAT, multicast, unspecified, ...) unless
//!   `[transport] allow_private_endpoints` or `allowed_endpoints` says
//!   otherwise. The check is done on the addresses actually connected to
//!   (the resolver filters them), so a name cannot pass the check and then
//!   resolve elsewhere.
//! * **Deadlines**: every request runs under a caller's deadline (the
//!   delivery's), and the TCP connect under its own shorter timeout, so an
//!   endpoint that accepts and never answers (a tarpit) costs one deadline,
//!   not a parked task.

use std::{
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{
        Client,
        connect::{HttpConnector, dns::Name},
    },
    rt::TokioExecutor,
};
use tokio::time::Instant;

/// Counter: outbound requests not made or cut off, by reason (`address`,
/// `timeout`).
pub const OUTBOUND_REFUSED: &str = "milagro_outbound_refused_total";

/// Why an outbound request was not made or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("bad endpoint URL {0:?}: only http:// and https:// URLs with a host are used")]
    BadUrl(String),
    #[error("{0}")]
    Refused(String),
    #[error("no answer within {0} ms")]
    Timeout(u128),
    #[error("{0}")]
    Http(String),
}

/// Which addresses outbound requests may connect to.
#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    /// Any address at all (the CLI calling its own node).
    allow_private: bool,
    /// Non-public networks allowed anyway: (network, prefix length).
    allowed: Vec<(IpAddr, u8)>,
}

impl EndpointPolicy {
    /// `allowed` entries are addresses (`127.0.0.1`, `::1`) or networks in
    /// CIDR form (`10.1.0.0/16`).
    pub fn new(allow_private: bool, allowed: &[String]) -> Result<EndpointPolicy, String> {
        let allowed = allowed
            .iter()
            .map(|entry| parse_network(entry))
            .collect::<Result<_, _>>()?;
        Ok(EndpointPolicy {
            allow_private,
            allowed,
        })
    }

    /// Any address: for the CLI, whose target is the operator's own config.
    pub fn any() -> EndpointPolicy {
        EndpointPolicy {
            allow_private: true,
            allowed: Vec::new(),
        }
    }

    /// `Err` names the address class and the setting that would allow it.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        let Some(class) = non_public(ip) else {
            return Ok(());
        };
        if self.allow_private
            || self
                .allowed
                .iter()
                .any(|&(net, len)| contains(net, len, ip))
        {
            return Ok(());
        }
        Err(format!(
            "{ip} is a {class} address; {REFUSED_MARK} unless listed in [transport] allowed_endpoints (or allow_private_endpoints = true)"
        ))
    }
}

fn parse_network(entry: &str) -> Result<(IpAddr, u8), String> {
    let bad =
        || format!("[transport] allowed_endpoints: {entry:?} is not an IP address or CIDR network");
    let (addr, len) = match entry.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (entry, None),
    };
    let ip = canonical(addr.trim().parse::<IpAddr>().map_err(|_| bad())?);
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(len) => len
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, len))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The class of a non-public address, `None` for a public one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    let in4 = |ip: Ipv4Addr, net: [u8; 4], len: u8| {
        contains(IpAddr::V4(Ipv4Addr::from(net)), len, IpAddr::V4(ip))
    };
    let in6 = |ip: Ipv6Addr, net: Ipv6Addr, len: u8| contains(IpAddr::V6(net), len, IpAddr::V6(ip));
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_unspecified() || in4(v4, [0, 0, 0, 0], 8) {
                Some("unspecified")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if in4(v4, [100, 64, 0, 0], 10) {
                Some("shared (CGNAT)")
            } else if v4.is_multicast() || v4.is_broadcast() || in4(v4, [240, 0, 0, 0], 4) {
                Some("multicast or reserved")
            } else if in4(v4, [192, 0, 0, 0], 24)
                || in4(v4, [192, 0, 2, 0], 24)
                || in4(v4, [198, 18, 0, 0], 15)
                || in4(v4, [198, 51, 100, 0], 24)
                || in4(v4, [203, 0, 113, 0], 24)
            {
                Some("special-purpose")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if in6(v6, Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7) {
                Some("private (unique local)")
            } else if in6(v6, Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10) {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast or reserved")
            } else if in6(v6, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
                || in6(v6, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32)
                || in6(v6, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16)
            {
                // NAT64 and 6to4 embed an IPv4 address; documentation.
                Some("special-purpose")
            } else {
                None
            }
        }
    }
}

/// In every address refusal: how a refusal is told from other errors once
/// the connector has wrapped it.
pub const REFUSED_MARK: &str = "endpoints there are refused";

fn refused(reason: &'static str) {
    metrics::counter!(OUTBOUND_REFUSED, "reason" => reason).increment(1);
}

/// Resolves names and keeps only the addresses the policy allows.
#[derive(Clone)]
struct GuardedResolver(Arc<EndpointPolicy>);

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refused = Some(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    match refused {
                        Some(reason) => format!("{host} resolves to {reason}"),
                        None => format!("{host} resolves to no address"),
                    },
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// An HTTP and HTTPS client under an [`EndpointPolicy`].
#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    policy: Arc<EndpointPolicy>,
}

impl Outbound {
    /// `connect_timeout` bounds each TCP connect (the request's deadline
    /// bounds everything).
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        policy: EndpointPolicy,
        connect_timeout: Duration,
    ) -> Outbound {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver(Arc::clone(&policy)));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Outbound {
            client: Client::builder(TokioExecutor::new()).build(https),
            policy,
        }
    }

    /// Sends `request` if its target is allowed, and waits for the response
    /// head until `deadline`. Errors carry their causes (the TLS reason).
    pub async fn request(
        &self,
        request: hyper::Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<hyper::Response<Incoming>, OutboundError> {
        let uri = request.uri();
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let host = uri.host().filter(|h| !h.is_empty() && scheme_ok);
        let Some(host) = host else {
            return Err(OutboundError::BadUrl(uri.to_string()));
        };
        // The connector does not resolve literal addresses: check them here.
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            && let Err(reason) = self.policy.check(ip)
        {
            refused("address");
            return Err(OutboundError::Refused(reason));
        }
        let started = Instant::now();
        match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                let chain = crate::tls::error_chain(&e);
                if chain.contains(REFUSED_MARK) {
                    refused("address");
                    Err(OutboundError::Refused(chain))
                } else {
                    Err(OutboundError::Http(chain))
                }
            }
            Err(_) => {
                refused("timeout");
                Err(OutboundError::Timeout(started.elapsed().as_millis()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let policy = EndpointPolicy::default();
        for addr in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
        ] {
            let refused = policy.check(ip(addr)).unwrap_err();
            assert!(refused.contains("allowed_endpoints"), "{addr}: {refused}");
        }
        for addr in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700::1111"] {
            policy.check(ip(addr)).unwrap();
        }
    }

    #[test]
    fn allow_list_admits_exactly_its_networks() {
        let policy =
            EndpointPolicy::new(false, &["127.0.0.1".into(), "10.1.0.0/16".into()]).unwrap();
        policy.check(ip("127.0.0.1")).unwrap();
        policy.check(ip("::ffff:127.0.0.1")).unwrap();
        policy.check(ip("10.1.255.3")).unwrap();
        policy.check(ip("127.0.0.2")).unwrap_err();
        policy.check(ip("10.2.0.1")).unwrap_err();
        policy.check(ip("::1")).unwrap_err();
        EndpointPolicy::new(true, &[])
            .unwrap()
            .check(ip("10.0.0.1"))
            .unwrap();
        for bad in ["localhost", "10.0.0.0/33", "1.2.3.4/x", ""] {
            EndpointPolicy::new(false, &[bad.into()]).unwrap_err();
        }
    }

    #[tokio::test]
    async fn literal_and_resolved_loopback_targets_are_refused_before_connecting() {
        let tls = crate::tls::client_config(None, None).unwrap();
        let out = Outbound::new(tls, EndpointPolicy::default(), Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(5);
        for url in [
            "http://127.0.0.1:9/x",
            "https://[::1]:9/x",
            "http://localhost:9/x",
        ] {
            let request = hyper::Request::get(url).body(Full::default()).unwrap();
            let e = out
                .request(request, deadline)
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("loopback"), "{url}: {e}");
        }
        let request = hyper::Request::get("ftp://1.1.1.1/")
            .body(Full::default())
            .unwrap();
        let e = out.request(request, deadline).await.unwrap_err();
        assert!(matches!(e, OutboundError::BadUrl(_)), "{e}");
    }
}
