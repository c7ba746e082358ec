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

//! The M-Pin authentication server's check.

use blstrs::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, Gt, Scalar};
use group::{Group, prime::PrimeCurveAffine};
use pairing::{MillerLoopResult, MultiMillerLoop};

use crate::hash_id;

/// Whether a login's second pass is right: `e(V, Q) * e(U + y*H(id), S) == 1`
/// with `U` the first pass, `y` the server's challenge, `V` the second pass
/// and `S` the combined server secret.
pub fn verify_login(mpin_id: &[u8], u: &G1Affine, y: &Scalar, v: &G1Affine, s: &G2Affine) -> bool {
    if bool::from(u.is_identity() | v.is_identity() | s.is_identity()) {
        return false;
    }
    let w = G1Affine::from(G1Projective::from(u) + G1Projective::from(hash_id(mpin_id)) * y);
    let q = G2Prepared::from(G2Affine::generator());
    let s = G2Prepared::from(*s);
    Bls12::multi_miller_loop(&[(v, &q), (&w, &s)]).final_exponentiation() == Gt::identity()
}
