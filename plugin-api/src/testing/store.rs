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

//! A node's store in the harness: a redb database file in the test
//! network's temporary directory, the engine and key order of the host's.
//! One file per node holds its one plugin instance's namespace, so keys are
//! stored as the plugin writes them.
//!
//! Writes are committed without an fsync: a test process does not crash
//! between a write and a read, and a handler test stays fast.

use std::{ops::Bound, path::Path};

use abi_stable::std_types::RVec;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::{Error, abi::KvWrite, kv};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// One node's database.
pub(super) struct TestStore {
    db: Database,
}

/// The error the host answers when its database fails (503).
fn failing(e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("storage failing: {e}"))
}

impl TestStore {
    pub(super) fn create(path: &Path) -> Result<TestStore, Error> {
        let db = Database::create(path).map_err(failing)?;
        // Created up front so readers never race its creation.
        let tx = db.begin_write().map_err(failing)?;
        tx.open_table(KV).map_err(failing)?;
        tx.commit().map_err(failing)?;
        Ok(TestStore { db })
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let tx = self.db.begin_read().map_err(failing)?;
        let table = tx.open_table(KV).map_err(failing)?;
        let value = table.get(key).map_err(failing)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Applies every write or none.
    pub(super) fn write(&self, writes: RVec<KvWrite>) -> Result<(), Error> {
        let mut tx = self.db.begin_write().map_err(failing)?;
        tx.set_durability(Durability::None).map_err(failing)?;
        {
            let mut table = tx.open_table(KV).map_err(failing)?;
            for write in &writes {
                match write {
                    KvWrite::Put { key, value } => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(failing)?;
                    }
                    KvWrite::Delete { key } => {
                        table.remove(key.as_slice()).map_err(failing)?;
                    }
                }
            }
        }
        tx.commit().map_err(failing)
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// strictly after `start_after` if given.
    pub(super) fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<kv::Entry>, Error> {
        let tx = self.db.begin_read().map_err(failing)?;
        let table = tx.open_table(KV).map_err(failing)?;
        let range = table
            .range::<&[u8]>((kv::scan_start(prefix, start_after), Bound::Unbounded))
            .map_err(failing)?
            .map(|entry| {
                let (k, v) = entry.map_err(failing)?;
                Ok((k.value().to_vec(), v.value().to_vec()))
            });
        kv::scan_take(range, prefix, limit)
    }
}
