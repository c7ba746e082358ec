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

//! The operating system's CSPRNG, the only randomness source of the public API.

use getrandom::SysRng;
use rand_core::{TryRng, UnwrapErr};

use crate::{Error, Result};

/// The OS CSPRNG as a `CryptoRng` (for the RustCrypto key generators).
///
/// Call [`check_os_rng`] first in fallible paths: after one successful read,
/// `getrandom` on the supported platforms does not fail again, so the
/// `UnwrapErr` panic path is not reached in practice.
pub(crate) fn os_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// Fill `buf` from the OS CSPRNG, reporting failure as an error.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    SysRng.try_fill_bytes(buf).map_err(|_| Error::Randomness)
}

/// Probe the OS CSPRNG once so that a broken RNG is an error, not a panic.
pub(crate) fn check_os_rng() -> Result<()> {
    let mut probe = [0u8; 1];
    fill(&mut probe)
}
