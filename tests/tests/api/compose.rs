//! The compose file may only pass settings the binaries actually read.

use std::{collections::BTreeSet, fs, path::Path};

/// Upper-case keys of every `environment:` map (and of the shared `x-oms-env`
/// anchor), except the Postgres image's own.
fn compose_env_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut block_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(b) = block_indent
            && indent <= b
        {
            block_indent = None;
        }
        if trimmed == "environment:" || trimmed.starts_with("x-oms-env:") {
            block_indent = Some(indent);
            continue;
        }
        if block_indent.is_some()
            && let Some((key, _)) = trimmed.split_once(':')
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !key.starts_with("POSTGRES_")
        {
            keys.insert(key.to_string());
        }
    }
    keys
}

fn rust_sources(dir: &Path, out: &mut String) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_variable_the_compose_file_passes_is_read_by_a_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compose = fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let keys = compose_env_keys(&compose);
    assert!(
        keys.contains("DATABASE_URL") && keys.contains("OMS_WMS_URL"),
        "parsed {keys:?}"
    );
    let mut sources = String::new();
    for krate in [
        "runtime",
        "db",
        "vendors",
        "orchestrator",
        "activities",
        "api",
        "worker",
        "simulator",
    ] {
        rust_sources(&root.join(krate).join("src"), &mut sources);
    }
    // RUST_LOG is read by tracing-subscriber's EnvFilter, not by our code.
    let unread: Vec<&String> = keys
        .iter()
        .filter(|k| *k != "RUST_LOG" && !sources.contains(&format!("\"{k}\"")))
        .collect();
    assert!(
        unread.is_empty(),
        "docker-compose.yml passes variables no binary reads: {unread:?}"
    );
}

#[test]
fn the_compose_parser_sees_anchored_and_service_variables() {
    let keys = compose_env_keys(
        "x-oms-env: &e\n  A_ONE: x\nservices:\n  s:\n    environment:\n      <<: *e\n      B_TWO: y\n    ports:\n      - \"1:1\"\n",
    );
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["A_ONE", "B_TWO"]);
}
