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

//! `git = "url", rev = "<full commit>"`: a plugin crate at one commit of a
//! git repository (a full 40- or 64-hex commit ID: a branch, a tag or a
//! short ID could be moved or collide), cloned with the `git` command and
//! built like a registry crate (`build`).

use std::{
    ffi::OsStr,
    process::{Command, Stdio},
};

use super::{FetchContext, Fetched, SourceError, build, check_url, required_pin};
use crate::entry::{EntryError, Plugin};

/// A repository at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    pub url: String,
    /// The full commit ID, lower case.
    pub rev: String,
}

/// Whether `rev` is a full commit ID (SHA-1 or SHA-256 repositories).
fn is_full_commit(rev: &str) -> bool {
    matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

impl GitSource {
    pub fn from_entry(entry: &Plugin) -> Result<Self, EntryError> {
        let url = entry.git.as_ref().expect("a git entry has git");
        check_url(url.get_ref(), &["ssh", "file"]).map_err(|m| EntryError::at(url.span(), m))?;
        let rev = required_pin(
            url.span(),
            entry.rev.as_ref(),
            "a git source needs rev = \"<full commit ID>\" (40 hex digits)",
            is_full_commit,
            |rev| {
                format!(
                    "rev {rev:?}: expected a full commit ID (40 hex digits), not a branch, tag or short ID"
                )
            },
        )?;
        Ok(GitSource {
            url: url.get_ref().clone(),
            rev: rev.to_ascii_lowercase(),
        })
    }

    pub fn pin(&self) -> String {
        format!("git+{}#{}", self.url, self.rev)
    }

    /// Clones the repository, checks out the commit (and checks that HEAD
    /// is that commit), and builds the crate at its root.
    pub fn fetch(&self, context: &FetchContext<'_>) -> Result<Fetched, SourceError> {
        let checkout = context.scratch.join(format!("{}-git", context.name));
        context.progress.step(&format!(
            "plugin {}: cloning {} at {}",
            context.name, self.url, self.rev
        ));
        let name = context.name;
        self.git(
            name,
            &[
                "clone".as_ref(),
                "--quiet".as_ref(),
                "--no-checkout".as_ref(),
                "--".as_ref(),
                self.url.as_ref(),
                checkout.as_os_str(),
            ],
        )?;
        let in_checkout: [&OsStr; 2] = ["-C".as_ref(), checkout.as_os_str()];
        let mut checkout_args = in_checkout.to_vec();
        checkout_args.extend(["checkout", "--quiet", "--detach", &self.rev].map(OsStr::new));
        self.git(name, &checkout_args)?;
        let mut head_args = in_checkout.to_vec();
        head_args.extend(["rev-parse", "HEAD"].map(OsStr::new));
        let head = self.git(name, &head_args)?;
        if head.trim() != self.rev {
            return Err(self.error(
                name,
                format!("checked out {}, not the pinned commit", head.trim()),
            ));
        }
        build::build_library(&checkout, context)
    }

    fn error(&self, name: &str, reason: String) -> SourceError {
        SourceError::Git {
            name: name.into(),
            url: self.url.clone(),
            rev: self.rev.clone(),
            reason,
        }
    }

    /// Runs git without prompts or hooks from the environment; its stdout.
    fn git(&self, name: &str, args: &[&OsStr]) -> Result<String, SourceError> {
        let out = Command::new("git")
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            // Only the transports the manifest allows (no ext::, no fd::).
            .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:file")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.error(name, format!("cannot run git: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("git failed")
                .trim()
                .to_string();
            return Err(self.error(name, line));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
