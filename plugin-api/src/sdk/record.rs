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

//! JSON records in a plugin's store: read one ([`Store::get_json`]), write
//! one ([`Store::put_json`], or [`Write::put_json`] inside a batch of
//! [`Store::write`]) and parse a listing page ([`Page::records`]).
//!
//! A record that fails to encode or parse is reported by its key, never by
//! its contents: a record may hold what must not reach a log or a response.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::error::Category;

use super::{Error, Page, Store, Write};

/// Why a JSON record could not be written or read. It names the record's
/// key and where parsing stopped, never the record's contents; as an
/// [`Error`] it is `internal` (500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The value has no JSON form (e.g. a map with non-string keys).
    #[error("record {key} cannot be encoded as JSON")]
    Unencodable {
        /// The record's store key (lossy UTF-8).
        key: String,
    },
    /// The stored bytes are not the JSON of the expected type.
    #[error("record {key} is unreadable: {what} at line {line}, column {column}")]
    Unreadable {
        /// The record's store key (lossy UTF-8).
        key: String,
        /// `syntax`, `data` (well-formed JSON of another shape) or `eof`.
        what: &'static str,
        /// Line of the fault in the stored JSON.
        line: usize,
        /// Column of the fault in the stored JSON.
        column: usize,
    },
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        Error::internal(e.to_string())
    }
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Encodes `value` as the JSON record stored under `key`.
fn encode<T: Serialize>(key: &[u8], value: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(value).map_err(|_| RecordError::Unencodable { key: key_text(key) })
}

/// Parses the JSON record stored under `key`. serde's own message is
/// dropped: it may quote the record's contents.
fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, RecordError> {
    serde_json::from_slice(bytes).map_err(|e| RecordError::Unreadable {
        key: key_text(key),
        what: match e.classify() {
            Category::Io => "io",
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
        },
        line: e.line(),
        column: e.column(),
    })
}

impl Write {
    /// A put of `value` as a JSON record under `key`, to combine with other
    /// writes in one atomic [`Store::write`] (or [`Store::write_volatile`]).
    pub fn put_json<T: Serialize>(key: impl AsRef<[u8]>, value: &T) -> Result<Write, RecordError> {
        let key = key.as_ref();
        Ok(Write::Put(key.to_vec(), encode(key, value)?))
    }
}

impl Store<'_> {
    /// The JSON record under `key`, if there is one. A record that does
    /// not parse as `T` is a [`RecordError::Unreadable`] (as an internal
    /// [`Error`]).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, Error> {
        let key = key.as_ref();
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
        }
    }

    /// Stores `value` as a JSON record under `key`, durably (a
    /// [`Store::write`] of one [`Write::put_json`]).
    pub async fn put_json<T: Serialize>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), Error> {
        self.write(vec![Write::put_json(key, value)?]).await
    }
}

impl Page {
    /// The page's entries parsed as JSON records of `T`, in key order; the
    /// first that does not parse fails the whole page, named by its key.
    pub fn records<T: DeserializeOwned>(&self) -> Result<Vec<T>, RecordError> {
        self.entries.iter().map(|(k, v)| decode(k, v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Note {
        text: String,
    }

    #[test]
    fn a_put_json_write_holds_the_json_under_its_key() {
        let Write::Put(key, value) =
            Write::put_json("note/a", &Note { text: "hi".into() }).unwrap()
        else {
            panic!("a put");
        };
        assert_eq!(key, b"note/a");
        assert_eq!(value, br#"{"text":"hi"}"#);
    }

    #[test]
    fn a_map_with_non_string_keys_is_unencodable_and_named() {
        let map = std::collections::HashMap::from([((1, 2), 3)]);
        let e = Write::put_json("m", &map).unwrap_err();
        assert_eq!(e, RecordError::Unencodable { key: "m".into() });
    }

    #[test]
    fn page_records_parse_in_order() {
        let page = Page {
            entries: vec![
                (b"note/a".to_vec(), br#"{"text":"one"}"#.to_vec()),
                (b"note/b".to_vec(), br#"{"text":"two"}"#.to_vec()),
            ],
            next_cursor: None,
        };
        let notes: Vec<Note> = page.records().unwrap();
        assert_eq!(notes[1], Note { text: "two".into() });
    }

    #[test]
    fn an_unreadable_record_names_its_key_and_never_its_contents() {
        let page = Page {
            entries: vec![
                (b"note/a".to_vec(), br#"{"text":"fine"}"#.to_vec()),
                (b"note/b".to_vec(), br#"{"text":12345678}"#.to_vec()),
            ],
            next_cursor: None,
        };
        let e = page.records::<Note>().unwrap_err();
        assert!(matches!(
            &e,
            RecordError::Unreadable { key, what: "data", line: 1, .. } if key == "note/b"
        ));
        let message = Error::from(e).message;
        assert!(message.contains("note/b"), "{message}");
        assert!(!message.contains("12345678"), "{message}");
        // serde's own message would have quoted the value.
        let serde = serde_json::from_slice::<Note>(br#"{"text":12345678}"#).unwrap_err();
        assert!(serde.to_string().contains("12345678"));
    }
}
