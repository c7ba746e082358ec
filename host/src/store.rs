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
//! write is durable (fsync) when it returns.
//!
//! Writes are group-committed: the batches of writers that arrive while a
//! commit is running are applied together in the next transaction, so under
//! concurrency one fsync serves many writers instead of each paying its own.
//! A group is one transaction: if it fails (an I/O error), every writer in
//! it gets the error and none of their batches is applied.
//!
//! [`Namespace::write_volatile`] is for records that a crash may lose
//! because they can be rebuilt (the inbox's "processed" marks: an envelope
//! whose mark is lost is processed again, and processing is idempotent). Such
//! a batch is visible at once and joins the next group like any other; a
//! group of volatile batches only is committed without an fsync, and becomes
//! durable with the next durable commit (redb commits are ordered, so a
//! crash keeps a prefix of them).

use std::{
    collections::HashMap,
    mem,
    ops::Bound,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex},
};

use milagro_plugin_api::kv;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// redb's own page cache. Its default (1 GiB) lets a node's memory grow
/// with its database up to that size: a soak of 6,000 orders and their
/// redemptions grew the beneficiary's RSS from 36 to 94 MB. The hot pages of
/// a busy node (recent envelopes, open orders) fit in 16 MiB, and the
/// kernel's page cache still holds the rest of the file.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
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
    commits: Arc<GroupCommit>,
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
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        // Create the table up front so readers never race its creation.
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(KV).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Store {
            db: Arc::new(db),
            commits: Arc::default(),
        })
    }

    /// The namespace `name`; names must not contain NUL.
    pub fn namespace(&self, name: &str) -> Namespace {
        assert!(!name.contains('\0'), "namespace names never contain NUL");
        Namespace {
            db: Arc::clone(&self.db),
            commits: Arc::clone(&self.commits),
            prefix: [name.as_bytes(), b"\0"].concat(),
        }
    }
}

/// A consistent view of the whole database as it was when it was taken
/// (a redb read transaction): writes committed after it are not seen, and
/// writers are not held up by it. What an online backup reads.
pub struct Snapshot {
    tx: redb::ReadTransaction,
}

impl Store {
    /// Takes a [`Snapshot`] of every namespace at once.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            tx: self.db.begin_read().map_err(db_err)?,
        })
    }

    /// Creates a new database at `path` holding `entries` (full keys, as
    /// [`Snapshot::for_each`] gives them), committed in batches and
    /// durable when this returns. Fails if `path` exists.
    pub fn create_from<E: From<StoreError>>(
        path: &Path,
        entries: impl Iterator<Item = Result<Entry, E>>,
    ) -> Result<u64, E> {
        if path.exists() {
            return Err(StoreError::Open {
                path: path.to_owned(),
                message: "it already exists".into(),
            }
            .into());
        }
        let store = Store::open(path)?;
        let mut count = 0u64;
        let mut entries = entries.peekable();
        while entries.peek().is_some() {
            let mut tx = store.db.begin_write().map_err(db_err)?;
            // Only the last commit needs the fsync: redb commits are
            // ordered, and a crash leaves a partial database that the
            // restore (which stages it) throws away.
            tx.set_durability(Durability::None).map_err(db_err)?;
            {
                let mut table = tx.open_table(KV).map_err(db_err)?;
                for entry in entries.by_ref().take(RESTORE_BATCH) {
                    let (key, value) = entry?;
                    table
                        .insert(key.as_slice(), value.as_slice())
                        .map_err(db_err)?;
                    count += 1;
                }
            }
            tx.commit().map_err(db_err)?;
        }
        // An empty durable commit makes every batch before it durable.
        let tx = store.db.begin_write().map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(count)
    }
}

/// Entries per transaction of [`Store::create_from`].
const RESTORE_BATCH: usize = 4096;

impl Snapshot {
    /// Calls `visit` with every entry (full key, value) in key order;
    /// stops at its first error.
    pub fn for_each<E: From<StoreError>>(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let table = self.tx.open_table(KV).map_err(db_err)?;
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            visit(k.value(), v.value())?;
        }
        Ok(())
    }

    /// The value of `key` in namespace `namespace`, as of the snapshot.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.tx.open_table(KV).map_err(db_err)?;
        let full = [namespace.as_bytes(), b"\0", key].concat();
        let value = table.get(full.as_slice()).map_err(db_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }
}

/// A batch with full keys, waiting for its commit.
struct Batch {
    writes: Vec<Write>,
    /// Whether the writer needs it on disk when `write` returns.
    durable: bool,
    /// Apply the batch only if this key is absent, checked in the
    /// transaction that applies it (after the batches before it).
    unless_present: Option<Vec<u8>>,
}

/// A batch's outcome: `Some(value)` when its `unless_present` key held
/// `value` and nothing of the batch was written.
type Outcome = Result<Option<Vec<u8>>, StoreError>;

