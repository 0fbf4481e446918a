//! Muster's own schema patterns and CEL rules on `spec`, checked offline.

use super::{FieldError, Report, syntax};
use crate::mcpserver::{AuthType, MCPServerSpec, ServerType};

/// The warning for a `spec` enum value this build does not know: Muster's CRD admitted it, so it is not
/// ours to refuse, and the rules that depend on it are skipped.
pub(super) fn unknown_value(path: &str, value: &str, known: &[&str]) -> String {
    format!(
        "{value:?} is not known to this version of muster-exchange (it knows {}); rules that depend on {path} \
         are skipped. Upgrade muster-exchange if Muster added this value.",
        known.join(", ")
    )
}

pub(super) fn check(spec: &MCPServerSpec, report: &mut Report) {
    if spec.server_type.is_unknown() {
        report.warn(
            "spec.type",
            unknown_value("spec.type", spec.server_type.as_str(), ServerType::KNOWN),
        );
    }
    if let Some(auth) = &spec.auth
        && auth.auth_type.is_unknown()
    {
        report.warn(
            "spec.auth.type",
            unknown_value("spec.auth.type", auth.auth_type.as_str(), AuthType::KNOWN),
        );
    }
    check_type_rules(spec, report);
    check_patterns(spec, report);
}

/// Muster's CEL rules on `type`; an unknown type is judged by none of them.
fn check_type_rules(spec: &MCPServerSpec, report: &mut Report) {
    if spec.server_type.is_unknown() {
        return;
    }
    let stdio = spec.server_type == ServerType::Stdio;
    if stdio && spec.command.is_none() {
        report.error(FieldError::required(
            "spec.command",
            "command is required when type is stdio",
        ));
    }
    if !stdio && spec.url.is_none() {
        report.error(FieldError::required(
            "spec.url",
            "url is required when type is streamable-http or sse",
        ));
    }
    if !stdio && spec.args.is_some() {
        report.error(FieldError::forbidden(
            "spec.args",
            "args field is only allowed when type is stdio",
        ));
    }
    if stdio && spec.headers.is_some() {
        report.error(FieldError::forbidden(
            "spec.headers",
            "headers field is only allowed when type is streamable-http or sse",
        ));
    }
}

fn check_patterns(spec: &MCPServerSpec, report: &mut Report) {
    if let Some(url) = &spec.url {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        let first_ok = rest
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && !"/$.?#".contains(c));
        if !scheme_ok || !first_ok || rest.chars().count() < 2 || url.chars().any(char::is_whitespace) {
            report.error(FieldError::invalid(
                "spec.url",
                url,
                "must be an http:// or https:// URL with a host",
            ));
        }
    }
    if let Some(prefix) = &spec.tool_prefix
        && !syntax::is_identifier(prefix)
    {
        report.error(FieldError::invalid(
            "spec.toolPrefix",
            prefix,
            "must start with a letter and contain only letters, digits, '_' and '-'",
        ));
    }
    if let Some(family) = &spec.family {
        if !syntax::is_identifier(&family.name) {
            report.error(FieldError::invalid(
                "spec.family.name",
                &family.name,
                "must start with a letter and contain only letters, digits, '_' and '-'",
            ));
        }
        if !syntax::is_instance_arg(&family.instance_arg) {
            report.error(FieldError::invalid(
                "spec.family.instanceArg",
                &family.instance_arg,
                "must start with a letter and contain only letters, digits and '_' (no '-': it names a tool parameter)",
            ));
        }
    }
    if let Some(description) = &spec.description
        && description.chars().count() > 500
    {
        report.error(FieldError::invalid(
            "spec.description",
            format!("{} characters", description.chars().count()),
            "may not be longer than 500 characters",
        ));
    }
    if !(1..=300).contains(&spec.timeout) {
        report.error(FieldError::invalid(
            "spec.timeout",
            spec.timeout.to_string(),
            "must be between 1 and 300 seconds",
        ));
    }
}
