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

//! Random scalars from the operating system's CSPRNG (`getrandom`).

use k256::elliptic_curve::ops::ReduceNonZero;
use k256::{Scalar, WideBytes};
use zeroize::Zeroize;

use crate::{Error, Result};

/// A uniformly random non-zero scalar: 64 bytes from the OS CSPRNG reduced
/// modulo n - 1, plus one (bias below 2^-256).
pub(crate) fn random_nonzero_scalar() -> Result<Scalar> {
    let mut wide = WideBytes::default();
    getrandom::fill(wide.as_mut_slice()).map_err(|_| Error::Randomness)?;
    let s = <Scalar as ReduceNonZero<WideBytes>>::reduce_nonzero(&wide);
    wide.as_mut_slice().zeroize();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_are_nonzero() {
        let a = random_nonzero_scalar().unwrap();
        let b = random_nonzero_scalar().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, Scalar::ZERO);
    }
}
