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

//! The scan rule of a plugin's store namespace ([`crate::Store::scan`]):
//! keys in byte order, those starting with a prefix, strictly after a
//! cursor, at most a limit. One definition, read by the host's database and
//! the test harness's, so a listing pages the same in both.

use std::ops::Bound;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Where a scan of the keys starting with `prefix` begins: strictly after
/// `start_after` when that is not before `prefix`, else at `prefix`.
pub fn scan_start<'a>(prefix: &'a [u8], start_after: Option<&'a [u8]>) -> Bound<&'a [u8]> {
    match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    }
}

/// The entries of a scan: from `entries` (in key order, from
/// [`scan_start`]), those whose key starts with `prefix`, up to `limit`.
pub fn scan_take<E>(
    entries: impl Iterator<Item = Result<Entry, E>>,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<Entry>, E> {
    let mut out = Vec::new();
    for entry in entries {
        if out.len() >= limit {
            break;
        }
        let (key, value) = entry?;
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key, value));
    }
    Ok(out)
}
