//! Unit tests of the storage plumbing that need no server.

use super::sql::{params, Param};

/// The schema statements of a migration (tables, indexes, column changes),
/// comments and whitespace removed, the one spelling that must differ
/// (an auto-incrementing key) made common. Triggers and functions are the
/// dialect-specific part and are left out.
fn schema_statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    without_comments
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| {
            [
                "CREATE TABLE",
                "CREATE INDEX",
                "CREATE UNIQUE INDEX",
                "ALTER TABLE",
                "DROP INDEX",
            ]
            .iter()
            .any(|start| s.starts_with(start))
        })
        .map(|s| {
            s.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "SERIAL KEY")
                .replace("BIGSERIAL PRIMARY KEY", "SERIAL KEY")
        })
        .collect()
}

/// The two dialects' migrations create the same tables, columns and
/// indexes, file by file: only triggers (and their functions) differ.
#[test]
fn sqlite_and_postgres_migrations_define_the_same_schema() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let files = |dialect: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(dialect))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let sqlite = files("sqlite");
    assert_eq!(
        sqlite,
        files("postgres"),
        "the same migrations in both dialects"
    );
    assert!(!sqlite.is_empty());
    for name in &sqlite {
        let read = |dialect: &str| std::fs::read_to_string(dir.join(dialect).join(name)).unwrap();
        let (lite, pg) = (
            schema_statements(&read("sqlite")),
            schema_statements(&read("postgres")),
        );
        assert!(!lite.is_empty(), "{name} defines schema");
        assert_eq!(lite, pg, "{name}: the schema statements differ");
    }
}

#[test]
fn schema_statements_see_a_changed_column() {
    let a = schema_statements("CREATE TABLE t (a TEXT); -- x\nCREATE TRIGGER z ...;");
    let b = schema_statements("CREATE TABLE t (a  BIGINT);");
    assert_eq!(a, ["CREATE TABLE t (a TEXT)"]);
    assert_ne!(a, b);
}

#[test]
fn params_keep_their_order_and_kinds() {
    let id = String::from("r1");
    let missing: Option<String> = None;
    let p: [Param<'_>; 5] = params![&id, 7, true, &missing, Some("x")];
    assert_eq!(
        p,
        [
            Param::Text(Some("r1")),
            Param::Int(Some(7)),
            Param::Bool(true),
            Param::Text(None),
            Param::Text(Some("x")),
        ]
    );
}
