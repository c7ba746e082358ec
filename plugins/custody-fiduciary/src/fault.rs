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
}

impl Fault {
    pub fn from_config(config: &Config, host: &Host) -> Result<Fault, Error> {
        #[cfg(feature = "test-faults")]
        {
            let fault = match config.test_fault.as_deref() {
                None => return Ok(Fault::None),
                Some("wrong-deal") => Fault::WrongDeal,
                Some("wrong-release") => Fault::WrongRelease,
                Some(other) => {
                    return Err(Error::bad_request(format!(
                        "unknown test_fault {other:?} (known: \"wrong-deal\", \"wrong-release\")"
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
