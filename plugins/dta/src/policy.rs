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

//! Who may get which shares: `client_allow` and `server_allow`, deny by
//! default; `"self"` names this node.

use milagro_mpin::wire::SecretKind;
use milagro_plugin_api::Error;

/// The name of this node in an allow list.
pub const SELF: &str = "self";

/// The D-TA's issuing policy.
#[derive(Debug, Clone)]
pub struct Policy {
    client_allow: Vec<String>,
    server_allow: Vec<String>,
}

impl Policy {
    /// Refuses empty entries.
    pub fn new(client_allow: Vec<String>, server_allow: Vec<String>) -> Result<Policy, Error> {
        for (name, list) in [
            ("client_allow", &client_allow),
            ("server_allow", &server_allow),
        ] {
            if list.iter().any(|id| id.trim().is_empty()) {
                return Err(Error::bad_request(format!("{name} has an empty entry")));
            }
        }
        Ok(Policy {
            client_allow,
            server_allow,
        })
    }

    /// How many client requesters are listed.
    pub fn client_count(&self) -> usize {
        self.client_allow.len()
    }

    /// How many server requesters are listed.
    pub fn server_count(&self) -> usize {
        self.server_allow.len()
    }

    /// Whether `requester` may get `kind` shares; `me` is this node's ID.
    pub fn allows(&self, kind: SecretKind, requester: &str, me: &str) -> bool {
        let list = match kind {
            SecretKind::Client => &self.client_allow,
            SecretKind::Server => &self.server_allow,
        };
        list.iter().any(|id| match id.as_str() {
            SELF => requester == me,
            id => id == requester,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default_and_self_names_this_node() {
        let p = Policy::new(vec!["self".into(), "enrol".into()], vec!["auth".into()]).unwrap();
        assert!(p.allows(SecretKind::Client, "me", "me"));
        assert!(p.allows(SecretKind::Client, "enrol", "me"));
        assert!(!p.allows(SecretKind::Client, "auth", "me"));
        assert!(!p.allows(SecretKind::Server, "me", "me"));
        assert!(p.allows(SecretKind::Server, "auth", "me"));
        // "self" is not a node ID a requester can claim.
        assert!(!p.allows(SecretKind::Client, "self", "me"));
        let none = Policy::new(Vec::new(), Vec::new()).unwrap();
        assert!(!none.allows(SecretKind::Client, "me", "me"));
        assert!(Policy::new(vec![" ".into()], Vec::new()).is_err());
    }
}
