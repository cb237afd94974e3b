//! Deployment descriptors read the way the deploy tools read them: App Builder's
//! `app.config.yaml` / `ext.config.yaml` (`$include`s followed, `application` and `extensions`
//! entries) and wskdeploy's `manifest.yaml`. Each action's inputs are its package's inputs with
//! its own on top, resolved as `@adobe/aio-lib-runtime` does (`src/utils.js`, `processInputs`
//! and `replaceIfEnvKey`): `$VAR`, `${VAR}` and `${ VAR }` from the environment, an undefined
//! variable as ""; the literals `string`, `integer` and `number` as "", 0 and 0; an object with a
//! `value` or `default` key as that value; and, for an action annotated
//! `include-ims-credentials`, the `__ims_oauth_s2s` input built from `IMS_OAUTH_S2S_*`
//! (`loadIMSCredentialsFromEnv`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlLoader};

/// How deep `$include`s may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A variable's value: the process environment first, then the `.env` file (dotenv never
/// overrides what is set).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Every action of every package in the descriptor at `path`, with its resolved inputs.
pub fn actions(path: &Path, lookup: Lookup) -> Result<BTreeMap<String, Map<String, Value>>, String> {
    let root = load(path, 0)?;
    let mut out = BTreeMap::new();
    for manifest in manifests(&root) {
        for (_, package) in hash_entries(&manifest["packages"]) {
            for (name, action) in hash_entries(&package["actions"]) {
                let mut inputs = Map::new();
                for source in [&package["inputs"], &action["inputs"]] {
                    for (k, v) in hash_entries(source) {
                        inputs.insert(k, resolve(yaml_to_json(v), lookup));
                    }
                }
                if truthy(&action["annotations"]["include-ims-credentials"]) {
                    inputs.insert("__ims_oauth_s2s".into(), ims_credentials(lookup));
                }
                out.insert(name, inputs);
            }
        }
    }
    Ok(out)
}

