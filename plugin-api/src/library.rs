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

//! Opening a plugin library and checking it against this plugin-api: the
//! host does it when it starts, the installer before it installs a fetched
//! library, so both refuse an incompatible one with the same line.

use std::path::{Path, PathBuf};

use abi_stable::library::lib_header_from_path;

use crate::abi::PluginModRef;

/// Why a library was refused, in one line.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The library loaded but its root module's layout differs from this
    /// plugin-api's (built against another version).
    #[error(
        "plugin {name:?} refused: {path} was built against an incompatible plugin-api: {summary}"
    )]
    Incompatible {
        /// The plugin entry's name in host.toml.
        name: String,
        /// The library file.
        path: PathBuf,
        /// abi_stable's account of the first difference.
        summary: String,
    },
    /// The library could not be loaded at all (missing file, not a
    /// library, no root module).
    #[error("plugin {name:?} refused: cannot load {path}: {reason}")]
    Load {
        /// The plugin entry's name in host.toml.
        name: String,
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
}

/// Loads the library at `load_from` and checks its root module's layout
/// against this plugin-api. `path` is the file messages name (the host
/// loads a sealed copy through `/proc/self/fd/N`). The library stays loaded
/// for the life of the process (abi_stable never unloads).
pub fn open_library(
    name: &str,
    path: &Path,
    load_from: &Path,
) -> Result<PluginModRef, LibraryError> {
    let header = lib_header_from_path(load_from).map_err(|e| refusal(name, path, e))?;
    header
        .init_root_module::<PluginModRef>()
        .map_err(|e| refusal(name, path, e))
}

fn refusal(name: &str, path: &Path, error: abi_stable::library::LibraryError) -> LibraryError {
    match error {
        abi_stable::library::LibraryError::AbiInstability(details) => LibraryError::Incompatible {
            name: name.into(),
            path: path.into(),
            summary: summarise_abi_instability(&details.to_string()),
        },
        other => LibraryError::Load {
            name: name.into(),
            path: path.into(),
            reason: one_line(&other.to_string()),
        },
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reduces abi_stable's layout report (often over a thousand lines) to the
/// mismatching type, where it sits, and the first expected/found pair.
///
/// The report is a list of sections, each opening with "<n> error(s)",
/// then the field path from the root module down to the mismatching type,
/// then both layouts, then one "Error:" entry per difference. The first
/// section with n > 0 is the one that matters.
pub fn summarise_abi_instability(report: &str) -> String {
    let Some(section) = first_failing_section(report) else {
        return truncate(&one_line(report), 300);
    };
    let (trace, rest) = section
        .split_once("Layout of expected type:")
        .unwrap_or((section, ""));
    let path: Vec<&str> = tokens_after(trace, "field_name:")
        .filter(|name| name.parse::<usize>().is_err() && !name.starts_with("__"))
        .collect();
    let ty = tokens_after(rest, "type:").next().unwrap_or("?");
    let module = tokens_after(rest, "mod:").next().unwrap_or("?");
    let mut differences = rest.split("Error:").skip(1);
    let first = differences
        .next()
        .map(describe_difference)
        .unwrap_or_default();
    let more = differences.count();
    let mut summary = format!("type {ty} ({module}) differs: {first}");
    if more > 0 {
        summary.push_str(&format!(" (and {more} more difference(s))"));
    }
    if !path.is_empty() {
        let tail = &path[path.len().saturating_sub(4)..];
        summary.push_str(&format!(", reached through field {}", tail.join(".")));
    }
    truncate(&summary, 400)
}

fn first_failing_section(report: &str) -> Option<&str> {
    let marks: Vec<usize> = report.match_indices("error(s)").map(|(i, _)| i).collect();
    marks.iter().enumerate().find_map(|(n, &at)| {
        let count: String = report[..at]
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        let failing = !count.is_empty() && count.chars().any(|c| c != '0');
        let end = marks.get(n + 1).copied().unwrap_or(report.len());
        failing.then(|| &report[at..end])
    })
}

/// The whitespace-delimited words that follow each `marker`.
fn tokens_after<'a>(text: &'a str, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.split(marker)
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
}

/// "unexpected field Expected: field_name:a type:X size:.. Found: .." ->
/// "unexpected field: expected `a: X`, found `b: Y`".
fn describe_difference(entry: &str) -> String {
    let (what, rest) = entry.split_once("Expected:").unwrap_or((entry, ""));
    let (expected, found) = rest.split_once("Found:").unwrap_or((rest, ""));
    let item = |text: &str| {
        let name = tokens_after(text, "field_name:").next();
        let ty = tokens_after(text, "type:").next();
        match (name, ty) {
            (Some(n), Some(t)) => format!("{n}: {t}"),
            _ => truncate(&one_line(text), 60),
        }
    };
    format!(
        "{}: expected `{}`, found `{}`",
        one_line(what),
        item(expected),
        item(found)
    )
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}
