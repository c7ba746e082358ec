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

//! Prometheus metrics: request counts and latency histograms per route.
//!
//! Routes are labelled by their template (`/v1/custody/orders/{reference}`),
//! never by the raw path, so label cardinality stays bounded.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const REQUESTS: &str = "milagro_http_requests_total";
const LATENCY: &str = "milagro_http_request_duration_seconds";
/// Requests to public routes refused by the per-address rate limit.
pub const RATE_LIMITED: &str = "milagro_rate_limited_total";
/// Connections to a TLS listener dropped in the handshake.
pub const TLS_HANDSHAKE_FAILED: &str = "milagro_tls_handshake_failed_total";

/// Latency buckets, seconds: 50 µs to 30 s.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    5.0, 30.0,
];

/// The process-wide recorder (the `metrics` facade has one per process).
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn get() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first, in which
            // case this one still renders, just empty.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            metrics::describe_counter!(REQUESTS, "HTTP requests by route, method and status");
            metrics::describe_histogram!(
                LATENCY,
                metrics::Unit::Seconds,
                "HTTP request latency by route and method"
            );
            metrics::describe_counter!(
                RATE_LIMITED,
                "Requests to public routes refused (429) by the per-client-address rate limit, by route"
            );
            metrics::describe_counter!(
                TLS_HANDSHAKE_FAILED,
                "Connections dropped because the TLS handshake failed or timed out (e.g. plain HTTP to the TLS listener)"
            );
            metrics::describe_counter!(
                crate::outbound::OUTBOUND_REFUSED,
                "Outbound HTTP requests refused (a non-public address not allowed) or cut off at their deadline, by reason"
            );
            metrics::describe_gauge!(
                crate::transport::inbox::REPLY_WAITERS,
                "Envelopes a plugin is waiting for a reply to (by envelope and reply kind)"
            );
            metrics::describe_counter!(
                crate::transport::inbox::REPLY_REFUSED,
                "Replies a waiting plugin did not take: signed by a node the wait did not name, or refused by their plugin, by reason"
            );
            metrics::describe_counter!(
                crate::transport::inbox::ENVELOPE_TIMEOUTS,
                "Received envelopes whose plugin did not finish within [transport] envelope_timeout_ms"
            );
            metrics::describe_counter!(
                crate::transport::inbox::INBOX_REFUSED,
                "Envelopes refused by the inbox (bad kind, replayed message id, invalid, clock skew, sender, not a recipient), by reason"
            );
            metrics::describe_counter!(
                crate::transport::REPUBLISHED,
                "Pubsub deliveries published again because their receipt had not come"
            );
            metrics::describe_counter!(
                crate::transport::quota::REFUSED,
                "Envelopes refused because their sender (or delivering peer) was over a quota, by quota"
            );
            metrics::describe_counter!(
                crate::transport::peers::RESETS,
                "IPFS connections reset after failed pubsub deliveries, by which proven peer"
            );
            metrics::describe_counter!(
                crate::transport::peers::RESETS_REFUSED,
                "IPFS connection resets not done: no peer proven to act for the identity (its addresses only dialled), or rate-limited"
            );
            Metrics { handle }
        })
    }

    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = [("route", route.to_string()), ("method", method.to_string())];
        metrics::histogram!(LATENCY, &labels).record(elapsed.as_secs_f64());
        let status = status.to_string();
        metrics::counter!(REQUESTS, "route" => route.to_string(), "method" => method.to_string(), "status" => status)
            .increment(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}
