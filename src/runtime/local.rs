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
use yaml_rust2::{Yaml, YamlLoader};

use crate::activation::Activation;
use crate::endpoint::{ALLOW_HOSTS_ENV, AllowList};
use crate::token::TokenCache;
use crate::{Action, result};

const USAGE: &str = "\
ims-action: an OpenWhisk / App Builder action that turns Adobe credentials into an IMS token
and calls an Adobe API with it.

Usage:
  ims-action invoke --params FILE [--env FILE] [--config ext.config.yaml --action NAME]
      Run the action once; print the result as one JSON line.
  ims-action token  --params FILE [--env FILE] [--config ext.config.yaml --action NAME]
      Print the access token for the credential (token, type, expiry) as one JSON line.
  ims-action '<params json>'
      One-shot mode (OpenWhisk dockerskeleton --native); also reads one JSON line on stdin.
  ims-action            (with file descriptor 3 open)
      OpenWhisk actionloop mode.

With --config, the action's inputs come from ext.config.yaml (or app.config.yaml), $VAR and
${VAR} substituted from the environment, then from --env (default .env); an undefined variable
becomes an empty string. Params from --params override inputs. IMS_ACTION_ALLOW_HOSTS is read
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
            other => return Err(Usage(format!("unknown option '{other}' (see ims-action --help)"))),
        }
    }
    if o.params.is_none() && o.config.is_none() {
        return Err(Usage(
            "--params FILE is required (or --config with --action)".into(),
        ));
    }
    if o.config.is_some() != o.action.is_some() {
        return Err(Usage("--config and --action go together".into()));
    }
    Ok(o)
}

