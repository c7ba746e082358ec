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

//! Where plugin instances may be mounted: the rules a `[[plugins]]` entry
//! must meet, shared by the host (host.toml) and `milagro-install` (install
//! manifests), so both refuse the same entries with the same reasons, and
//! the host's own routes, which the host's router and OpenAPI document are
//! built and checked from.

/// The instance name whose plugin may read the node's beneficiary key
/// ([`crate::abi::HostObj::beneficiary_secret`]).
pub const BENEFICIARY_INSTANCE: &str = "beneficiary";

/// The keystore label a plugin instance's `label` is kept under: each
/// instance has a namespace of its own, so no plugin reaches another's keys.
pub fn key_label(instance: &str, label: &str) -> String {
    format!("plugin/{instance}/{label}")
}

/// Who may call a host route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// Only with the operator's token.
    Operator,
}

/// One of the host's own routes: method, path template, who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRoute {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// Path template (`{name}` is a parameter).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> HostRoute {
    HostRoute {
        method,
        path,
        access,
    }
}

/// The host's own routes: what its router serves besides the plugins'.
pub const HOST_ROUTES: [HostRoute; 9] = [
    route("GET", "/v1/status", Access::Open),
    route("GET", "/v1/plugins", Access::Operator),
    route("GET", "/openapi.json", Access::Operator),
    route("GET", "/metrics", Access::Open),
    route("GET", "/v1/identity", Access::Open),
    route("GET", "/v1/identity/{cid}", Access::Open),
    route("POST", "/v1/inbox", Access::Open),
    route("GET", "/v1/audit/{cid}", Access::Operator),
    route("GET", "/v1/backup", Access::Operator),
];

/// The part of a host route's path before its first parameter: what no
/// plugin mount may overlap.
fn reserved_prefix(path: &str) -> &str {
    match path.find("/{") {
        Some(at) => &path[..at],
        None => path,
    }
}

/// Whether `name` is a valid plugin instance name: non-empty, `a-z 0-9 -`.
pub fn valid_instance_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `mount` is a valid mount point: an absolute path of more than
/// `/`, without a trailing `/`, `.` or `..` segments, or route syntax.
pub fn valid_mount(mount: &str) -> bool {
    mount.starts_with('/')
        && mount.len() > 1
        && !mount.ends_with('/')
        && !mount.contains(['{', '}', '*', '?', '#'])
        && !mount.split('/').any(|seg| seg == "." || seg == "..")
}

/// Whether two mounts (or a mount and a route prefix) overlap: equal, or
/// one below the other.
pub fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// The host route prefix `mount` overlaps, if any.
pub fn reserved_by_host(mount: &str) -> Option<&'static str> {
    HOST_ROUTES
        .iter()
        .map(|r| reserved_prefix(r.path))
        .find(|prefix| overlaps(mount, prefix))
}

/// The one-line reason an instance name is refused.
pub fn invalid_name_reason(name: &str) -> String {
    format!("plugin name {name:?}: expected a non-empty name of a-z, 0-9 and '-'")
}

/// The one-line reason a mount is refused, if it is.
pub fn mount_refusal(mount: &str) -> Option<String> {
    if !valid_mount(mount) {
        return Some(format!(
            "mount {mount:?}: expected an absolute path without a trailing '/', '..' or route syntax"
        ));
    }
    reserved_by_host(mount)
        .map(|reserved| format!("mount {mount:?} overlaps the host's own route {reserved}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_routes_reserve_their_prefixes() {
        for mount in [
            "/v1/status",
            "/v1",
            "/v1/identity/x",
            "/v1/backup",
            "/metrics",
            "/openapi.json",
            "/v1/audit",
        ] {
            assert!(mount_refusal(mount).is_some(), "{mount}");
        }
        for mount in ["/v1/custody", "/v1/statusx", "/x"] {
            assert_eq!(mount_refusal(mount), None, "{mount}");
        }
        for mount in ["/", "", "v1/x", "/v1/x/", "/v1/../x", "/v1/{x}", "/v1/x?y"] {
            assert!(mount_refusal(mount).is_some(), "{mount:?}");
        }
    }

    #[test]
    fn names() {
        assert!(valid_instance_name("custody-2"));
        for bad in ["", "Custody", "a_b", "a b", "é"] {
            assert!(!valid_instance_name(bad), "{bad:?}");
        }
    }
}
