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

//! Milagro Server's plugin interface.
//!
//! A plugin is a `cdylib` that implements [`Plugin`] and exports it:
//!
//! ```ignore
//! use milagro_plugin_api::{Error, Host, Plugin, Request, Response, Route};
//!
//! pub struct Hello { host: Host }
//!
//! impl Plugin for Hello {
//!     type Config = serde_json::Value;
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!
//!     fn new(_config: Self::Config, host: Host) -> Result<Self, Error> {
//!         Ok(Hello { host })
//!     }
//!     fn routes(&self) -> Vec<Route<Self>> {
//!         vec![Route::get("/hello", "hello", |p: &Self, r| Box::pin(p.hello(r))).summary("Says hello")]
//!     }
//! }
//!
//! impl Hello {
//!     async fn hello(&self, _request: &Request) -> Result<Response, Error> {
//!         Response::json(200, &serde_json::json!({"hello": "world"}))
//!     }
//! }
//!
//! milagro_plugin_api::export_plugin!(Hello);
//! ```
//!
//! [`abi`] is the stable ABI underneath, checked by `abi_stable` at load time;
//! plugin authors never need it. See `plugins/example` for a complete template,
//! and `testing` (feature `testing`) for handler tests on an in-process host.

#![deny(missing_docs)]
#![allow(non_local_definitions)] // emitted by #[sabi_trait]

pub mod abi;
pub mod kv;
pub mod library;
pub mod mount;
#[cfg(feature = "host")]
pub mod routing;
mod sdk;
#[cfg(feature = "testing")]
pub mod testing;

pub use sdk::*;

/// The `zeroize` crate, re-exported so that a plugin wipes its secrets
/// (`zeroize::Zeroizing`, the `Zeroize` trait) with the version the SDK's own
/// secret types use and needs no dependency of its own. Its derive macro
/// (`#[derive(Zeroize)]`) names `::zeroize` and so still needs one.
pub use zeroize;

/// What [`export_plugin!`] expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

/// Exports a [`Plugin`] type as this library's root module.
///
/// Use it once, in the plugin crate's `lib.rs` (crate-type `cdylib`).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::__export_root_module!($crate::root_module::<$plugin>);
    };
}

/// Exports a [`KeystoreBackend`] type as this library's root module: the
/// library then provides the node's keystore when `[keystore] backend`
/// names its `[[plugins]]` entry, and serves no routes.
///
/// Use it once, in the crate's `lib.rs` (crate-type `cdylib`), instead of
/// [`export_plugin!`].
#[macro_export]
macro_rules! export_keystore {
    ($keystore:ty) => {
        $crate::__export_root_module!($crate::keystore_root_module::<$keystore>);
    };
}

/// The library header both export macros write.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_root_module {
    ($constructor:expr) => {
        // The symbol abi_stable's loader looks up (its `ROOT_MODULE_LOADER_NAME`;
        // a test in plugin-api keeps the two equal). Written out here rather
        // than through `#[export_root_module]` so plugin crates need no direct
        // abi_stable dependency.
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static MILAGRO_PLUGIN_LIB_HEADER: $crate::__private::LibHeader = {
            extern "C" fn root_module_loader() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader($constructor)
            }
            // SAFETY: the constructor returns the root module type named here,
            // which is what abi_stable requires of `from_constructor`.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                    root_module_loader,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_symbol_matches_abi_stable() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
