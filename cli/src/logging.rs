//! The process-wide log subscriber: human-readable text or one JSON object per line.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log output options shared by every subcommand.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"], env = "MUSTER_EXCHANGE_LOG_FORMAT")]
    pub log_format: String,
    /// Log filter in `RUST_LOG` syntax, e.g. `info` or `info,muster_exchange_sidecar=debug`.
    #[arg(long, global = true, default_value = "info", env = "MUSTER_EXCHANGE_LOG")]
    pub log_level: String,
}

/// Installs the subscriber. Logs go to stderr so command output on stdout stays machine-readable.
pub fn init(args: &LogArgs) -> Result<(), String> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|e| {
        format!(
            "invalid --log-level {:?}: {e}; use e.g. info or debug",
            args.log_level
        )
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = if args.log_format == "json" {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}