/// The group-commit queue: batches waiting, whether a writer is committing
/// (the leader), and the outcomes of committed batches by ticket.
#[derive(Default)]
struct CommitQueue {
    next_ticket: u64,
    waiting: Vec<(u64, Batch)>,
    committing: bool,
    outcomes: HashMap<u64, Outcome>,
}

#[derive(Default)]
struct GroupCommit {
    queue: Mutex<CommitQueue>,
    committed: Condvar,
}

impl GroupCommit {
    /// Queues `batch` and returns once it is durable (or failed). The writer
    /// that finds no commit running commits everything queued, its own batch
    /// included; the others wait for it, and one of them leads the next.
    fn write(&self, db: &Database, batch: Batch) -> Outcome {
        let mut queue = self.queue.lock().expect("commit queue lock");
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, batch));
        loop {
            if let Some(outcome) = queue.outcomes.remove(&ticket) {
                return outcome;
            }
            if queue.committing {
                queue = self.committed.wait(queue).expect("commit queue lock");
                continue;
            }
            queue.committing = true;
            let group = mem::take(&mut queue.waiting);
            drop(queue);
            let batches: Vec<&Batch> = group.iter().map(|(_, batch)| batch).collect();
            let durable = batches.iter().any(|batch| batch.durable);
            let outcome = commit(db, &batches, durable);
            queue = self.queue.lock().expect("commit queue lock");
            queue.committing = false;
            match outcome {
                Ok(present) => queue.outcomes.extend(
                    group
                        .iter()
                        .zip(present)
                        .map(|((ticket, _), present)| (*ticket, Ok(present))),
                ),
                Err(e) => queue
                    .outcomes
                    .extend(group.iter().map(|(ticket, _)| (*ticket, Err(e.clone())))),
            }
            self.committed.notify_all();
        }
    }
}

/// One write transaction applying `batches` in order; fsynced if `durable`.
/// Returns, per batch, the value that kept it from being applied (its
/// `unless_present` key was there), or `None` if it was applied.
fn commit(
    db: &Database,
    batches: &[&Batch],
    durable: bool,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let mut tx = db.begin_write().map_err(db_err)?;
    if !durable {
        tx.set_durability(Durability::None).map_err(db_err)?;
    }
    let mut present = Vec::with_capacity(batches.len());
    {
        let mut table = tx.open_table(KV).map_err(db_err)?;
        for batch in batches {
            if let Some(guard) = &batch.unless_present
                && let Some(value) = table.get(guard.as_slice()).map_err(db_err)?
            {
                present.push(Some(value.value().to_vec()));
                continue;
            }
            present.push(None);
            for write in &batch.writes {
                match write {
                    Write::Put(k, v) => {
                        table.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
                    }
                    Write::Delete(k) => {
                        table.remove(k.as_slice()).map_err(db_err)?;
                    }
                }
            }
        }
    }
    tx.commit().map_err(db_err)?;
    Ok(present)
}

