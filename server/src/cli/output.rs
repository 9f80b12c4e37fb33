//! Everything the CLI prints on standard output: JSON for scripts, text and
//! aligned tables for people.
//!
//! Writes report errors instead of panicking like `println!`, and a reader
//! that went away (`assent-server user list | head -1`) surfaces as
//! [`StdoutClosed`], which the binary treats as a quiet, successful end.

use std::io::{self, IsTerminal, Write};

use anyhow::Context;
use serde_json::Value;

/// The reader of standard output closed it: nothing is left to say to anyone.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Whether `error` comes from writing to a closed standard output.
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.downcast_ref::<StdoutClosed>().is_some()
}

/// Pretty-printed JSON and a newline.
pub fn json(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encoding JSON output")?;
    self::text(&text)
}

/// Text, ended by a newline.
pub fn text(text: &str) -> anyhow::Result<()> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        bytes.push(b'\n');
    }
    write_stdout(&bytes)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|error| {
            if error.kind() == io::ErrorKind::BrokenPipe {
                anyhow::Error::new(StdoutClosed)
            } else {
                anyhow::Error::new(error).context("writing to standard output")
            }
        })
}

/// Whether to style output: only for a terminal, and not under `NO_COLOR`.
fn styled() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Columns as wide as their widest cell, two spaces apart.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of as many cells as the header has.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows
            .push(cells.iter().map(|cell| printable(cell)).collect());
    }

    pub fn print(&self) -> anyhow::Result<()> {
        write_stdout(self.render(styled()).as_bytes())
    }

    /// The table as lines; with `bold_header`, the header in bold (ANSI).
    fn render(&self, bold_header: bool) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let header_line = line(&header, &widths);
        if bold_header {
            out.push_str(&format!("\x1b[1m{header_line}\x1b[0m\n"));
        } else {
            out.push_str(&header_line);
            out.push('\n');
        }
        for row in &self.rows {
            out.push_str(&line(row, &widths));
            out.push('\n');
        }
        out
    }
}

/// One line of padded cells, without trailing spaces.
fn line(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        if i + 1 < cells.len() {
            let pad = width - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.truncate(line.trim_end().len());
    line
}

/// A cell never breaks a line or carries terminal control sequences: control
/// characters are shown escaped (`\n`, `\u{1b}`).
fn printable(cell: &str) -> String {
    let mut out = String::with_capacity(cell.len());
    for c in cell.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut table = Table::new(&["SUB", "EMAIL", "NAME"]);
        table.row(vec![
            "auth0|a-rather-long-subject-identifier-0123456789".into(),
            "-".into(),
            "Ann".into(),
        ]);
        table.row(vec!["bob".into(), "bob@example.com".into(), "-".into()]);
        table
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let text = table().render(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let email_column = lines[1].find("-  ").unwrap();
        assert_eq!(lines[0].find("EMAIL"), Some(email_column));
        assert_eq!(lines[2].find("bob@"), Some(email_column));
        let name_column = lines[2].find("  -").unwrap() + 2;
        assert_eq!(lines[0].find("NAME"), Some(name_column));
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{text}");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["ééé".into(), "x".into()]);
        table.row(vec!["abc".into(), "y".into()]);
        let text = table.render(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "ééé  x");
        assert_eq!(lines[2], "abc  y");
    }

    #[test]
    fn only_a_styled_table_has_escape_codes_and_cells_never_do() {
        let mut table = Table::new(&["NAME"]);
        table.row(vec!["evil\u{1b}[31m\nname".into()]);
        let plain = table.render(false);
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        assert_eq!(plain.lines().nth(1), Some("evil\\u{1b}[31m\\nname"));
        let bold = table.render(true);
        assert!(bold.starts_with("\x1b[1mNAME\x1b[0m\n"));
        assert_eq!(bold.matches('\u{1b}').count(), 2);
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(&["ID", "NAME"]).render(false), "ID  NAME\n");
    }
}
