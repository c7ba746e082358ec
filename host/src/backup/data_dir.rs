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

//! Where a node keeps the files a backup holds: its database and the
//! embedded IPFS node's key.

use std::path::PathBuf;

use crate::config::Config;

/// The libp2p key's file name in the IPFS repo.
pub(super) const IPFS_KEY_FILE: &str = "identity.key";
/// The database file in the data dir.
pub const DATABASE_FILE: &str = "milagro.redb";

/// The embedded IPFS node's repo, in embedded mode.
pub(super) fn ipfs_repo(config: &Config) -> Option<PathBuf> {
    (config.ipfs.mode == milagro_ipfs::Mode::Embedded).then(|| {
        config
            .ipfs
            .repo
            .clone()
            .unwrap_or_else(|| config.node.data_dir.join("ipfs"))
    })
}
