//! The local CLI: run the action on a developer's machine from a params JSON file, optionally
//! resolving an action's `inputs` from `ext.config.yaml` with `$VAR` / `${VAR}` taken from a
//! `.env` file, the way `aio app deploy` does.
//!
//! Exit codes: 0 for a success result, 1 for an error result, 2 for a usage problem.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use crate::Action;
use crate::action::result;
use crate::action::seal::{SEAL_FILE, Seal, Sealing};
use crate::activation::Activation;
use crate::endpoint::{ALLOW_HOSTS_ENV, AllowList};
use crate::time::Clock;
use crate::token::TokenCache;

use super::config;

const USAGE: &str = "\
ims-action: an OpenWhisk / App Builder action that turns Adobe credentials into an IMS token
and calls an Adobe API with it.

Usage:
  ims-action invoke --params FILE [--env FILE] [--config ext.config.yaml --action NAME]
      Run the action once; print the result as one JSON line.
  ims-action token  --params FILE [--env FILE] [--config ext.config.yaml --action NAME]
      Print the access token for the credential (token, type, expiry) as one JSON line.
  ims-action inputs --config FILE --action NAME [--env FILE]
      Print the params the deployment binds to one action, resolved as aio does (secrets
      included: for deploy scripts, which pass them to `wsk action update --param-file`).
  ims-action seal   --config FILE [--env FILE] [--out FILE]
      Write the seal of a deployment (ims-action.seal.json): a keyed fingerprint of every input
      bound to every action of FILE (app.config.yaml, ext.config.yaml or a wskdeploy
      manifest.yaml). Deployed next to the binary, it lets no caller add or change an input.
  ims-action '<params json>'
      One-shot mode (OpenWhisk dockerskeleton --native); also reads one JSON line on stdin.
  ims-action            (with file descriptor 3 open)
      OpenWhisk actionloop mode.

With --config, the action's inputs come from ext.config.yaml (or app.config.yaml, or a
wskdeploy manifest.yaml), $VAR and ${VAR} substituted from the environment, then from --env
(default .env), exactly as aio does; an undefined variable becomes an empty string. Params from --params override inputs. IMS_ACTION_ALLOW_HOSTS is read
from the environment, then from the --env file.

Exit status: 0 success, 1 error result, 2 usage problem.";

/// A usage problem: one line saying which.
struct Usage(String);

/// Runs a CLI command.
pub fn main(args: &[OsString]) -> ExitCode {
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!("ims-action {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let command = args[0].clone();
    if command == "inputs" {
        return match inputs(&args[1..]) {
            Ok(inputs) => {
                println!("{inputs}");
                ExitCode::SUCCESS
            }
            Err(Usage(msg)) => {
                eprintln!("ims-action inputs: {msg}");
                ExitCode::from(2)
            }
        };
    }
    if command == "seal" {
        return match seal(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Usage(msg)) => {
                eprintln!("ims-action seal: {msg}");
                ExitCode::from(2)
            }
        };
    }
    match run(&command, &args[1..]) {
        Ok(reply) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{reply}");
            let _ = out.flush();
            if reply.get("error").is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(Usage(msg)) => {
            eprintln!("ims-action {command}: {msg}");
            ExitCode::from(2)
        }
    }
}

#[derive(Default)]
struct Options {
    params: Option<String>,
    env: Option<String>,
    config: Option<String>,
    action: Option<String>,
    out: Option<String>,
}

fn parse_options(args: &[String]) -> Result<Options, Usage> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Usage(format!("{flag} needs a value")))
        };
        match flag {
            "--params" | "-p" => o.params = Some(value()?),
            "--env" | "-e" => o.env = Some(value()?),
            "--config" | "-c" => o.config = Some(value()?),
            "--action" | "-a" => o.action = Some(value()?),
            "--out" | "-o" => o.out = Some(value()?),
            other => return Err(Usage(format!("unknown option '{other}' (see ims-action --help)"))),
        }
    }
    Ok(o)
}

/// The `--env` file's variables (default `.env`, which may be absent; a named one must exist).
fn env_file(o: &Options) -> Result<HashMap<String, String>, Usage> {
    let path = o.env.clone().unwrap_or_else(|| ".env".into());
    match super::dotenv::read(std::path::Path::new(&path)) {
        Ok(vars) => Ok(vars),
        Err(e) if o.env.is_none() && e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(Usage(format!("cannot read env file {path}: {e}"))),
    }
}

