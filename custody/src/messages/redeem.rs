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

//! `custody/redeem`: principal -> each fiduciary.

use super::*;

/// `custody/redeem`: principal or beneficiary -> each fiduciary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// The order to redeem.
    pub order_cid: Cid,
    /// Its reference (a cross-check of the order CID).
    pub reference: String,
    /// A new beneficiary, only where the order allows it (beneficiary = principal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_beneficiary: Option<String>,
    /// The sharing whose shares are asked for (absent: the order's own, 0;
    /// see [`Reshare`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
}

impl Body for Redeem {
    const KIND: &'static str = "custody/redeem";

    fn validate(&self, limits: &Limits) -> Result<()> {
        check_order_cid("order_cid", &self.order_cid)?;
        check_text("reference", &self.reference, limits)?;
        if let Some(b) = &self.new_beneficiary {
            check_node_id("new_beneficiary", b)?;
        }
        Ok(())
    }
}
