//! The `ims-action` binary: picks the runtime (actionloop, one-shot, local CLI) from how it was
//! started. All the logic lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    ims_action::logging::init();
    ims_action::runtime::install_panic_hook();
    ims_action::runtime::run(std::env::args_os().collect())
}