/// `ims-action inputs`: the params a deployment binds to one action (what `seal` fingerprints),
/// for deploy scripts that set params themselves (`wsk action update --param-file`).
fn inputs(args: &[String]) -> Result<Value, Usage> {
    let o = parse_options(args)?;
    let (Some(config_path), Some(action), None) = (&o.config, &o.action, &o.params) else {
        return Err(Usage(
            "inputs takes --config FILE --action NAME [--env FILE]".into(),
        ));
    };
    let env_vars = env_file(&o)?;
    let lookup = |name: &str| std::env::var(name).ok().or_else(|| env_vars.get(name).cloned());
    let mut inputs =
        config::action_inputs(std::path::Path::new(config_path), action, &lookup).map_err(Usage)?;
    // Unset is unset: a param that is "" would be bound as "" (absent to the action and the seal
    // alike), so it is left out.
    inputs.retain(|_, v| crate::params::is_given(v));
    Ok(Value::Object(inputs))
}

/// `ims-action seal`: the seal of every action in a deployment descriptor.
fn seal(args: &[String]) -> Result<(), Usage> {
    let o = parse_options(args)?;
    let (Some(config_path), None, None) = (&o.config, &o.params, &o.action) else {
        return Err(Usage(
            "seal takes --config FILE [--env FILE] [--out FILE] (no --params or --action)".into(),
        ));
    };
    let env_vars = env_file(&o)?;
    let lookup = |name: &str| std::env::var(name).ok().or_else(|| env_vars.get(name).cloned());
    let actions = config::actions(std::path::Path::new(config_path), &lookup).map_err(Usage)?;
    if actions.is_empty() {
        return Err(Usage(format!("{config_path} declares no action")));
    }
    let seal = Seal::bind(&actions).map_err(|e| Usage(e.to_string()))?;
    let bound: usize = actions
        .values()
        .map(|inputs| inputs.values().filter(|v| crate::params::is_given(v)).count())
        .sum();
    match &o.out {
        Some(path) => {
            std::fs::write(path, seal.to_json()).map_err(|e| Usage(format!("cannot write {path}: {e}")))?
        }
        None => print!("{}", seal.to_json()),
    }
    let names: Vec<&str> = seal.actions().collect();
    let summary = json!({
        "sealed": o.out.as_deref().unwrap_or("(stdout)"),
        "actions": names,
        "bound_inputs": bound,
    });
    eprintln!("ims-action seal: {summary} (deploy it as {SEAL_FILE} next to the binary)");
    Ok(())
}

fn run(command: &str, args: &[String]) -> Result<Value, Usage> {
    if command != "invoke" && command != "token" {
        return Err(Usage(format!(
            "unknown command '{command}' (see ims-action --help)"
        )));
    }
    let o = parse_options(args)?;
    if o.params.is_none() && o.config.is_none() {
        return Err(Usage(
            "--params FILE is required (or --config with --action)".into(),
        ));
    }
    if o.config.is_some() != o.action.is_some() {
        return Err(Usage("--config and --action go together".into()));
    }
    let env_vars = env_file(&o)?;
    let lookup = |name: &str| std::env::var(name).ok().or_else(|| env_vars.get(name).cloned());
    let mut params = Map::new();
    if let (Some(path), Some(action)) = (&o.config, &o.action) {
        params = config::action_inputs(std::path::Path::new(path), action, &lookup).map_err(Usage)?;
    }
    if let Some(path) = &o.params {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("cannot read params file {path}: {e}")))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => params.extend(m),
            Ok(_) => return Err(Usage(format!("params file {path} must hold a JSON object"))),
            Err(e) => return Err(Usage(format!("params file {path} is not valid JSON: {e}"))),
        }
    }
    let allow = AllowList::parse(&lookup(ALLOW_HOSTS_ENV).unwrap_or_default());
    // Everything given here is the developer's own configuration: it is sealed as bound, so that
    // web params (`__ow_*`) in the file get a web call's checks, as a deployment would.
    let name = o.action.clone().unwrap_or_else(|| "local".into());
    let bound: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !k.starts_with("__ow_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let seal = Seal::bind(&std::collections::BTreeMap::from([(name.clone(), bound)]))
        .map_err(|e| Usage(e.to_string()))?;
    let action = Action::new(allow, TokenCache::in_memory()).with_sealing(Sealing::Sealed(seal));
    let activation = Activation {
        action_name: Some(name),
        ..Activation::from_env()
    };
    Ok(if command == "token" {
        match action.access_token(Value::Object(params), &activation) {
            Ok(t) => json!({
                "access_token": t.token.expose(),
                "token_type": t.token_type,
                "expires_at": crate::time::format_datetime((t.expires_at_ms / 1000) as i64),
                "expires_in": t.expires_at_ms.saturating_sub(Clock::system().now_ms()) / 1000,
            }),
            Err(e) => result::failure(&e),
        }
    } else {
        action.handle(Value::Object(params), &activation)
    })
}
