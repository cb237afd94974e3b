//! Runtimes: how the binary is started decides how params come in and results go out. They only
//! adapt input and output around [`crate::Action::handle`].
//!
//! | started as | mode |
//! |---|---|
//! | no arguments, file descriptor 3 open | [`actionloop`]: one process, many activations |
//! | the same, with `IMS_ACTION_MULTIPLEX=1` (the Node launcher) | [`multiplex`]: many at once |
//! | `ims-action '<params json>'`, or one JSON line on stdin | [`oneshot`]: dockerskeleton `--native` |
//! | `ims-action invoke …` / `ims-action token …` | [`local`]: a developer's machine |

pub mod actionloop;
pub mod config;
pub mod dotenv;
mod line;
pub mod local;
pub mod multiplex;
pub mod oneshot;

use std::ffi::OsString;

/// The most params text read for one activation (an actionloop line, a one-shot stdin line):
/// OpenWhisk limits params to 1 MB, so this is generous.
pub const MAX_PARAMS_BYTES: usize = 8 * 1024 * 1024;
use std::process::ExitCode;

/// Picks the mode from the arguments and runs it. `results_fd` hands over file descriptor 3 in
/// actionloop mode (the binary adopts it: taking ownership of a raw descriptor is the one
/// `unsafe` step, and the library forbids `unsafe`).
pub fn run(args: Vec<OsString>, results_fd: impl FnOnce() -> std::io::Result<std::fs::File>) -> ExitCode {
    let first = args.get(1).map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        None if actionloop::results_fd_open() => actionloop::main(results_fd()),
        Some("invoke" | "token" | "inputs" | "seal" | "help" | "--help" | "-h" | "--version" | "-V") => {
            local::main(&args)
        }
        _ => oneshot::main(&args),
    }
}

/// The process's exit once an activation loop (either framing) ends: stdin closed is a clean end.
fn exit_code(served: std::io::Result<()>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ims-action: actionloop I/O error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Panics must not print their payload: it may quote a value (and so a secret). The activation
/// boundary catches them; this hook only says where.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("ims-action: internal panic at {at} (message withheld)");
    }));
}