fn run(command: &str, args: &[String]) -> Result<Value, Usage> {
    if command != "invoke" && command != "token" {
        return Err(Usage(format!(
            "unknown command '{command}' (see ims-action --help)"
        )));
    }
    let o = parse_options(args)?;
    let env_path = o.env.clone().unwrap_or_else(|| ".env".into());
    let env_vars = match std::fs::read_to_string(&env_path) {
        Ok(text) => super::dotenv::parse(&text),
        // The default .env may be absent; a named one must exist.
        Err(_) if o.env.is_none() => HashMap::new(),
        Err(e) => return Err(Usage(format!("cannot read env file {env_path}: {e}"))),
    };
    let lookup = |name: &str| std::env::var(name).ok().or_else(|| env_vars.get(name).cloned());
    let mut params = Map::new();
    if let (Some(config), Some(action)) = (&o.config, &o.action) {
        params = config_inputs(config, action, &lookup)?;
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
    let action = Action::new(allow, TokenCache::in_memory());
    let activation = Activation::from_env();
    Ok(if command == "token" {
        match action.access_token(Value::Object(params), &activation) {
            Ok(t) => json!({
                "access_token": t.token.expose(),
                "token_type": t.token_type,
                "expires_at": crate::time::format_datetime((t.expires_at_ms / 1000) as i64),
                "expires_in": t.expires_at_ms.saturating_sub(crate::time::now_unix_ms()) / 1000,
            }),
            Err(e) => result::failure(&e),
        }
    } else {
        action.handle(Value::Object(params), &activation)
    })
}

/// The `inputs` of action `name` (package inputs, then the action's), `$VAR`s substituted.
fn config_inputs(
    path: &str,
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Map<String, Value>, Usage> {
    let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("cannot read config {path}: {e}")))?;
    let docs = YamlLoader::load_from_str(&text)
        .map_err(|e| Usage(format!("config {path} is not valid YAML: {e}")))?;
    let root = docs
        .first()
        .ok_or_else(|| Usage(format!("config {path} is empty")))?;
    let mut names = Vec::new();
    for manifest in manifests(root) {
        for (_, package) in hash_entries(&manifest["packages"]) {
            for (action_name, action) in hash_entries(&package["actions"]) {
                if action_name != name {
                    names.push(action_name);
                    continue;
                }
                let mut inputs = Map::new();
                for source in [&package["inputs"], &action["inputs"]] {
                    for (k, v) in hash_entries(source) {
                        inputs.insert(k, substitute(yaml_to_json(v), lookup));
                    }
                }
                return Ok(inputs);
            }
        }
    }
    names.sort();
    Err(Usage(format!(
        "unknown action '{name}' in {path} (actions: {})",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// `runtimeManifest` blocks of an ext.config.yaml, app.config.yaml or wskdeploy manifest.
fn manifests(root: &Yaml) -> Vec<&Yaml> {
    // `$include`d files are not followed: give their own path to --config.
    let mut out = vec![
        &root["runtimeManifest"],
        &root["application"]["runtimeManifest"],
        root,
    ];
    out.retain(|m| !m["packages"].is_badvalue());
    out
}

fn hash_entries(y: &Yaml) -> Vec<(String, &Yaml)> {
    match y {
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| match k {
                Yaml::String(s) => Some((s.clone(), v)),
                Yaml::Integer(i) => Some((i.to_string(), v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .map(|f| json!(f))
            .unwrap_or_else(|_| Value::String(r.clone())),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(_) => {
            let m: Map<String, Value> = hash_entries(y)
                .into_iter()
                .map(|(k, v)| (k, yaml_to_json(v)))
                .collect();
            // aio unwraps {value: …} and {default: …}.
            match (m.get("value"), m.get("default")) {
                (Some(v), _) if m.len() == 1 => v.clone(),
                (_, Some(v)) if m.len() == 1 || m.contains_key("type") => v.clone(),
                _ => Value::Object(m),
            }
        }
        _ => Value::Null,
    }
}

/// Replaces `$VAR`, `${VAR}` and `${ VAR }` in strings; an undefined variable becomes "".
fn substitute(v: Value, lookup: &dyn Fn(&str) -> Option<String>) -> Value {
    let Value::String(s) = v else { return v };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) if inner[..end].trim().chars().all(is_name) && !inner[..end].trim().is_empty() => {
                    (inner[..end].trim(), end + 2)
                }
                _ => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &after[consumed..];
        }
    }
    out.push_str(rest);
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_substitute_like_aio() {
        let vars: HashMap<&str, &str> = [("A", "1"), ("B_C", "two")].into();
        let lookup = |n: &str| vars.get(n).map(|s| s.to_string());
        assert_eq!(
            // As in aio's regex, `-` belongs to a name: `$A-` would name `A-`.
            substitute(json!("$A/${B_C}|${ A }|$MISSING|cost $"), &lookup),
            json!("1/two|1||cost $")
        );
        assert_eq!(substitute(json!(5), &lookup), json!(5));
    }

    #[test]
    fn inputs_resolve_from_a_config() {
        let dir = std::env::temp_dir().join(format!("ims-action-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ext.config.yaml");
        std::fs::write(
            &path,
            "runtimeManifest:\n  packages:\n    p:\n      inputs:\n        LOG_LEVEL: info\n      actions:\n        quota:\n          inputs:\n            OAUTHS2S_CLIENT_ID: $ID\n            OPERATION: aem-quota\n            N: 3\n            W: { value: x }\n",
        )
        .unwrap();
        let lookup = |n: &str| (n == "ID").then(|| "abc".to_string());
        let inputs = config_inputs(path.to_str().unwrap(), "quota", &lookup)
            .ok()
            .unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"LOG_LEVEL": "info", "OAUTHS2S_CLIENT_ID": "abc", "OPERATION": "aem-quota", "N": 3, "W": "x"})
        );
        let Err(Usage(msg)) = config_inputs(path.to_str().unwrap(), "nope", &lookup) else {
            panic!()
        };
        assert!(
            msg.contains("unknown action 'nope'") && msg.contains("quota"),
            "{msg}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
