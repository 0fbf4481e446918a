//! The reference tables in docs/ against the code: every flag a subcommand accepts is documented in its
//! section, every flag a section documents exists, and every metric a component exports is listed in its
//! docs and nothing more. Flags come from the real binary's `--help`; metrics from each component's
//! registry as `/metrics` encodes it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

mod exposition;

/// Flags every subcommand takes (documented once, in the README), and clap's own.
const GLOBAL_FLAGS: [&str; 4] = ["--log-format", "--log-level", "--help", "--version"];

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the section starting at the heading line `heading`, up to the next heading of the same or
/// a higher level.
fn section(text: &str, heading: &str) -> String {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = text.lines().skip_while(|l| l.trim_end() != heading);
    assert!(
        lines.next().is_some(),
        "heading {heading:?} not found in the docs"
    );
    lines
        .take_while(|l| {
            let hashes = l.chars().take_while(|c| *c == '#').count();
            !(hashes > 0 && hashes <= level && l.chars().nth(hashes) == Some(' '))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `--long` and `-s` option named in `text`.
/// Lines that show a `kubectl` command are skipped: their options are kubectl's.
fn options_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ours: Vec<&str> = text.lines().filter(|l| !l.contains("kubectl")).collect();
    let bytes: Vec<char> = ours.join("\n").chars().collect();
    for (i, c) in bytes.iter().enumerate() {
        if *c != '-' || (i > 0 && (bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '-')) {
            continue;
        }
        let rest: String = bytes[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '-')
            .collect();
        let long = rest.starts_with("--") && rest.len() > 3;
        let short = !rest.starts_with("--") && rest.len() == 2 && rest.as_bytes()[1].is_ascii_alphabetic();
        if long || short {
            found.insert(rest.trim_end_matches('-').to_string());
        }
    }
    found
}

/// `(short, long)` of every option of `muster-exchange <subcommand>`, read from its `--help`.
fn options_of(subcommand: &str) -> Vec<(Option<String>, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_muster-exchange"))
        .args([subcommand, "--help"])
        .output()
        .expect("run muster-exchange");
    assert!(output.status.success(), "{subcommand} --help failed");
    let help = String::from_utf8(output.stdout).expect("utf-8 help");
    help.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            if !line.starts_with('-') {
                return None;
            }
            let head = line.split("  ").next().unwrap_or(line);
            let mut short = None;
            let mut long = None;
            for word in head.split([',', ' ']) {
                if word.starts_with("--") {
                    let name: String = word
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    long = Some(name);
                } else if word.len() == 2 && word.starts_with('-') {
                    short = Some(word.to_string());
                }
            }
            long.map(|l| (short, l))
        })
        .filter(|(_, long)| !GLOBAL_FLAGS.contains(&long.as_str()))
        .collect()
}

fn check_flags(subcommand: &str, doc_name: &str, heading: &str) {
    let documented = options_in(&section(&doc(doc_name), heading));
    let accepted = options_of(subcommand);
    assert!(!accepted.is_empty(), "{subcommand}: no options read from --help");
    let undocumented: Vec<_> = accepted
        .iter()
        .filter(|(short, long)| {
            !documented.contains(long) && !short.as_ref().is_some_and(|s| documented.contains(s))
        })
        .map(|(_, long)| long.clone())
        .collect();
    assert!(
        undocumented.is_empty(),
        "`muster-exchange {subcommand}` accepts {undocumented:?}, which docs/{doc_name} ({heading}) does not document"
    );
    let known: BTreeSet<String> = accepted
        .iter()
        .flat_map(|(short, long)| short.iter().cloned().chain([long.clone()]))
        .chain(GLOBAL_FLAGS.iter().map(|s| s.to_string()))
        .collect();
    let unknown: Vec<_> = documented.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "docs/{doc_name} ({heading}) documents {unknown:?}, which `muster-exchange {subcommand}` does not accept"
    );
}

