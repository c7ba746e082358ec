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

//! The template plugin for third-party authors.
//!
//! It is written against the safe layer of `milagro-plugin-api` alone: no
//! `unsafe`, no `R*` types, no async runtime of its own. Copy this crate to
//! start a plugin: a config struct, a list of routes each bound to the
//! method that answers it, and `export_plugin!`.
//!
//! What it serves (under its mount point, `/v1/example` by default):
//! - `GET /greeting?name=..`: a greeting built from its config;
//! - `PUT /notes/{key}`, `GET /notes/{key}`, `GET /notes?limit=&cursor=`:
//!   notes kept as JSON records in the node's database
//!   (`Store::put_json`, `Store::get_json`), listed with cursor paging
//!   (`Route::paged`, `Store::page`).

#![forbid(unsafe_code)]

use milagro_plugin_api::{Error, Host, Plugin, Request, Response, Route};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The plugin's `config` table in host.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Word used by `/greeting`.
    #[serde(default = "default_greeting")]
    pub greeting: String,
}

fn default_greeting() -> String {
    "Hello".into()
}

/// One stored note.
#[derive(Debug, Serialize, Deserialize)]
pub struct Note {
    pub key: String,
    pub text: String,
    pub updated_unix_ms: u64,
}

/// Longest accepted note key, in bytes.
const MAX_KEY_LEN: usize = 128;
const NOTE_PREFIX: &[u8] = b"note/";

pub struct Example {
    config: Config,
    host: Host,
}

impl Plugin for Example {
    type Config = Config;
    const NAME: &'static str = "example";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(config: Config, host: Host) -> Result<Self, Error> {
        if config.greeting.trim().is_empty() {
            return Err(Error::bad_request("greeting must not be empty"));
        }
        host.info(format!(
            "example plugin ready (greeting {:?})",
            config.greeting
        ));
        Ok(Example { config, host })
    }

    fn routes(&self) -> Vec<Route<Self>> {
        let note = json!({"type": "object", "required": ["key", "text", "updated_unix_ms"],
            "properties": {"key": {"type": "string"}, "text": {"type": "string"},
                           "updated_unix_ms": {"type": "integer"}}});
        vec![
            Route::get("/greeting", "greeting", |p: &Self, r| {
                Box::pin(async { p.greeting(r) })
            })
            .summary("A greeting from this plugin's config")
            .query("name", "Who to greet", json!({"type": "string"}))
            .response(
                200,
                "The greeting",
                Some(json!({"type": "object",
                    "properties": {"message": {"type": "string"}}})),
            ),
            Route::put("/notes/{key}", "put_note", |p: &Self, r| {
                Box::pin(p.put_note(r))
            })
            .summary("Store a note")
            .json_body(json!({"type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string"}}}))
            .response(200, "The stored note", Some(note.clone()))
            .response(400, "Bad key or body", None),
            Route::get("/notes/{key}", "get_note", |p: &Self, r| {
                Box::pin(p.get_note(r))
            })
            .summary("Read a note")
            .response(200, "The note", Some(note.clone()))
            .response(404, "No such note", None),
            Route::get("/notes", "list_notes", |p: &Self, r| {
                Box::pin(p.list_notes(r))
            })
            .summary("List notes in key order")
            .paged()
            .response(
                200,
                "A page of notes",
                Some(json!({"type": "object",
                    "properties": {"notes": {"type": "array", "items": note},
                                   "next_cursor": {"type": "string", "nullable": true}}})),
            ),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
}

impl Example {
    fn greeting(&self, request: &Request) -> Result<Response, Error> {
        let name = request
            .query_param("name")
            .unwrap_or_else(|| "world".into());
        Response::json(
            200,
            &json!({ "message": format!("{}, {name}!", self.config.greeting) }),
        )
    }

    async fn put_note(&self, request: &Request) -> Result<Response, Error> {
        let key = note_key(request)?;
        let body: NoteBody = request.json()?;
        let note = Note {
            key: key.to_string(),
            text: body.text,
            updated_unix_ms: self.host.now_unix_ms(),
        };
        self.host.store().put_json(store_key(key), &note).await?;
        Response::json(200, &note)
    }

    async fn get_note(&self, request: &Request) -> Result<Response, Error> {
        let key = note_key(request)?;
        let note: Note = self
            .host
            .store()
            .get_json(store_key(key))
            .await?
            .ok_or_else(|| Error::not_found(format!("no note {key:?}")))?;
        Response::json(200, &note)
    }

    async fn list_notes(&self, request: &Request) -> Result<Response, Error> {
        // `limit` and `cursor` as `Route::paged` documents them; the cursor
        // is the last note's key.
        let page = self.host.store().page(NOTE_PREFIX, request).await?;
        let notes: Vec<Note> = page.records()?;
        Response::json(
            200,
            &json!({ "notes": notes, "next_cursor": page.next_cursor }),
        )
    }
}

fn note_key(request: &Request) -> Result<&str, Error> {
    let key = request.param("key").unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::bad_request(format!(
            "note key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(key)
}

fn store_key(key: &str) -> Vec<u8> {
    [NOTE_PREFIX, key.as_bytes()].concat()
}

milagro_plugin_api::export_plugin!(Example);
