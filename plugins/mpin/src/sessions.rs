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

//! Login sessions between pass 1 and pass 2: in memory, single-use, short,
//! and bounded in number.
//!
//! A session holds what pass 2 needs (the ID, `U` and the challenge `y`)
//! under a random 128-bit handle. [`Sessions::take`] removes it whatever
//! comes next, so a session answers one pass 2 only; an expired one reads
//! as absent. When the table is full, expired sessions are dropped; if it
//! is still full, a new login is refused (the caller answers 503), so a
//! flood of pass 1 cannot grow memory. A restart forgets every session:
//! users start their login again, nothing else is lost.

use std::{collections::HashMap, sync::Mutex};

use milagro_mpin::{G1Affine, Scalar};

/// Length of a session handle, bytes (hex on the wire).
pub const SESSION_LEN: usize = 16;

/// A session handle.
pub type SessionId = [u8; SESSION_LEN];

/// What pass 1 left for pass 2.
pub struct Session {
    pub mpin_id: String,
    pub u: G1Affine,
    pub y: Scalar,
    expires_ms: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        milagro_mpin::wipe(&mut self.y);
    }
}

/// The table is full of live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

pub struct Sessions {
    max: usize,
    ttl_ms: u64,
    open: Mutex<HashMap<SessionId, Session>>,
}

impl Sessions {
    pub fn new(max: usize, ttl_ms: u64) -> Sessions {
        Sessions {
            max,
            ttl_ms,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session under a fresh random handle.
    pub fn open(
        &self,
        mpin_id: String,
        u: G1Affine,
        y: Scalar,
        now_ms: u64,
    ) -> Result<Result<SessionId, Full>, getrandom::Error> {
        let mut id = [0u8; SESSION_LEN];
        getrandom::fill(&mut id)?;
        let mut open = self.open.lock().expect("sessions lock");
        if open.len() >= self.max {
            open.retain(|_, s| s.expires_ms > now_ms);
            if open.len() >= self.max {
                return Ok(Err(Full));
            }
        }
        open.insert(
            id,
            Session {
                mpin_id,
                u,
                y,
                expires_ms: now_ms.saturating_add(self.ttl_ms),
            },
        );
        Ok(Ok(id))
    }

    /// Removes and returns a live session; `None` if unknown, already
    /// used, or expired.
    pub fn take(&self, id: &SessionId, now_ms: u64) -> Option<Session> {
        let session = self.open.lock().expect("sessions lock").remove(id)?;
        (session.expires_ms > now_ms).then_some(session)
    }

    /// Sessions held (live or expired, not yet swept).
    pub fn count(&self) -> usize {
        self.open.lock().expect("sessions lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milagro_mpin::{Field, PrimeCurveAffine};

    fn open(sessions: &Sessions, now: u64) -> Result<SessionId, Full> {
        sessions
            .open("alice".into(), G1Affine::generator(), Scalar::ONE, now)
            .unwrap()
    }

    #[test]
    fn a_session_answers_once_and_expires() {
        let sessions = Sessions::new(10, 1_000);
        let a = open(&sessions, 0).unwrap();
        let b = open(&sessions, 0).unwrap();
        assert_ne!(a, b, "handles are random");
        assert_eq!(sessions.take(&a, 999).unwrap().mpin_id, "alice");
        assert!(sessions.take(&a, 999).is_none(), "single use");
        assert!(sessions.take(&b, 1_000).is_none(), "expired");
        assert!(sessions.take(&[0; SESSION_LEN], 0).is_none(), "unknown");
        assert_eq!(sessions.count(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_expired_sessions_make_room() {
        let sessions = Sessions::new(3, 1_000);
        for _ in 0..3 {
            open(&sessions, 0).unwrap();
        }
        assert_eq!(open(&sessions, 500), Err(Full));
        assert_eq!(sessions.count(), 3);
        // all three expired by now: swept to make room
        assert!(open(&sessions, 1_000).is_ok());
        assert_eq!(sessions.count(), 1);
    }
}
