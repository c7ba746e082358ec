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

//! The principal's protocol checks on the fiduciaries' answers: a
//! commitment verified against its order ([`verify_commitment`]) and the
//! wallet key P = B + ΣK_i (or the t-of-n aggregate) from the verified
//! commitments ([`wallet_key`]). Apart from the wire bodies
//! ([`crate::messages`]), which only check their own shape.

use k256::PublicKey;

use crate::feldman::{self, Commitments};
use crate::messages::{Commitment, Order};
use crate::{Error, Result, wallet};

/// What the principal keeps from one verified commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCommitment {
    /// The fiduciary's 1-based index in the order.
    pub index: u32,
    /// K_i (n-of-n) or S_j (t-of-n).
    pub share_public_key: PublicKey,
    /// t-of-n: the dealers' commitments this fiduciary reported (the
    /// principal checks that all fiduciaries report the same ones).
    pub dealers: Option<Vec<Commitments>>,
}

/// The principal's check of fiduciary `fiduciary`'s commitment to `order`:
/// it answers this order, the fiduciary is in the order, the proof verifies,
/// and in the t-of-n mode the dealers' commitments have the order's shape
/// (n lists of t points) and S_j matches them.
pub fn verify_commitment(
    order: &Order,
    fiduciary: &str,
    commitment: &Commitment,
) -> Result<VerifiedCommitment> {
    let cid = order.cid()?;
    let index = order
        .fiduciary_index(fiduciary)
        .ok_or(Error::InvalidField {
            field: "fiduciary",
            reason: "not a fiduciary of this order",
        })?;
    let share_public_key = commitment.verify(&cid, fiduciary)?;
    let dealers = commitment.dealers()?;
    match (&dealers, order.is_threshold()) {
        (None, false) => {}
        (Some(d), true) => {
            let t = order.threshold as usize;
            if d.len() != order.fiduciaries.len() || d.iter().any(|c| c.threshold() != t) {
                return Err(Error::InvalidField {
                    field: "dealer_commitments",
                    reason: "expected n lists of t commitments",
                });
            }
            let expected = Commitments::sum(d)?.public_share(index)?;
            if expected != share_public_key {
                return Err(Error::ShareMismatch { index });
            }
        }
        _ => {
            return Err(Error::InvalidField {
                field: "dealer_commitments",
                reason: "present exactly when t < n",
            });
        }
    }
    Ok(VerifiedCommitment {
        index,
        share_public_key,
        dealers,
    })
}

/// The principal's aggregation once every fiduciary's commitment verified
/// (`verified` in any order, one per fiduciary): the fiduciaries' key
/// (ΣK_i, or the DKG group key K after checking every fiduciary reported the
/// same commitments) and the wallet key P = B + that.
pub fn wallet_key(
    order: &Order,
    beneficiary: &PublicKey,
    verified: &[VerifiedCommitment],
) -> Result<PublicKey> {
    let n = order.fiduciaries.len();
    let mut seen = vec![false; n];
    for v in verified {
        let slot = seen
            .get_mut(v.index as usize - 1)
            .ok_or(Error::InvalidIndex { index: v.index })?;
        if *slot {
            return Err(Error::InvalidIndex { index: v.index });
        }
        *slot = true;
    }
    if verified.len() != n {
        return Err(Error::NotEnoughShares {
            have: verified.len(),
            need: n,
        });
    }
    if order.is_threshold() {
        let first = verified[0]
            .dealers
            .as_ref()
            .ok_or(Error::InconsistentDealings)?;
        if verified.iter().any(|v| v.dealers.as_ref() != Some(first)) {
            return Err(Error::InconsistentDealings);
        }
        let k = feldman::group_key(first)?;
        wallet::aggregate_public_key(beneficiary, &[k])
    } else {
        let keys: Vec<PublicKey> = verified.iter().map(|v| v.share_public_key).collect();
        wallet::aggregate_public_key(beneficiary, &keys)
    }
}
