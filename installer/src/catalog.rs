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

//! The plugins the installer knows: for each, its cargo package in this
//! workspace, the library file it builds, and the mount point a node gives it.

/// One installable plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPlugin {
    /// The plugin's name in manifests (`plugin = "..."`, or the instance name).
    pub name: &'static str,
    /// Its cargo package in this workspace.
    pub package: &'static str,
    /// Its directory in this workspace.
    pub crate_dir: &'static str,
    /// The library file cargo builds.
    pub library: &'static str,
    /// The mount point an instance gets unless the manifest names one;
    /// `None`: the host's default `/v1/<instance name>`.
    pub mount: Option<&'static str>,
    /// What it is for, for messages and `--help`.
    pub role: &'static str,
}

/// Every plugin the installer can install.
pub const PLUGINS: &[KnownPlugin] = &[
    KnownPlugin {
        name: "example",
        package: "milagro-plugin-example",
        crate_dir: "plugins/example",
        library: "libmilagro_plugin_example.so",
        mount: None,
        role: "template plugin (greeting, notes)",
    },
    KnownPlugin {
        name: "dta",
        package: "milagro-plugin-dta",
        crate_dir: "plugins/dta",
        library: "libmilagro_plugin_dta.so",
        mount: None,
        role: "D-TA: M-Pin secret shares",
    },
    KnownPlugin {
        name: "mpin",
        package: "milagro-plugin-mpin",
        crate_dir: "plugins/mpin",
        library: "libmilagro_plugin_mpin.so",
        mount: None,
        role: "M-Pin authentication server: logs users in with a PIN",
    },
    KnownPlugin {
        name: "custody-principal",
        package: "milagro-plugin-custody-principal",
        crate_dir: "plugins/custody-principal",
        library: "libmilagro_plugin_custody_principal.so",
        mount: Some("/v1/custody"),
        role: "custody principal: orders and redeems wallets",
    },
    KnownPlugin {
        name: "custody-fiduciary",
        package: "milagro-plugin-custody-fiduciary",
        crate_dir: "plugins/custody-fiduciary",
        library: "libmilagro_plugin_custody_fiduciary.so",
        mount: Some("/v1/fiduciary"),
        role: "custody fiduciary: holds and releases key shares",
    },
    KnownPlugin {
        name: "beneficiary",
        package: "milagro-plugin-beneficiary",
        crate_dir: "plugins/beneficiary",
        library: "libmilagro_plugin_beneficiary.so",
        mount: Some("/v1/beneficiary"),
        role: "custody beneficiary: rebuilds wallet keys",
    },
    KnownPlugin {
        name: "hsm-keystore",
        package: "milagro-plugin-hsm-keystore",
        crate_dir: "plugins/hsm-keystore",
        library: "libmilagro_plugin_hsm_keystore.so",
        mount: None,
        role: "keystore backend over PKCS#11",
    },
];

/// The plugin of that name, if the installer knows it.
pub fn find(name: &str) -> Option<&'static KnownPlugin> {
    PLUGINS.iter().find(|p| p.name == name)
}

/// The known names, for error messages.
pub fn names() -> String {
    PLUGINS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_libraries_follow_the_workspace_naming() {
        for p in PLUGINS {
            assert_eq!(p.package, format!("milagro-plugin-{}", p.name));
            assert_eq!(p.crate_dir, format!("plugins/{}", p.name));
            assert_eq!(p.library, format!("lib{}.so", p.package.replace('-', "_")));
        }
        assert!(find("dta").is_some() && find("nope").is_none());
    }
}
