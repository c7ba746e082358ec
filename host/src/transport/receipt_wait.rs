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

//! How long a pubsub delivery waits for its receipt before it publishes the
//! envelope again: an estimate of the receipt round trip, kept as TCP keeps
//! its retransmission timeout (RFC 6298: smoothed round trip plus four
//! times its mean deviation), never below [`MIN_WAIT`] nor above
//! [`MAX_WAIT`].
//!
//! A fixed wait republished every delivery whose receipt came late, and
//! receipts come late exactly when the recipient is overloaded: each
//! republish made it verify, look up and sign a receipt again, so a short
//! stall grew into minutes of duplicate work. Learning the round trip keeps
//! republishing for messages that pubsub really lost.

use std::{sync::Mutex, time::Duration};

/// The wait before any receipt was measured, and the least wait: a lost
/// message costs at most this much before it is sent again.
const MIN_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between two publishes of a delivery.
const MAX_WAIT: Duration = Duration::from_secs(4);

#[derive(Default)]
struct Estimate {
    smoothed: Option<Duration>,
    deviation: Duration,
}

/// The receipt round-trip estimate of one node's deliveries.
#[derive(Default)]
pub struct ReceiptWait {
    estimate: Mutex<Estimate>,
}

impl ReceiptWait {
    /// How long a first publish waits for its receipt.
    pub fn first(&self) -> Duration {
        let estimate = self.estimate.lock().expect("receipt estimate lock");
        match estimate.smoothed {
            None => MIN_WAIT,
            Some(smoothed) => (smoothed + 4 * estimate.deviation).clamp(MIN_WAIT, MAX_WAIT),
        }
    }

    /// The wait after `previous` went unanswered (doubled, as TCP backs off).
    pub fn after(previous: Duration) -> Duration {
        (previous * 2).min(MAX_WAIT)
    }

    /// Records the round trip of a delivery answered at its first publish
    /// (Karn's rule: one that was republished says nothing clear).
    pub fn observe(&self, round_trip: Duration) {
        let mut estimate = self.estimate.lock().expect("receipt estimate lock");
        match estimate.smoothed {
            None => {
                estimate.smoothed = Some(round_trip);
                estimate.deviation = round_trip / 2;
            }
            Some(smoothed) => {
                let error = smoothed.abs_diff(round_trip);
                estimate.deviation = (estimate.deviation * 3 + error) / 4;
                estimate.smoothed = Some((smoothed * 7 + round_trip) / 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An estimate that has seen `round_trips`.
    fn observed(round_trips: impl IntoIterator<Item = Duration>) -> ReceiptWait {
        let wait = ReceiptWait::default();
        round_trips.into_iter().for_each(|rtt| wait.observe(rtt));
        wait
    }

    fn repeated(rtt: Duration, times: usize) -> impl Iterator<Item = Duration> {
        std::iter::repeat_n(rtt, times)
    }

    #[test]
    fn starts_at_the_least_wait() {
        assert_eq!(ReceiptWait::default().first(), MIN_WAIT);
    }

    #[test]
    fn fast_receipts_keep_the_least_wait() {
        let wait = observed(repeated(Duration::from_millis(20), 50));
        assert_eq!(wait.first(), MIN_WAIT);
    }

    #[test]
    fn slow_receipts_lengthen_the_wait_past_them_and_fast_ones_shorten_it_again() {
        // 0.8 to 1.2 s: an overloaded recipient.
        let wait = observed((0..100u64).map(|i| Duration::from_millis(800 + (i % 5) * 100)));
        let slow = wait.first();
        assert!(
            slow > Duration::from_millis(1200) && slow < MAX_WAIT,
            "{slow:?}"
        );
        repeated(Duration::from_millis(20), 100).for_each(|rtt| wait.observe(rtt));
        assert_eq!(wait.first(), MIN_WAIT);
    }

    #[test]
    fn never_waits_longer_than_the_most() {
        let wait = observed(repeated(Duration::from_secs(30), 20));
        assert_eq!(wait.first(), MAX_WAIT);
        assert_eq!(ReceiptWait::after(MAX_WAIT), MAX_WAIT);
        assert_eq!(ReceiptWait::after(MIN_WAIT), 2 * MIN_WAIT);
    }
}
