//! The layering docs/architecture.md promises, checked on the source: storage
//! and fan-out never import each other (they share only `event`), and
//! SQLite's types stay inside `store/sqlite/`. A second backend or a bus is
//! then an addition, not a rewrite.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    assert!(!files.is_empty(), "no sources in {}", dir.display());
    files
}

/// The lines of the files under `server/src/<dir>` that mention `needle`,
/// in the code a build ships: what comes before a file's tests module,
/// and no `test_support.rs` (a test-only module).
fn mentions(dir: &str, needle: &str, except: Option<&str>) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in sources(&root.join(dir)) {
        if except.is_some_and(|skip| file.starts_with(root.join(skip))) {
            continue;
        }
        if file.ends_with("test_support.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let shipped = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        for (number, line) in shipped.lines().enumerate() {
            if line.contains(needle) {
                found.push(format!("{}:{}: {line}", file.display(), number + 1));
            }
        }
    }
    found
}

#[test]
fn storage_does_not_import_fan_out() {
    assert_eq!(
        mentions("store", "crate::fanout", None),
        Vec::<String>::new()
    );
}

#[test]
fn fan_out_does_not_import_storage() {
    assert_eq!(
        mentions("fanout", "crate::store", None),
        Vec::<String>::new()
    );
}

#[test]
fn sqlite_stays_in_its_folder() {
    assert_eq!(
        mentions("store", "rusqlite", Some("store/sqlite")),
        Vec::<String>::new()
    );
}
