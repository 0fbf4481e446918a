//! Reading Kubernetes manifests the way `kubectl apply -f` does: multi-document YAML or JSON, `-` for stdin,
//! `kind: List` expanded, and every parse error naming the file and line.

use std::io::Read;

use serde_json::Value;

/// One object read from a manifest, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The object as JSON.
    pub value: Value,
    /// File it came from (`-` for stdin).
    pub source: String,
    /// 1-based line where its document starts.
    pub line: usize,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The file could not be opened or read.
    #[error("{source_name}: cannot read: {error}; check the path and permissions")]
    Read {
        /// File name.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The text is not YAML or JSON.
    #[error("{source_name}:{line}: cannot parse: {message}")]
    Parse {
        /// File name.
        source_name: String,
        /// 1-based line of the problem.
        line: usize,
        /// The parser's explanation.
        message: String,
    },
}

impl Document {
    /// `kind/name` in lower case, the way kubectl names objects (`mcpserver/cluster-a`).
    pub fn display_name(&self) -> String {
        let kind = self
            .value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object")
            .to_lowercase();
        let name = self
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .or_else(|| {
                self.value
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
            })
            .unwrap_or("<unnamed>");
        format!("{kind}/{name}")
    }

    /// The object's `kind`, empty when missing.
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or_default()
    }
}

/// YAML 1.2 core booleans only: `name: y` or `on: yes` stay strings instead of silently turning into
/// `true` the YAML 1.1 way, which would corrupt names and values in untyped documents.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options
}

/// Reads `path` (`-` for stdin) and splits it into objects.
pub fn read_documents(path: &str) -> Result<Vec<Document>, DocumentError> {
    let mut text = String::new();
    let result = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map(|_| ())
    };
    result.map_err(|error| DocumentError::Read {
        source_name: path.to_string(),
        error,
    })?;
    parse_documents(&text, path)
}

/// Splits `text` into objects. Documents are separated by `---` lines; each is YAML or JSON (a JSON
/// document may hold several concatenated values, as `kubectl get -o json` streams do). Empty documents
/// are skipped; `kind: List` is expanded into its items.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Document>, DocumentError> {
    let mut out = Vec::new();
    for (start_line, chunk) in split_yaml_documents(text) {
        let trimmed = chunk.trim_start();
        if looks_like_json(trimmed) {
            // Lines before the first value (blank or whitespace) shift its line number.
            let skipped = chunk[..chunk.len() - trimmed.len()].matches('\n').count();
            out.extend(parse_json(chunk.trim_end(), source, start_line + skipped)?);
            continue;
        }
        if let Some(value) = parse_yaml(&chunk, source, start_line)? {
            push_expanded(&mut out, value, source, start_line);
        }
    }
    Ok(out)
}

/// A document is read as JSON when it opens a JSON array or an object whose first key is quoted (or that
/// is empty); flow-style YAML such as `{kind: A}` stays YAML.
fn looks_like_json(trimmed: &str) -> bool {
    trimmed.starts_with('[')
        || trimmed.strip_prefix('{').is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with('"') || rest.starts_with('}')
        })
}

fn parse_yaml(chunk: &str, source: &str, start_line: usize) -> Result<Option<Value>, DocumentError> {
    serde_saphyr::from_str_with_options::<Option<Value>>(chunk, yaml_options()).map_err(|err| {
        let line = err.location().map_or(0, |l| l.line() as usize);
        DocumentError::Parse {
            source_name: source.to_string(),
            line: start_line + line.saturating_sub(1),
            message: first_line(&err.to_string()),
        }
    })
}

fn parse_json(text: &str, source: &str, start_line: usize) -> Result<Vec<Document>, DocumentError> {
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for item in stream {
        let value = item.map_err(|err| DocumentError::Parse {
            source_name: source.to_string(),
            line: start_line + err.line().saturating_sub(1),
            message: err.to_string(),
        })?;
        match value {
            Value::Array(items) => items
                .into_iter()
                .for_each(|v| push_expanded(&mut out, v, source, start_line)),
            other => push_expanded(&mut out, other, source, start_line),
        }
    }
    Ok(out)
}

fn push_expanded(out: &mut Vec<Document>, value: Value, source: &str, line: usize) {
    if value.is_null() {
        return;
    }
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Some(Value::Array(items)) = value.get("items") {
            for item in items {
                push_expanded(out, item.clone(), source, line);
            }
        }
        return;
    }
    out.push(Document {
        value,
        source: source.to_string(),
        line,
    });
}

/// Splits on `---` separator lines, keeping the 1-based line where each document's text starts.
fn split_yaml_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (idx, line) in text.lines().enumerate() {
        let is_separator = line.starts_with("---") && line[3..].trim().is_empty();
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = idx + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_document_yaml_and_tracks_lines() {
        let docs = parse_documents(
            "a: 1\n---\n---\nkind: X\nmetadata:\n  name: y\n  on: yes\n",
            "f.yaml",
        )
        .unwrap();
        assert_eq!(docs[1].value["metadata"]["on"], "yes");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 4);
        assert_eq!(docs[1].display_name(), "x/y");
    }

    #[test]
    fn reports_the_line_of_a_yaml_error() {
        let err = parse_documents("a: 1\n---\nkind: X\n  bad: [\n", "f.yaml").unwrap_err();
        match err {
            DocumentError::Parse {
                source_name, line, ..
            } => {
                assert_eq!(source_name, "f.yaml");
                assert!((3..=4).contains(&line), "line {line}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_json_and_expands_lists() {
        let docs = parse_documents(
            r#"{"kind":"List","items":[{"kind":"A","metadata":{"name":"a"}},{"kind":"B"}]}"#,
            "x.json",
        )
        .unwrap();
        assert_eq!(docs.iter().map(Document::kind).collect::<Vec<_>>(), ["A", "B"]);
        assert!(matches!(
            parse_documents("{\"a\":", "x.json"),
            Err(DocumentError::Parse { line: 1, .. })
        ));
    }

    #[test]
    fn reads_json_documents_separated_by_dashes_and_flow_yaml() {
        let text = "{\n  \"kind\": \"A\",\n  \"n\": 1\n}\n---\n{\"kind\": \"B\"}\n---\nkind: C\n---\n{kind: D, x: [1]}\n";
        let docs = parse_documents(text, "s.yaml").unwrap();
        assert_eq!(
            docs.iter().map(Document::kind).collect::<Vec<_>>(),
            ["A", "B", "C", "D"]
        );
        assert_eq!(docs.iter().map(|d| d.line).collect::<Vec<_>>(), [1, 6, 8, 10]);
        let err = parse_documents("kind: A\n---\n{\"kind\": \"B\",\n \"x\": }\n", "s.yaml").unwrap_err();
        assert!(matches!(err, DocumentError::Parse { line: 4, .. }), "{err}");
    }
}
