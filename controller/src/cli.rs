//! Command-line entry points wired into the `muster-exchange` binary by the CLI crate:
//! `muster-exchange controller` and `muster-exchange diagnose`.

pub use crate::controller_cmd::{ControllerArgs, run_controller};
pub use crate::diagnose_cmd::{DiagnoseArgs, run_diagnose};