/// A key prefix of the database that one owner (a plugin instance, the
/// inbox, ...) reads and writes as if it were its own.
#[derive(Clone)]
pub struct Namespace {
    db: Arc<Database>,
    commits: Arc<GroupCommit>,
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
        self.commit(writes, true, None).map(drop)
    }

    /// Applies all writes, durably, only if `key` is absent: the check and
    /// the writes are one transaction, so of two concurrent calls with one
    /// `key` (and writes that put it) only one applies. Returns `Some`
    /// with the value `key` held, and writes nothing, when it was present.
    pub fn write_unless_present(
        &self,
        key: &[u8],
        writes: &[Write],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.commit(writes, true, Some(self.full_key(key)))
    }

    /// Applies all writes or none, visible at once but durable only with
    /// the node's next durable write: a crash before it loses them (see the
    /// module notes for what may use this).
    pub fn write_volatile(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.commit(writes, false, None).map(drop)
    }

    fn commit(
        &self,
        writes: &[Write],
        durable: bool,
        unless_present: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let writes = writes
            .iter()
            .map(|w| match w {
                Write::Put(k, v) => Write::Put(self.full_key(k), v.clone()),
                Write::Delete(k) => Write::Delete(self.full_key(k)),
            })
            .collect();
        self.commits.write(
            &self.db,
            Batch {
                writes,
                durable,
                unless_present,
            },
        )
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
        let after = start_after.map(|a| self.full_key(a));
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(KV).map_err(db_err)?;
        let range = table
            .range::<&[u8]>((
                kv::scan_start(&full_prefix, after.as_deref()),
                Bound::Unbounded,
            ))
            .map_err(db_err)?
            .map(|entry| {
                let (k, v) = entry.map_err(db_err)?;
                Ok((k.value().to_vec(), v.value().to_vec()))
            });
        let mut entries = kv::scan_take(range, &full_prefix, limit)?;
        for (key, _) in &mut entries {
            key.drain(..self.prefix.len());
        }
        Ok(entries)
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
    fn concurrent_writers_are_group_committed_and_each_batch_stays_atomic() {
        let (store, dir) = temp_store("group");
        let ns = store.namespace("g");
        std::thread::scope(|scope| {
            for t in 0..16u8 {
                let ns = ns.clone();
                scope.spawn(move || {
                    for i in 0..40u8 {
                        ns.write(&[
                            Write::Put(vec![b'a', t, i], vec![t, i]),
                            Write::Put(vec![b'b', t, i], vec![i, t]),
                            Write::Delete(vec![b'a', t, i.wrapping_sub(1)]),
                        ])
                        .unwrap();
                        // Durable and visible once write returns.
                        assert_eq!(ns.get(&[b'b', t, i]).unwrap(), Some(vec![i, t]));
                    }
                });
            }
        });
        // Each writer's deletes came after its own earlier puts.
        assert_eq!(ns.scan(b"a", None, usize::MAX).unwrap().len(), 16);
        assert_eq!(ns.scan(b"b", None, usize::MAX).unwrap().len(), 16 * 40);
        drop((ns, store));
        let store = Store::open(&dir.join("db.redb")).unwrap();
        assert_eq!(
            store.namespace("g").get(&[b'a', 3, 39]).unwrap(),
            Some(vec![3, 39])
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn of_concurrent_writes_unless_present_one_key_only_one_applies() {
        let (store, dir) = temp_store("guard");
        let ns = store.namespace("u");
        for round in 0..20u8 {
            let key = vec![b'k', round];
            let applied: Vec<u8> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8u8)
                    .map(|t| {
                        let (ns, key) = (ns.clone(), key.clone());
                        scope.spawn(move || {
                            let writes = [
                                Write::Put(key.clone(), vec![t]),
                                Write::Put(vec![b'w', round, t], vec![t]),
                            ];
                            match ns.write_unless_present(&key, &writes).unwrap() {
                                None => Some(t),
                                Some(held) => {
                                    assert_eq!(held.len(), 1);
                                    None
                                }
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert_eq!(applied.len(), 1, "round {round}: {applied:?}");
            assert_eq!(ns.get(&key).unwrap(), Some(applied.clone()));
            // Nothing of a refused batch was written.
            assert_eq!(ns.scan(&[b'w', round], None, 100).unwrap().len(), 1);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_volatile_write_is_visible_at_once_and_durable_with_the_next_write() {
        let (store, dir) = temp_store("volatile");
        let ns = store.namespace("v");
        ns.write_volatile(&[Write::Put(b"mark".to_vec(), b"1".to_vec())])
            .unwrap();
        assert_eq!(ns.get(b"mark").unwrap(), Some(b"1".to_vec()));
        ns.write(&[Write::Put(b"record".to_vec(), b"2".to_vec())])
            .unwrap();
        drop((ns, store));
        let store = Store::open(&dir.join("db.redb")).unwrap();
        let ns = store.namespace("v");
        assert_eq!(ns.get(b"mark").unwrap(), Some(b"1".to_vec()));
        assert_eq!(ns.get(b"record").unwrap(), Some(b"2".to_vec()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_snapshot_sees_one_instant_and_a_new_database_is_made_from_it() {
        let (store, dir) = temp_store("snapshot");
        let (a, b) = (store.namespace("a"), store.namespace("b"));
        a.write(&[Write::Put(b"k1".to_vec(), b"v1".to_vec())])
            .unwrap();
        b.write_volatile(&[Write::Put(b"mark".to_vec(), Vec::new())])
            .unwrap();
        let snapshot = store.snapshot().unwrap();
        // Written after it: not in it, in either namespace.
        a.write(&[
            Write::Put(b"k2".to_vec(), b"v2".to_vec()),
            Write::Delete(b"k1".to_vec()),
        ])
        .unwrap();
        b.write(&[Write::Delete(b"mark".to_vec())]).unwrap();
        let mut entries = Vec::new();
        snapshot
            .for_each(|k, v| {
                entries.push((k.to_vec(), v.to_vec()));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(
            entries,
            vec![
                (b"a\0k1".to_vec(), b"v1".to_vec()),
                (b"b\0mark".to_vec(), Vec::new())
            ]
        );
        assert_eq!(snapshot.get("a", b"k1").unwrap(), Some(b"v1".to_vec()));
        let copy = dir.join("copy.redb");
        let count = Store::create_from(&copy, entries.clone().into_iter().map(Ok::<_, StoreError>))
            .unwrap();
        assert_eq!(count, 2);
        let restored = Store::open(&copy).unwrap();
        assert_eq!(
            restored.namespace("a").get(b"k1").unwrap(),
            Some(b"v1".to_vec())
        );
        assert_eq!(restored.namespace("a").get(b"k2").unwrap(), None);
        // Never over an existing database.
        assert!(
            Store::create_from(&copy, std::iter::empty::<Result<Entry, StoreError>>()).is_err()
        );
        drop((snapshot, restored));
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
