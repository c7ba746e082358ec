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

//! Per-client-address rate limiting of public plugin routes (the routes end
//! users reach without the operator's token, e.g. an M-Pin login).
//!
//! One token bucket per client address (an IPv6 address counts by its /64,
//! which one host usually holds whole): `burst` requests at once, refilled
//! at `per_second`. The table of buckets is bounded (`max_clients`): a full
//! bucket is the same as no bucket, so full ones are swept out when the
//! table is full (at most once a second); if it is still full, new
//! addresses share one overflow bucket, so a flood from many addresses
//! cannot grow memory or starve the addresses already known.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Deserialize;

/// `[http.rate_limit]` in host.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client address.
    pub per_second: f64,
    /// Requests a client address may make at once.
    pub burst: u32,
    /// Most client addresses tracked at once.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 10.0,
            burst: 30,
            max_clients: 100_000,
        }
    }
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.per_second.is_finite() && self.per_second > 0.0)
            || self.burst == 0
            || self.max_clients == 0
        {
            return Err(
                "[http.rate_limit] per_second, burst and max_clients must be positive".into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, config: &RateLimitConfig, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * config.per_second).min(f64::from(config.burst));
        self.updated = now;
    }

    /// Takes one token, or says how long until there is one.
    fn take(&mut self, config: &RateLimitConfig, now: Instant) -> Result<(), Duration> {
        self.refill(config, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / config.per_second,
            ))
        }
    }
}

struct Buckets {
    by_client: HashMap<IpAddr, Bucket>,
    overflow: Bucket,
    last_sweep: Option<Instant>,
}

pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Mutex<Buckets>,
}

/// The address a client's bucket is kept under.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> RateLimiter {
        let now = Instant::now();
        let burst = f64::from(config.burst);
        RateLimiter {
            buckets: Mutex::new(Buckets {
                by_client: HashMap::new(),
                overflow: Bucket::full(burst, now),
                last_sweep: None,
            }),
            config,
        }
    }

    /// Admits one request from `client`, or says when to retry.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let config = &self.config;
        let burst = f64::from(config.burst);
        let key = client_key(client);
        let mut guard = self.buckets.lock().expect("rate limiter lock");
        let buckets = &mut *guard;
        if let Some(bucket) = buckets.by_client.get_mut(&key) {
            return bucket.take(config, now);
        }
        if buckets.by_client.len() >= config.max_clients {
            let may_sweep = buckets
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
            if may_sweep {
                buckets.last_sweep = Some(now);
                buckets.by_client.retain(|_, b| {
                    b.refill(config, now);
                    b.tokens < burst
                });
            }
            if buckets.by_client.len() >= config.max_clients {
                return buckets.overflow.take(config, now);
            }
        }
        let mut bucket = Bucket::full(burst, now);
        let taken = bucket.take(config, now);
        buckets.by_client.insert(key, bucket);
        taken
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap().by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            per_second,
            burst,
            max_clients,
        })
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_passes_then_one_request_per_refill() {
        let l = limiter(2.0, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(v4(1), t0).is_ok());
        }
        let wait = l.check_at(v4(1), t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // another address has its own bucket
        assert!(l.check_at(v4(2), t0).is_ok());
        // half a second later one token is back, and only one
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check_at(v4(1), t1).is_ok());
        assert!(l.check_at(v4(1), t1).is_err());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let l = limiter(1.0, 1, 10);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check_at(a, t0).is_ok());
        assert!(l.check_at(b, t0).is_err(), "same /64, same bucket");
        assert!(l.check_at(other, t0).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(l.check_at(mapped, t0).is_ok());
        assert!(l.check_at(v4(7), t0).is_err());
    }

    #[test]
    fn the_table_stays_bounded_and_new_addresses_share_the_overflow() {
        let l = limiter(1.0, 2, 4);
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(l.check_at(v4(i), t0).is_ok());
        }
        // full, nothing refilled yet: new addresses go to the shared overflow bucket
        assert!(l.check_at(v4(100), t0).is_ok());
        assert!(l.check_at(v4(101), t0).is_ok());
        assert!(l.check_at(v4(102), t0).is_err());
        assert_eq!(l.tracked(), 4);
        // known addresses keep their own buckets meanwhile
        assert!(l.check_at(v4(0), t0).is_ok());
        // once the known buckets are full again they are swept out
        let later = t0 + Duration::from_secs(5);
        assert!(l.check_at(v4(200), later).is_ok());
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        for (per_second, burst, max_clients) in
            [(0.0, 1, 1), (f64::NAN, 1, 1), (1.0, 0, 1), (1.0, 1, 0)]
        {
            let config = RateLimitConfig {
                per_second,
                burst,
                max_clients,
            };
            assert!(config.validate().is_err(), "{config:?}");
        }
        assert!(RateLimitConfig::default().validate().is_ok());
    }
}
