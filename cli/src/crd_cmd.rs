//! `muster-exchange crd`: print the MCPServer CRD exactly as committed in `manifests/components/mcpserver-crd/` (optional: for clusters without Muster).

use std::process::ExitCode;

pub fn run() -> ExitCode {
    match muster_exchange_api::crd::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
