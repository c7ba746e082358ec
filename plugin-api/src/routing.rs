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

//! The route table: path templates (`/orders/{reference}`), each with the
//! methods served on it, matched by path then by method. The host's router
//! and the test harness both match requests with it, so a plugin's routes
//! resolve the same in a handler test as on a node.

use std::collections::BTreeMap;

/// Path templates and, per template, what each method dispatches to.
pub struct RouteTable<T> {
    paths: matchit::Router<usize>,
    entries: Vec<PathEntry<T>>,
}

/// All methods served at one path template.
struct PathEntry<T> {
    template: String,
    methods: BTreeMap<String, T>,
}

/// The outcome of matching a request against a [`RouteTable`].
#[derive(Debug)]
pub enum Match<'a, T> {
    /// A route serves the method at the path.
    Found {
        /// The matched path template.
        template: &'a str,
        /// What the route dispatches to.
        target: &'a T,
        /// The values of the template's `{name}` segments.
        params: Vec<(String, String)>,
    },
    /// The path matches a template but no route serves the method (405).
    MethodNotAllowed {
        /// The matched path template.
        template: &'a str,
        /// The methods it serves, comma-separated (the `Allow` header).
        allow: String,
    },
    /// No template matches the path (404).
    NotFound,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            paths: matchit::Router::new(),
            entries: Vec::new(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Adds `method` on `template`; refused (with the reason) if the template
    /// is invalid, conflicts with another, or already serves `method`.
    pub fn add(&mut self, method: &str, template: &str, target: T) -> Result<(), String> {
        let index = match self.paths.at(template) {
            // the same template again: another method on it
            Ok(m) if self.entries[*m.value].template == template => *m.value,
            _ => {
                let index = self.entries.len();
                self.paths
                    .insert(template, index)
                    .map_err(|e| e.to_string())?;
                self.entries.push(PathEntry {
                    template: template.into(),
                    methods: BTreeMap::new(),
                });
                index
            }
        };
        let entry = &mut self.entries[index];
        if entry.methods.insert(method.into(), target).is_some() {
            return Err("declared twice".into());
        }
        Ok(())
    }

    /// What serves `method` (upper-case) at `path`.
    pub fn find(&self, method: &str, path: &str) -> Match<'_, T> {
        let Ok(matched) = self.paths.at(path) else {
            return Match::NotFound;
        };
        let entry = &self.entries[*matched.value];
        let params = matched
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match entry.methods.get(method) {
            Some(target) => Match::Found {
                template: &entry.template,
                target,
                params,
            },
            None => Match::MethodNotAllowed {
                template: &entry.template,
                allow: entry.methods.keys().cloned().collect::<Vec<_>>().join(", "),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_then_methods() {
        let mut table = RouteTable::default();
        table.add("GET", "/items/{key}", 1).unwrap();
        table.add("PUT", "/items/{key}", 2).unwrap();
        assert_eq!(
            table.add("GET", "/items/{key}", 3).unwrap_err(),
            "declared twice"
        );
        match table.find("PUT", "/items/a") {
            Match::Found {
                template,
                target,
                params,
            } => {
                assert_eq!((template, *target), ("/items/{key}", 2));
                assert_eq!(params, [("key".to_string(), "a".to_string())]);
            }
            other => panic!("expected a match, got {other:?}"),
        }
        match table.find("DELETE", "/items/a") {
            Match::MethodNotAllowed { allow, .. } => assert_eq!(allow, "GET, PUT"),
            other => panic!("expected 405, got {other:?}"),
        }
        assert!(matches!(table.find("GET", "/nope"), Match::NotFound));
    }
}
