//! One process per activation (OpenWhisk's dockerskeleton `--native`): params as `argv[1]`, or
//! one JSON line on stdin when no argument is given and stdin is not a terminal (the proxy passes
//! params over 128 KiB on stdin only). The result is the last line of stdout. Tokens are cached
//! in a private file, since the next activation in the warm container is a new process.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use serde_json::Value;

use crate::Action;
use crate::action::result;
use crate::action::seal::Sealing;
use crate::activation::Activation;
use crate::endpoint::AllowList;
use crate::error::Error;
use crate::token::TokenCache;

/// Runs one activation.
pub fn main(args: &[std::ffi::OsString]) -> ExitCode {
    let params = match read_params(args) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(io::stdout(), "{}", result::failure(&e));
            return ExitCode::from(2);
        }
    };
    let action = Action::new(
        AllowList::from_env(),
        TokenCache::with_dir(TokenCache::default_dir()),
    )
    .with_sealing(Sealing::from_env());
    let reply = action.handle(params, &Activation::from_env());
    let _ = io::stderr().flush();
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{reply}");
    let _ = stdout.flush();
    if reply.get("error").is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn read_params(args: &[std::ffi::OsString]) -> Result<Value, Error> {
    let text = match args.get(1) {
        Some(arg) => arg.to_string_lossy().into_owned(),
        None if io::stdin().is_terminal() => {
            return Err(Error::invalid(
                "params",
                "give them as one JSON argument or one JSON line on stdin (or see `ims-action --help`)",
            ));
        }
        None => {
            let mut line = String::new();
            io::stdin()
                .lock()
                .take(super::MAX_PARAMS_BYTES as u64)
                .read_line(&mut line)
                .map_err(|e| Error::invalid("params", format!("could not be read from stdin: {e}")))?;
            line
        }
    };
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            "params",
            format!("are not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    })
}
