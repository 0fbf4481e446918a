//! `muster-exchange validate -f FILE|-`: the webhook's MCPServer rules, offline.
//!
//! Output, one line per problem, kubectl-style, on stderr (the verdict per object on stdout):
//! `mcpserver/cluster-a: spec.auth.tokenExchange.connectorId: Required value: ...`, warnings prefixed
//! `Warning:`. A valid token-exchange MCPServer's verdict names its topology (M: Muster exchanges, F: the
//! sidecar exchanges). Exit 0 when every MCPServer is valid, 1 when any is invalid, 2 when input is unreadable.

use std::process::ExitCode;

use muster_exchange_api::documents::{Document, read_documents};
use muster_exchange_api::topology;
use muster_exchange_api::validation::{FieldError, Report, validate_value};
use serde_json::Value;

const API_VERSION: &str = "muster.giantswarm.io/v1alpha1";

/// Arguments of `validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Manifest to check (YAML or JSON, multi-document); `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

/// Outcome of one object.
enum Verdict {
    Valid,
    Invalid,
    Skipped,
}

pub fn run(args: &ValidateArgs) -> ExitCode {
    let (mut unreadable, mut invalid) = (false, false);
    for file in &args.files {
        match read_documents(file) {
            Ok(docs) => {
                for doc in &docs {
                    if let Verdict::Invalid = check(doc) {
                        invalid = true;
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                unreadable = true;
            }
        }
    }
    if unreadable {
        ExitCode::from(2)
    } else if invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check(doc: &Document) -> Verdict {
    let name = doc.display_name();
    if doc.kind() != "MCPServer" {
        eprintln!(
            "note: {}:{}: skipping {name}: not an MCPServer",
            doc.source, doc.line
        );
        return Verdict::Skipped;
    }
    let report = report_for(&doc.value);
    for warning in &report.warnings {
        eprintln!("Warning: {name}: {warning}");
    }
    for error in &report.errors {
        eprintln!("{name}: {error}");
    }
    if report.is_valid() {
        // A valid object decodes; one that is not a token-exchange server has no topology to name.
        let decoded = muster_exchange_api::validation::decode(&doc.value).ok();
        match decoded.as_ref().and_then(|m| topology::of(m).ok()) {
            Some(topology) => println!("{name}: valid; {}", topology.describe()),
            None => println!("{name}: valid"),
        }
        Verdict::Valid
    } else {
        println!(
            "{name}: invalid ({} problem{})",
            report.errors.len(),
            if report.errors.len() == 1 { "" } else { "s" }
        );
        Verdict::Invalid
    }
}

/// The rules plus what only matters for a manifest on disk: apiVersion and name.
fn report_for(value: &Value) -> Report {
    let mut report = validate_value(value);
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != API_VERSION {
        report.errors.insert(
            0,
            FieldError::invalid("apiVersion", api_version, format!("must be {API_VERSION}")),
        );
    }
    if value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        report.errors.insert(
            0,
            FieldError::required("metadata.name", "name the MCPServer (the remote cluster)"),
        );
    }
    report
}
