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

//! Test-only fault injection (`test_fault` in the plugin config), compiled
//! in only with the `test-faults` feature: release builds have no such code
//! path. The end-to-end tests build a separate copy of the plugin with it.

use milagro_custody::{SecretScalar, shamir::Share};
use milagro_plugin_api::{Error, Host};

use crate::Config;
#[cfg(feature = "test-faults")]
use crate::{Fiduciary, HELD_PREFIX, Held, common};
#[cfg(feature = "test-faults")]
use milagro_plugin_api::{Request, Response, Route};

/// A fault this fiduciary plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Deals DKG shares that do not match its commitments.
    #[cfg(feature = "test-faults")]
    WrongDeal,
    /// Releases a share that is not the one it committed to.
    #[cfg(feature = "test-faults")]
    WrongRelease,
    /// Sends a wrong signature share.
    #[cfg(feature = "test-faults")]
    WrongSignatureShare,
    /// Stalls between the signing rounds, its share computed and logged
    /// but not sent, for the test to kill it there (kill -9).
    #[cfg(feature = "test-faults")]
    StallBeforeShare,
}

impl Fault {
    pub fn from_config(config: &Config, host: &Host) -> Result<Fault, Error> {
        #[cfg(feature = "test-faults")]
        {
            let fault = match config.test_fault.as_deref() {
                None => return Ok(Fault::None),
                Some("wrong-deal") => Fault::WrongDeal,
                Some("wrong-release") => Fault::WrongRelease,
                Some("wrong-signature-share") => Fault::WrongSignatureShare,
                Some("stall-before-share") => Fault::StallBeforeShare,
                Some(other) => {
                    return Err(Error::bad_request(format!(
                        "unknown test_fault {other:?} (known: \"wrong-deal\", \"wrong-release\", \"wrong-signature-share\", \"stall-before-share\")"
                    )));
                }
            };
            host.warn(format!(
                "custody-fiduciary: TEST FAULT INJECTION ACTIVE: {fault:?}"
            ));
            Ok(fault)
        }
        #[cfg(not(feature = "test-faults"))]
        {
            let _ = (config, host);
            Ok(Fault::None)
        }
    }

    /// The DKG share dealt to another fiduciary.
    pub fn dealt(self, share: Share) -> Result<Share, Error> {
        match self {
            #[cfg(feature = "test-faults")]
            Fault::WrongDeal => {
                Share::new(share.index(), share.value() + milagro_custody::Scalar::ONE)
                    .map_err(crate::common::custody_error)
            }
            _ => Ok(share),
        }
    }

    /// The share released to the beneficiary.
    pub fn released(self, share: SecretScalar) -> Result<SecretScalar, Error> {
        match self {
            #[cfg(feature = "test-faults")]
            Fault::WrongRelease => {
                SecretScalar::from_scalar(share.as_scalar() + milagro_custody::Scalar::ONE)
                    .map_err(crate::common::custody_error)
            }
            _ => Ok(share),
        }
    }
}

impl Fault {
    /// The signature share sent to the beneficiary.
    pub fn signature_share(self, share: [u8; 32]) -> [u8; 32] {
        match self {
            #[cfg(feature = "test-faults")]
            Fault::WrongSignatureShare => {
                let mut wrong = share;
                wrong[31] ^= 1;
                wrong
            }
            _ => share,
        }
    }

    /// Called after a signature share is logged, before it is sent.
    pub async fn before_share(self, host: &Host) -> Result<(), Error> {
        #[cfg(feature = "test-faults")]
        if self == Fault::StallBeforeShare {
            host.warn("TEST FAULT: holding a signature share until killed");
            host.sleep(std::time::Duration::from_secs(600)).await;
            return Err(Error::internal("TEST FAULT: held a signature share"));
        }
        let _ = host;
        Ok(())
    }
}

/// `GET /test/shares/{order_cid}`: the shares of an order this fiduciary
/// still holds, by epoch (hex). Exists only in `test-faults` builds: the
/// reshare tests keep a share from before a refresh to show it is useless
/// after.
#[cfg(feature = "test-faults")]
pub fn export_route() -> Route<Fiduciary> {
    Route::get(
        "/test/shares/{order_cid}",
        "test_export_shares",
        |p: &Fiduciary, r| Box::pin(p.export_shares(r)),
    )
    .summary("TEST BUILDS ONLY: the shares of an order held here, by epoch")
    .response(200, "Shares by epoch", None)
}

#[cfg(feature = "test-faults")]
impl Fiduciary {
    pub(crate) async fn export_shares(&self, request: &Request) -> Result<Response, Error> {
        let cid = request.param("order_cid").unwrap_or_default();
        let held: Held = self
            .host
            .store()
            .get_json(format!("{HELD_PREFIX}{cid}"))
            .await?
            .ok_or_else(|| Error::not_found(format!("no order {cid}")))?;
        let mut epochs = vec![held.epoch];
        epochs.extend(held.pending.as_ref().map(|p| p.epoch));
        let mut shares = serde_json::Map::new();
        for epoch in epochs {
            if let Some(share) = common::get_scalar(&self.host, &Held::label_of(cid, epoch)).await?
            {
                shares.insert(
                    epoch.to_string(),
                    hex::encode(share.to_bytes().as_slice()).into(),
                );
            }
        }
        Response::json(200, &shares)
    }
}