#[test]
fn webhook_flags_are_documented_and_exist() {
    check_flags("webhook", "webhook.md", "## `muster-exchange webhook` flags");
}

#[test]
fn inject_flags_are_documented_and_exist() {
    check_flags("inject", "webhook.md", "## `muster-exchange inject`");
}

#[test]
fn sidecar_flags_are_documented_and_exist() {
    check_flags("sidecar", "sidecar.md", "## Running it");
}

#[test]
fn controller_flags_are_documented_and_exist() {
    check_flags("controller", "controller.md", "## Flags");
}

#[test]
fn diagnose_flags_are_documented_and_exist() {
    check_flags("diagnose", "controller.md", "## `muster-exchange diagnose`");
}

#[test]
fn validate_flags_are_documented_and_exist() {
    check_flags("validate", "validation.md", "### `muster-exchange validate`");
}

/// Metric names (without the component prefix, counters with `_total`) of an exposition.
fn exported(exposition: &str, prefix: &str) -> BTreeSet<String> {
    exposition::families(exposition)
        .into_iter()
        .filter_map(|(name, kind)| {
            let name = name.strip_prefix(prefix)?;
            Some(match kind.as_str() {
                "counter" => format!("{name}_total"),
                _ => name.to_string(),
            })
        })
        .collect()
}

/// The metric names a docs section lists: the first backticked word of each table row or list item,
/// without its `{labels}`.
fn documented_metrics(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("| `") || l.starts_with("- `"))
        .filter_map(|l| l.split('`').nth(1))
        .map(|m| m.split('{').next().unwrap_or(m).to_string())
        .collect()
}

fn check_metrics(exposition: &str, prefix: &str, doc_name: &str, heading: &str) {
    let code = exported(exposition, prefix);
    assert!(!code.is_empty(), "no {prefix}* metric exported");
    let docs = documented_metrics(&section(&doc(doc_name), heading));
    let missing: Vec<_> = code.difference(&docs).collect();
    assert!(
        missing.is_empty(),
        "{prefix}*: {missing:?} exported but not listed in docs/{doc_name} ({heading})"
    );
    let gone: Vec<_> = docs.difference(&code).collect();
    assert!(
        gone.is_empty(),
        "docs/{doc_name} ({heading}) lists {gone:?}, which the code does not export"
    );
}

#[test]
fn webhook_metrics_are_documented_and_exist() {
    let [_, webhook, _] = exposition::expositions();
    check_metrics(
        &webhook,
        "muster_exchange_webhook_",
        "webhook.md",
        "## Metrics (`muster_exchange_webhook_*`)",
    );
}

#[test]
fn sidecar_metrics_are_documented_and_exist() {
    let [_, _, sidecar] = exposition::expositions();
    check_metrics(&sidecar, "muster_exchange_sidecar_", "sidecar.md", "## Metrics");
}

#[test]
fn controller_metrics_are_documented_and_exist() {
    let [controller, _, _] = exposition::expositions();
    check_metrics(
        &controller,
        "muster_exchange_controller_",
        "controller.md",
        "## Metrics (prefix `muster_exchange_controller_`)",
    );
}

#[test]
fn the_parsers_see_what_they_should() {
    let text =
        "## A\n\n| `--one` | x |\nuse `-f` or --two-words; not a-b or x--y\nkubectl get -A\n## B\n`--three`";
    assert_eq!(
        options_in(&section(text, "## A")),
        BTreeSet::from(["--one".to_string(), "-f".to_string(), "--two-words".to_string()])
    );
    let metrics = "- `a_total{x}`: y\n| `b_seconds` (histogram) | z |\n  - `nested` is not a row";
    assert_eq!(
        documented_metrics(metrics),
        BTreeSet::from(["a_total".to_string(), "b_seconds".to_string()])
    );
    let exposition = "# TYPE p_a counter\n# TYPE p_b gauge\n# TYPE q_c counter\n";
    assert_eq!(
        exported(exposition, "p_"),
        BTreeSet::from(["a_total".to_string(), "b".to_string()])
    );
}
