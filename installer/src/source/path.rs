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

//! `path = "..."`: a prebuilt library on this machine (relative to the
//! manifest), with an optional `sha256` the installed copy must have.

use std::path::{Path, PathBuf};

use crate::entry::{EntryError, Plugin};

/// A local library file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSource {
    /// Absolute, or relative to the current directory as the manifest's
    /// directory was given.
    pub file: PathBuf,
    /// Lower-case hex.
    pub sha256: Option<String>,
}

impl PathSource {
    /// `manifest_dir` is the directory of the manifest the entry is in.
    pub fn from_entry(entry: &Plugin, manifest_dir: &Path) -> Result<Self, EntryError> {
        let path = entry.path.as_ref().expect("a path entry has a path");
        let file = manifest_dir.join(path.get_ref());
        if !file.is_file() {
            return Err(EntryError::at(
                path.span(),
                format!("plugin library {} does not exist", file.display()),
            ));
        }
        Ok(PathSource {
            file,
            sha256: super::pinned_sha256(entry, false)?,
        })
    }

    pub fn pin(&self) -> String {
        format!("path+{}", self.file.display())
    }
}
