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

//! `custody/release`: fiduciary (or principal) -> beneficiary, a share sealed
//! to the beneficiary.

use super::*;

/// `custody/release`: fiduciary -> beneficiary, always in a sealed body.
/// `Debug` does not print the share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The order released.
    pub order_cid: Cid,
    /// k_i (n-of-n) or s_j (t-of-n): 32-byte scalar, secret.
    #[serde(with = "secret_scalar_bytes")]
    pub share: SecretScalar,
    /// The sharing the share belongs to (absent: the order's own, 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("order_cid", &self.order_cid.to_string())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Body for Release {
    const KIND: &'static str = "custody/release";

    fn validate(&self, _limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)
    }
}
