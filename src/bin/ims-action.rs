//! The `ims-action` binary: picks the runtime (actionloop, one-shot, local CLI) from how it was
//! started. All the logic lives in the library.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;

fn main() -> ExitCode {
    ims_action::logging::init();
    ims_action::runtime::install_panic_hook();
    ims_action::runtime::run(std::env::args_os().collect(), || {
        // SAFETY: called once, only in actionloop mode after checking that fd 3 is open; nothing
        // else in this process owns or closes fd 3, so the File becomes its sole owner. (Reopening
        // /proc/self/fd/3 would avoid this, but fails when fd 3 is a socket, as under Node.)
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(3) }))
    })
}
