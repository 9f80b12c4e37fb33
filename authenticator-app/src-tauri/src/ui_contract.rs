//! The window (`ui/app.js`, `ui/index.html`) and this crate agree on the
//! strings they exchange: every event the window listens to is one the app
//! emits, every error kind it branches on is an [`ErrorKind`], every choice
//! it sends to `decide` is a [`Decision`], every connection state it
//! compares with is a [`Connection`], every link type a [`LinkType`] and
//! every state of a code account a [`CodeState`]. Renaming one side only
//! fails here.
//!
//! The files are read at compile time, so editing them rebuilds this test.

use std::collections::BTreeSet;

use assent_shared::protocol::Decision;
use serde::de::DeserializeOwned;

use crate::{
    authenticator::{CodeState, Connection, LinkType},
    error::ErrorKind,
    ui_events,
};

const UI_FILES: &[(&str, &str)] = &[
    ("ui/app.js", include_str!("../../ui/app.js")),
    ("ui/index.html", include_str!("../../ui/index.html")),
];

/// A string literal (`"..."` or `'...'`) at the start of `text`, after
/// spaces.
fn leading_literal(text: &str) -> Option<&str> {
    let text = text.trim_start();
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &text[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// Every string literal in `text`.
fn literals(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['"', '\'']) {
        rest = &rest[start..];
        match leading_literal(rest) {
            Some(literal) => {
                found.push(literal);
                rest = &rest[literal.len() + 2..];
            }
            None => break,
        }
    }
    found
}

fn line_of(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    text[start..end].trim()
}

/// Positions where `needle` occurs in `text` as a whole name (not as the
/// start of a longer one, like `.kindOf`).
fn occurrences(text: &str, needle: &str) -> Vec<usize> {
    text.match_indices(needle)
        .map(|(at, _)| at)
        .filter(|at| {
            !text[at + needle.len()..]
                .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
        .collect()
}

/// The names passed to `listen(...)`. Every call must name its event with a
/// literal, or this test could not check it.
fn listened_events(file: &str, text: &str) -> BTreeSet<String> {
    occurrences(text, "listen(")
        .into_iter()
        .filter(|at| !text[..*at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        .map(|at| {
            let args = &text[at + "listen(".len()..];
            leading_literal(args)
                .unwrap_or_else(|| {
                    panic!(
                        "{file}: this test cannot read the event name of `{}`: name it with a string literal",
                        line_of(text, at)
                    )
                })
                .to_string()
        })
        .collect()
}

/// Where `property` (like `.kind`) is compared with a string literal, and
/// that literal: `x.kind === "a"` (or `!==`, `==`, `!=`).
fn comparisons(text: &str, property: &str) -> Vec<(usize, String)> {
    occurrences(text, property)
        .into_iter()
        .filter_map(|at| {
            let after = text[at + property.len()..].trim_start();
            ["===", "!==", "==", "!="]
                .iter()
                .find_map(|op| after.strip_prefix(op))
                .and_then(leading_literal)
                .map(|value| (at, value.to_string()))
        })
        .collect()
}

/// The values the window branches on through `property`: comparisons, and
/// `["a", "b"].includes(x.kind)`. Any other use of `property` fails, so a
/// new way of branching cannot slip past unchecked.
fn branched_values(file: &str, text: &str, property: &str) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    let mut understood = BTreeSet::new();
    for (at, value) in comparisons(text, property) {
        values.insert(value);
        understood.insert(at);
    }
    for (at, _) in text.match_indices("].includes(") {
        let args_start = at + "].includes(".len();
        let args_end = args_start + text[args_start..].find(')').unwrap_or(0);
        let mentions: Vec<usize> = occurrences(&text[args_start..args_end], property)
            .into_iter()
            .map(|i| args_start + i)
            .collect();
        if mentions.is_empty() {
            continue;
        }
        let list_start = text[..at]
            .rfind('[')
            .expect("an array literal before .includes");
        values.extend(
            literals(&text[list_start + 1..at])
                .into_iter()
                .map(String::from),
        );
        understood.extend(mentions);
    }
    for at in occurrences(text, property) {
        assert!(
            understood.contains(&at),
            "{file}: this test does not understand how `{}` uses `{property}`: compare it with a \
             string literal (=== \"...\") or an array of them (.includes), or teach this test",
            line_of(text, at)
        );
    }
    values
}

/// The literal choices passed to `decide(...)`.
fn decided_choices(text: &str) -> BTreeSet<String> {
    occurrences(text, "decide(")
        .into_iter()
        .filter_map(|at| leading_literal(&text[at + "decide(".len()..]))
        .map(String::from)
        .collect()
}

fn parses_as<T: DeserializeOwned>(value: &str) -> bool {
    serde_json::from_value::<T>(serde_json::Value::String(value.to_string())).is_ok()
}

#[test]
fn the_window_listens_only_to_events_the_app_emits() {
    let mut listened = BTreeSet::new();
    for (file, text) in UI_FILES {
        listened.extend(listened_events(file, text));
    }
    assert!(!listened.is_empty(), "found no listen(...) in the window");
    let unknown: Vec<_> = listened
        .iter()
        .filter(|name| !ui_events::ALL.contains(&name.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the window listens to {unknown:?}, which the app never emits (it emits {:?})",
        ui_events::ALL
    );
}

#[test]
fn every_error_kind_the_window_branches_on_exists() {
    let mut kinds = BTreeSet::new();
    for (file, text) in UI_FILES {
        kinds.extend(branched_values(file, text, ".kind"));
    }
    assert!(!kinds.is_empty(), "found no error kinds in the window");
    let unknown: Vec<_> = kinds
        .iter()
        .filter(|kind| !parses_as::<ErrorKind>(kind))
        .collect();
    assert!(
        unknown.is_empty(),
        "the window branches on error kinds {unknown:?} that ErrorKind does not have"
    );
}

#[test]
fn the_windows_choices_and_connection_states_exist() {
    let (mut choices, mut states) = (BTreeSet::new(), BTreeSet::new());
    for (_, text) in UI_FILES {
        choices.extend(decided_choices(text));
        states.extend(comparisons(text, ".connection").into_iter().map(|(_, s)| s));
    }
    assert!(choices.contains("approved"), "found no decide(...) choices");
    for choice in &choices {
        assert!(
            parses_as::<Decision>(choice),
            "decide({choice:?}) is not a Decision"
        );
    }
    assert!(!states.is_empty(), "found no connection comparisons");
    for state in &states {
        assert!(
            parses_as::<Connection>(state),
            "the window compares with connection {state:?}, which Connection does not have"
        );
    }
}

#[test]
fn the_link_types_and_code_states_the_window_compares_with_exist() {
    let (mut link_types, mut code_states) = (BTreeSet::new(), BTreeSet::new());
    for (file, text) in UI_FILES {
        link_types.extend(branched_values(file, text, ".link_type"));
        code_states.extend(branched_values(file, text, ".code_state"));
    }
    assert!(
        link_types.contains("totp"),
        "found no link type comparisons"
    );
    for link_type in &link_types {
        assert!(
            parses_as::<LinkType>(link_type),
            "the window compares with link type {link_type:?}, which LinkType does not have"
        );
    }
    for state in &code_states {
        assert!(
            parses_as::<CodeState>(state),
            "the window compares with code state {state:?}, which CodeState does not have"
        );
    }
}

#[test]
fn the_scanner_reads_the_forms_the_window_uses() {
    let js = r#"listen("a-b", f); if (e.kind === "x") {} ['y', "z"].includes(e && e.kind); decide("approved");"#;
    assert_eq!(listened_events("t.js", js), BTreeSet::from(["a-b".into()]));
    assert_eq!(
        branched_values("t.js", js, ".kind"),
        BTreeSet::from(["x".into(), "y".into(), "z".into()])
    );
    assert_eq!(decided_choices(js), BTreeSet::from(["approved".into()]));
    let unreadable =
        std::panic::catch_unwind(|| branched_values("t.js", "switch (e.kind) {}", ".kind"));
    assert!(
        unreadable.is_err(),
        "an unrecognized use of .kind must fail"
    );
}