/// The resolved inputs of action `name`.
pub fn action_inputs(path: &Path, name: &str, lookup: Lookup) -> Result<Map<String, Value>, String> {
    let mut all = actions(path, lookup)?;
    all.remove(name).ok_or_else(|| {
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        format!(
            "unknown action '{name}' in {} (actions: {})",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    })
}

/// A YAML file with its `$include`s replaced by the included files' contents (siblings of an
/// `$include` win over what it brings, as in aio's loader).
fn load(path: &Path, depth: usize) -> Result<Yaml, String> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(format!("{}: $include nests too deep", path.display()));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    let docs = YamlLoader::load_from_str(&text)
        .map_err(|e| format!("config {} is not valid YAML: {e}", path.display()))?;
    let root = docs
        .into_iter()
        .next()
        .ok_or_else(|| format!("config {} is empty", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    includes(root, &dir, depth)
}

fn includes(y: Yaml, dir: &Path, depth: usize) -> Result<Yaml, String> {
    match y {
        Yaml::Hash(h) => {
            let include = Yaml::String("$include".into());
            let mut out = Hash::new();
            if let Some(Yaml::String(file)) = h.get(&include) {
                let path: PathBuf = dir.join(file);
                if let Yaml::Hash(included) = load(&path, depth + 1)? {
                    out.extend(included);
                }
            }
            for (k, v) in h {
                if k != include {
                    out.insert(k, includes(v, dir, depth)?);
                }
            }
            Ok(Yaml::Hash(out))
        }
        Yaml::Array(items) => Ok(Yaml::Array(
            items
                .into_iter()
                .map(|v| includes(v, dir, depth))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other),
    }
}

/// The blocks holding `packages`: `runtimeManifest` of the app, of `application` and of each
/// extension (App Builder), or the root itself (wskdeploy).
fn manifests(root: &Yaml) -> Vec<&Yaml> {
    let mut out = vec![
        &root["runtimeManifest"],
        &root["application"]["runtimeManifest"],
        root,
    ];
    for (_, extension) in hash_entries(&root["extensions"]) {
        out.push(&extension["runtimeManifest"]);
    }
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

fn truthy(y: &Yaml) -> bool {
    matches!(y, Yaml::Boolean(true)) || matches!(y, Yaml::String(s) if s == "true")
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
        Yaml::Hash(_) => Value::Object(
            hash_entries(y)
                .into_iter()
                .map(|(k, v)| (k, yaml_to_json(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// One input as `processInputs` leaves it.
fn resolve(v: Value, lookup: Lookup) -> Value {
    match v {
        Value::String(s) => match s.as_str() {
            "string" => Value::String(String::new()),
            "integer" | "number" => json!(0),
            _ => substitute(&s, lookup),
        },
        Value::Object(m) => match m.get("value").or_else(|| m.get("default")) {
            Some(Value::String(s)) => substitute(s, lookup),
            Some(other) => other.clone(),
            None => Value::Object(m.into_iter().map(|(k, v)| (k, resolve(v, lookup))).collect()),
        },
        other => other,
    }
}

/// `__ims_oauth_s2s` as aio injects it: client id, secret and org from `IMS_OAUTH_S2S_*`, and
/// the scopes JSON-parsed when they parse (else the string as is).
fn ims_credentials(lookup: Lookup) -> Value {
    let var = |name: &str| lookup(&format!("IMS_OAUTH_S2S_{name}"));
    let scopes = var("SCOPES").map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)));
    let mut m = Map::new();
    for (key, value) in [
        ("client_id", var("CLIENT_ID").map(Value::String)),
        ("client_secret", var("CLIENT_SECRET").map(Value::String)),
        ("org_id", var("ORG_ID").map(Value::String)),
        ("scopes", scopes),
    ] {
        if let Some(v) = value {
            m.insert(key.into(), v);
        }
    }
    Value::Object(m)
}

/// Replaces `$VAR`, `${VAR}` and `${ VAR }` in a string; an undefined variable becomes "".
pub fn substitute(s: &str, lookup: Lookup) -> Value {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::new();
    let mut rest = s;
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
    use std::collections::HashMap;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ims-action-cfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn variables_substitute_like_aio() {
        let vars: HashMap<&str, &str> = [("A", "1"), ("B_C", "two")].into();
        let lookup = |n: &str| vars.get(n).map(|s| s.to_string());
        assert_eq!(
            // As in aio's regex, `-` belongs to a name: `$A-` would name `A-`.
            substitute("$A/${B_C}|${ A }|$MISSING|cost $", &lookup),
            json!("1/two|1||cost $")
        );
    }

    #[test]
    fn inputs_resolve_from_a_config() {
        let dir = temp_dir("plain");
        let path = dir.join("ext.config.yaml");
        std::fs::write(
            &path,
            "runtimeManifest:\n  packages:\n    p:\n      inputs:\n        LOG_LEVEL: info\n      actions:\n        quota:\n          inputs:\n            OAUTHS2S_CLIENT_ID: $ID\n            OPERATION: aem-quota\n            N: 3\n            W: { value: x }\n            T: string\n            D: { default: $ID, type: string }\n            O: { a: $ID }\n",
        )
        .unwrap();
        let lookup = |n: &str| (n == "ID").then(|| "abc".to_string());
        let inputs = action_inputs(&path, "quota", &lookup).unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"LOG_LEVEL": "info", "OAUTHS2S_CLIENT_ID": "abc", "OPERATION": "aem-quota", "N": 3,
                   "W": "x", "T": "", "D": "abc", "O": {"a": "abc"}})
        );
        let msg = action_inputs(&path, "nope", &lookup).unwrap_err();
        assert!(
            msg.contains("unknown action 'nope'") && msg.contains("quota"),
            "{msg}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn includes_extensions_and_ims_credentials_are_followed() {
        let dir = temp_dir("include");
        std::fs::write(
            dir.join("app.config.yaml"),
            "extensions:\n  dx/excshell/1:\n    $include: ext.config.yaml\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("ext.config.yaml"),
            "operations:\n  view: []\nruntimeManifest:\n  packages:\n    p:\n      inputs:\n        A: $A\n      actions:\n        x:\n          inputs:\n            OPERATION: aem-get\n          annotations:\n            include-ims-credentials: true\n        y:\n          function: f.js\n",
        )
        .unwrap();
        let vars: HashMap<&str, &str> = [
            ("A", "1"),
            ("IMS_OAUTH_S2S_CLIENT_ID", "cid"),
            ("IMS_OAUTH_S2S_CLIENT_SECRET", "sec"),
            ("IMS_OAUTH_S2S_ORG_ID", "O@AdobeOrg"),
            ("IMS_OAUTH_S2S_SCOPES", "[\"openid\",\"AdobeID\"]"),
        ]
        .into();
        let lookup = |n: &str| vars.get(n).map(|s| s.to_string());
        let all = actions(&dir.join("app.config.yaml"), &lookup).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(
            Value::Object(all["x"].clone()),
            json!({"A": "1", "OPERATION": "aem-get", "__ims_oauth_s2s":
                {"client_id": "cid", "client_secret": "sec", "org_id": "O@AdobeOrg", "scopes": ["openid", "AdobeID"]}})
        );
        assert_eq!(Value::Object(all["y"].clone()), json!({"A": "1"}));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
