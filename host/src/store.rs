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

//! The node's embedded ACID database (redb), split into namespaces.
//!
//! One ordered key/value table holds every namespace; a namespace is a key
//! prefix (`<name>\0`), so scans and atomic batches stay within it. Every
//! write transaction is durable (fsync) when it returns.

use std::{
    ops::Bound,
    path::{Path, PathBuf},
    sync::Arc,
};

use redb::{Database, ReadableDatabase, TableDefinition};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("database error: {0}")]
    Db(String),
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The database file, shared by every namespace.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write of an atomic batch.
pub enum Write {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        // Create the table up front so readers never race its creation.
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(KV).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Store { db: Arc::new(db) })
    }

    /// The namespace `name`; names must not contain NUL.
    pub fn namespace(&self, name: &str) -> Namespace {
        assert!(!name.contains('\0'), "namespace names never contain NUL");
        Namespace {
            db: Arc::clone(&self.db),
            prefix: [name.as_bytes(), b"\0"].concat(),
        }
    }
}

/// A key prefix of the database that one owner (a plugin instance, the
/// inbox, ...) reads and writes as if it were its own.
#[derive(Clone)]
pub struct Namespace {
    db: Arc<Database>,
    prefix: Vec<u8>,
}

impl Namespace {
    fn full_key(&self, key: &[u8]) -> Vec<u8> {
        [self.prefix.as_slice(), key].concat()
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(KV).map_err(db_err)?;
        let value = table.get(self.full_key(key).as_slice()).map_err(db_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Applies all writes or none, durably.
    pub fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(KV).map_err(db_err)?;
            for w in writes {
                match w {
                    Write::Put(k, v) => {
                        table
                            .insert(self.full_key(k).as_slice(), v.as_slice())
                            .map_err(db_err)?;
                    }
                    Write::Delete(k) => {
                        table.remove(self.full_key(k).as_slice()).map_err(db_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// strictly after `start_after` if given. Keys come back without the
    /// namespace prefix.
    pub fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let full_prefix = self.full_key(prefix);
        let lower = match start_after.map(|a| self.full_key(a)) {
            Some(after) if after >= full_prefix => Bound::Excluded(after),
            _ => Bound::Included(full_prefix.clone()),
        };
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(KV).map_err(db_err)?;
        let range = table
            .range::<&[u8]>((lower.as_ref().map(Vec::as_slice), Bound::Unbounded))
            .map_err(db_err)?;
        let mut out = Vec::new();
        for entry in range {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(db_err)?;
            let Some(key) = k.value().strip_prefix(full_prefix.as_slice()) else {
                break;
            };
            out.push(([prefix, key].concat(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(name: &str) -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!("milagro-store-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.redb");
        let _ = std::fs::remove_file(&path);
        (Store::open(&path).unwrap(), dir)
    }

    #[test]
    fn namespaces_are_isolated_and_scans_page() {
        let (store, dir) = temp_store("ns");
        let a = store.namespace("a");
        let ab = store.namespace("a\u{1}");
        let b = store.namespace("b");
        let puts: Vec<Write> = (0..10u8)
            .map(|i| Write::Put(format!("k/{i}").into_bytes(), vec![i]))
            .collect();
        a.write(&puts).unwrap();
        ab.write(&[Write::Put(b"k/x".to_vec(), vec![1])]).unwrap();
        b.write(&[Write::Put(b"k/0".to_vec(), vec![99])]).unwrap();
        assert_eq!(a.get(b"k/0").unwrap(), Some(vec![0]));
        assert_eq!(b.get(b"k/0").unwrap(), Some(vec![99]));
        assert_eq!(b.get(b"k/1").unwrap(), None);

        let first = a.scan(b"k/", None, 4).unwrap();
        assert_eq!(first.len(), 4);
        let cursor = first.last().unwrap().0.clone();
        let rest = a.scan(b"k/", Some(&cursor), 100).unwrap();
        assert_eq!(rest.len(), 6, "no entries from the neighbouring namespace");
        assert!(rest.iter().all(|(k, _)| k.starts_with(b"k/")));
        // a cursor before the prefix starts at the prefix
        assert_eq!(a.scan(b"k/", Some(b"a"), 100).unwrap().len(), 10);

        a.write(&[
            Write::Delete(b"k/0".to_vec()),
            Write::Put(b"k/0b".to_vec(), vec![]),
        ])
        .unwrap();
        assert_eq!(a.get(b"k/0").unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn data_survives_reopen() {
        let (store, dir) = temp_store("reopen");
        store
            .namespace("n")
            .write(&[Write::Put(b"k".to_vec(), b"v".to_vec())])
            .unwrap();
        drop(store);
        let store = Store::open(&dir.join("db.redb")).unwrap();
        assert_eq!(store.namespace("n").get(b"k").unwrap(), Some(b"v".to_vec()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
