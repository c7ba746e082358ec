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

//! How answers are printed: aligned tables and `label  value` lines for a
//! person, the node's JSON for a script (`--json`), progress on a terminal
//! only.
//!
//! Every text that came from a node is printed through [`visible`]: a
//! hostile node could otherwise move the cursor, rewrite earlier lines or
//! reverse text on the operator's terminal with control and bidi
//! characters.

use std::{io::IsTerminal, time::Duration};

use serde_json::Value;

use super::{CliError, node_api::NodeApi};

/// The form of a command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables and lines for a person.
    Human,
    /// The node's answer as JSON, for scripts.
    Json,
}

/// `text` with control characters and bidi controls written as `\u{..}`.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value as one visible cell: strings bare, `-` for null or absent,
/// lists joined with commas, anything else as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => visible(s),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => visible(&other.to_string()),
    }
}

/// A Unix time in milliseconds as RFC 3339 (UTC, seconds).
pub fn time_ms(value: &Value) -> String {
    match value.as_u64() {
        Some(ms) => {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        }
        None => cell(value),
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (cells already [`visible`]).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text; `(none)` for no rows.
    pub fn render(&self) -> String {
        if self.rows.is_empty() {
            return "(none)\n".into();
        }
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain([self.header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, cell) in cells.enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                text.push_str(cell);
                if i + 1 < widths.len() {
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            text.trim_end().to_string() + "\n"
        };
        let mut text = line(&mut self.header.iter().copied());
        for row in &self.rows {
            text.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        text
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// `label  value` lines, labels aligned; values already [`visible`].
pub fn fields(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(label, value)| format!("{label:width$}  {value}\n"))
        .collect()
}

/// Prints the named fields of `object`, each `(label, key)`, with
/// [`cell`]; keys ending in `_at`/`_ms` as times.
pub fn print_object(object: &Value, keys: &[(&str, &str)]) {
    let lines: Vec<(&str, String)> = keys
        .iter()
        .map(|(label, key)| {
            let value = &object[*key];
            let text = match key.ends_with("_at") || key.ends_with("_ms") {
                true => time_ms(value),
                false => cell(value),
            };
            (*label, text)
        })
        .collect();
    print!("{}", fields(&lines));
}

/// Prints an answer: as JSON, or the `(label, key)` fields of it.
pub fn print_answer(format: Format, answer: &Value, keys: &[(&str, &str)]) {
    match format {
        Format::Json => print_json(answer),
        Format::Human => print_object(answer, keys),
    }
}

/// Prints `value` as indented JSON.
pub fn print_json(value: &Value) {
    println!("{value:#}");
}

/// Prints a list: JSON as `{key: [...]}`, or a table of `columns`, each
/// `(header, key)` of an item ([`time_ms`] for keys ending in `_at`/`_ms`).
pub fn print_list(format: Format, key: &str, items: Vec<Value>, columns: &[(&'static str, &str)]) {
    if format == Format::Json {
        print_json(&serde_json::json!({ key: items }));
        return;
    }
    let mut table = Table::new(&columns.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    for item in &items {
        table.row(
            columns
                .iter()
                .map(|(_, k)| match k.ends_with("_at") || k.ends_with("_ms") {
                    true => time_ms(&item[*k]),
                    false => cell(&item[*k]),
                })
                .collect(),
        );
    }
    table.print();
}

/// Fetches every item of the paged list at `mount` + `path` and prints it.
pub async fn list_command(
    node: &NodeApi,
    format: Format,
    plugin: &str,
    path: &str,
    key: &str,
    columns: &[(&'static str, &str)],
) -> Result<(), CliError> {
    let mount = node.mount(plugin).await?;
    let items = node.list(&format!("{mount}{path}"), key).await?;
    print_list(format, key, items, columns);
    Ok(())
}

/// Lines for the peers an operation did not reach (`undelivered`: `[{id,
/// error}]`), printed on standard error: the operation went ahead.
pub fn warn_undelivered(answer: &Value) {
    for miss in answer["undelivered"].as_array().into_iter().flatten() {
        eprintln!(
            "warning: not delivered to {}: {} (it is sent again when the node retries)",
            cell(&miss["id"]),
            cell(&miss["error"])
        );
    }
}

/// A spinner with `message` on a terminal's standard error; nothing when
/// standard error is not a terminal (a script, a log).
pub fn spinner(message: String) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_text_cannot_drive_the_terminal() {
        assert_eq!(visible("ok"), "ok");
        assert_eq!(visible("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(visible("x\ny\r"), "x\\u{a}y\\u{d}");
        assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(cell(&serde_json::json!(["a", "b\u{7}"])), "a,b\\u{7}");
    }

    #[test]
    fn tables_align_and_say_none() {
        let mut table = Table::new(&["NAME", "STATUS"]);
        assert_eq!(table.render(), "(none)\n");
        table.row(vec!["a-long-name".into(), "ready".into()]);
        table.row(vec!["b".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "NAME         STATUS\na-long-name  ready\nb            -\n"
        );
        assert_eq!(time_ms(&serde_json::json!(0)), "1970-01-01T00:00:00Z");
    }
}
