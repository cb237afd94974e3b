//! Sealed configuration: which inputs a deployment bound, so that no caller can add or change
//! one.
//!
//! On several routes a caller can set action params: OpenWhisk's `final` protects bound params
//! from being *changed* but not unbound ones from being *added*, and behind App Builder's
//! `require-adobe-auth` (a sequence whose inner action is not a web action) `final` has no effect at
//! all. So the artifact carries a seal: `ims-action.seal.json`, written next to the binary when the
//! deployable is built (`ims-action seal`, run by `make package` and the `pre-app-build` hook). It
//! holds, per action, a keyed fingerprint of every input bound at build time. At run time every
//! input the action knows must be present exactly when it is sealed, with the sealed value;
//! request inputs a deployment opts in through its sealed `CALLER_INPUTS` may come from callers.
//!
//! Without a seal, a web activation is refused (fail closed); a non-web one comes from someone
//! holding the namespace's key, who could replace the action anyway, and is trusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::params::is_given;
use crate::regular_file::{self, ReadError};

/// The seal's file name, next to the binary in every artifact.
pub const SEAL_FILE: &str = "ims-action.seal.json";
/// The process environment variable naming the seal file elsewhere (the Node launcher may run a
/// copy of the binary from the temp directory).
pub const SEAL_ENV: &str = "IMS_ACTION_SEAL";
/// The sealed input listing the request inputs callers may set in this deployment.
pub const CALLER_INPUTS: &str = "CALLER_INPUTS";
/// App Builder renames a `require-adobe-auth` action `__secured_<name>` behind its validator.
const SECURED_PREFIX: &str = "__secured_";
const FORMAT: &str = "ims-action seal 1";
/// Seal files are small; a huge one is not ours.
const MAX_SEAL_BYTES: u64 = 1024 * 1024;

/// A deployment's seal: the fingerprints of the inputs bound to each of its actions.
pub struct Seal {
    salt: Vec<u8>,
    key: hmac::Key,
    actions: BTreeMap<String, BTreeMap<String, String>>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal")
            .field("actions", &self.actions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What the process found: a seal, none, or a seal it cannot use (which fails every activation).
#[derive(Debug)]
pub enum Sealing {
    /// A valid seal.
    Sealed(Seal),
    /// No seal: web activations are refused.
    Unsealed,
    /// A seal that cannot be read or parsed: every activation is refused.
    Broken(String),
}

impl Sealing {
    /// The seal at `$IMS_ACTION_SEAL`, else next to the running executable, else none.
    pub fn from_env() -> Sealing {
        match std::env::var_os(SEAL_ENV).filter(|p| !p.is_empty()) {
            Some(path) => Sealing::from_path(Path::new(&path), true),
            None => match std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join(SEAL_FILE)))
            {
                Some(path) => Sealing::from_path(&path, false),
                None => Sealing::Unsealed,
            },
        }
    }

    /// The seal at `path`; a missing file is [`Sealing::Unsealed`] unless `required`. Anything
    /// but a regular file (a FIFO, a directory, a device) is refused before it is opened, and the
    /// read is bounded.
    pub fn from_path(path: &Path, required: bool) -> Sealing {
        // ops: seal-unreadable
        let broken = |why: String| Sealing::Broken(format!("the seal {} {why}", path.display()));
        match std::fs::metadata(path) {
            Err(_) if !required => return Sealing::Unsealed,
            Err(e) => return broken(format!("cannot be read: {e}")),
            Ok(meta) if !meta.is_file() => {
                return broken("is not a regular file: deploy ims-action.seal.json as a file".into());
            }
            Ok(_) => {}
        }
        let text = match read_bounded(path) {
            Ok(text) => text,
            Err(why) => return broken(why),
        };
        match Seal::parse(&text) {
            Ok(seal) => Sealing::Sealed(seal),
            Err(why) => broken(format!("is damaged: {why}")),
        }
    }

    /// Where [`Sealing::from_env`] looks, for messages.
    pub fn default_path() -> Option<PathBuf> {
        std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join(SEAL_FILE)))
    }
}

/// The seal file's text: a regular file (checked again once open, in case the path was
/// swapped), at most [`MAX_SEAL_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    let bytes = regular_file::read(path, MAX_SEAL_BYTES).map_err(|e| match e {
        ReadError::NotRegular => "is not a regular file".to_string(),
        ReadError::TooLarge => "is too large".to_string(),
        ReadError::Io(e) => format!("cannot be read: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|_| "is damaged: not UTF-8".into())
}

impl Seal {
    /// Seals the inputs bound to each action (name → its inputs, package inputs included).
    /// Absent, null and blank values are not bound.
    pub fn bind(actions: &BTreeMap<String, Map<String, Value>>) -> Result<Seal, Error> {
        let mut salt = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| Error::Internal("no randomness for the seal's salt".into()))?;
        let mut seal = Seal::with_salt(salt, BTreeMap::new());
        for (action, inputs) in actions {
            let sealed = inputs
                .iter()
                .filter(|(_, v)| is_given(v))
                .map(|(name, value)| (name.clone(), seal.fingerprint(name, value)))
                .collect();
            seal.actions.insert(action.clone(), sealed);
        }
        Ok(seal)
    }

    fn with_salt(salt: Vec<u8>, actions: BTreeMap<String, BTreeMap<String, String>>) -> Seal {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salt);
        Seal { salt, key, actions }
    }

    /// Reads a seal file's text.
    pub fn parse(text: &str) -> Result<Seal, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!("\"format\" is not \"{FORMAT}\""));
        }
        let salt = v
            .get("salt")
            .and_then(Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .filter(|s| s.len() >= 16)
            .ok_or("\"salt\" is missing or not base64url of 16 bytes or more")?;
        let mut actions = BTreeMap::new();
        let entries = v
            .get("actions")
            .and_then(Value::as_object)
            .ok_or("\"actions\" is not an object")?;
        for (action, inputs) in entries {
            let inputs = inputs
                .as_object()
                .ok_or_else(|| format!("action '{action}' is not an object"))?;
            let mut sealed = BTreeMap::new();
            for (name, fp) in inputs {
                let fp = fp
                    .as_str()
                    .ok_or_else(|| format!("'{action}.{name}' is not a string"))?;
                sealed.insert(name.clone(), fp.to_string());
            }
            actions.insert(action.clone(), sealed);
        }
        Ok(Seal::with_salt(salt, actions))
    }

    /// The seal file's text.
    pub fn to_json(&self) -> String {
        let doc = json!({
            "format": FORMAT,
            "salt": URL_SAFE_NO_PAD.encode(&self.salt),
            "actions": self.actions,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// The actions this seal knows.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// The names of the inputs sealed for `action`.
    pub fn sealed_inputs(&self, action: &str) -> Option<impl Iterator<Item = &str>> {
        Some(self.actions.get(action)?.keys().map(String::as_str))
    }

    /// Checks `params` against the inputs sealed for the activation's action (`action_name` as the
    /// platform gives it, e.g. `/ns/pkg/aem-quota` or `/ns/pkg/__secured_aem-quota`).
    ///
    /// `known` is every input the action reads; `opt_in` the request inputs a deployment may let
    /// callers set through `CALLER_INPUTS`; `always_free` inputs callers may always set.
    pub fn verify(
        &self,
        action_name: Option<&str>,
        params: &Map<String, Value>,
        known: &[&str],
        opt_in: &[&str],
        always_free: &[&str],
    ) -> Result<(), Error> {
        let action = action_name.map(action_key).ok_or_else(|| {
            // ops: seal-no-action-name
            Error::Configuration(
                "the platform did not say which action this is (no action name), so its sealed \
                 configuration cannot be found"
                    .into(),
            )
        })?;
        let sealed = self.actions.get(action).ok_or_else(|| {
            // ops: seal-no-entry
            Error::Configuration(format!(
                "this deployment's seal has no entry for action '{action}' (it seals: {}): rebuild the \
                 artifact from the configuration that deploys this action",
                self.actions.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        // Every input is classified, so that one answer names all of them.
        let mut drift = Drift::default();
        // CALLER_INPUTS is configuration itself: believed only when it is the sealed one.
        let caller_inputs = params.get(CALLER_INPUTS);
        let opted_in: Vec<&str> = match (
            self.classify(CALLER_INPUTS, caller_inputs, sealed, false),
            caller_inputs,
        ) {
            (Some(how), _) => {
                drift.push(how, CALLER_INPUTS);
                Vec::new()
            }
            (None, Some(Value::String(list))) => {
                let mut names = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match opt_in.iter().find(|o| **o == name) {
                        Some(o) => names.push(*o),
                        None => {
                            // ops: caller-inputs-not-request-input
                            return Err(Error::Configuration(format!(
                                "{CALLER_INPUTS} names '{}', which is not a request input (only {} may be)",
                                name.escape_debug(),
                                opt_in.join(", ")
                            )));
                        }
                    }
                }
                names
            }
            (None, _) => Vec::new(),
        };
        for name in known.iter().filter(|n| **n != CALLER_INPUTS) {
            let free = opted_in.contains(name) || always_free.contains(name);
            if let Some(how) = self.classify(name, params.get(*name), sealed, free) {
                drift.push(how, name);
            }
        }
        if drift.added.is_empty() && drift.changed.is_empty() && drift.missing.is_empty() {
            return Ok(());
        }
        for list in [&mut drift.added, &mut drift.changed, &mut drift.missing] {
            list.sort_unstable();
        }
        Err(Error::SealMismatch {
            added: drift.added,
            changed: drift.changed,
            missing: drift.missing,
            for_web_caller: false,
        })
    }

    /// Whether the seal vouches for one input of `action_name` as given (sealed with this value,
    /// or neither sealed nor given). An action the seal does not know is vouched for here: the
    /// full check refuses it anyway.
    pub fn vouches_for(&self, action_name: Option<&str>, name: &str, value: Option<&Value>) -> bool {
        match action_name.map(action_key).and_then(|a| self.actions.get(a)) {
            Some(sealed) => self.classify(name, value, sealed, false).is_none(),
            None => true,
        }
    }

    /// How one input departs from the seal, if it does.
    fn classify(
        &self,
        name: &str,
        value: Option<&Value>,
        sealed: &BTreeMap<String, String>,
        caller_may_set: bool,
    ) -> Option<Departure> {
        let present = value.filter(|v| is_given(v));
        match (present, sealed.get(name)) {
            (None, None) => None,
            (Some(_), None) if caller_may_set => None,
            (Some(_), None) => Some(Departure::Added),
            (Some(v), Some(fp)) if same_fingerprint(&self.fingerprint(name, v), fp) => None,
            (Some(_), Some(_)) => Some(Departure::Changed),
            (None, Some(_)) => Some(Departure::Missing),
        }
    }

    /// The keyed fingerprint of one input: HMAC-SHA256 over its name and canonical JSON value.
    fn fingerprint(&self, name: &str, value: &Value) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(name.as_bytes());
        ctx.update(b"\n");
        let mut canonical = String::new();
        write_canonical(value, &mut canonical);
        ctx.update(canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

/// How an input departs from the seal.
enum Departure {
    Added,
    Changed,
    Missing,
}

/// The inputs that depart from the seal, by kind.
#[derive(Default)]
struct Drift {
    added: Vec<String>,
    changed: Vec<String>,
    missing: Vec<String>,
}

impl Drift {
    fn push(&mut self, how: Departure, name: &str) {
        let list = match how {
            Departure::Added => &mut self.added,
            Departure::Changed => &mut self.changed,
            Departure::Missing => &mut self.missing,
        };
        list.push(name.to_string());
    }
}

/// Fingerprints compared in constant time: how long the comparison takes says nothing about
/// how much of a guess was right.
fn same_fingerprint(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The seal entry of an action name: its last segment, without App Builder's `__secured_`.
pub fn action_key(action_name: &str) -> &str {
    let last = action_name.rsplit('/').next().unwrap_or(action_name);
    last.strip_prefix(SECURED_PREFIX).unwrap_or(last)
}

/// JSON with object keys sorted at every depth, whatever order the platform kept.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 5] = [
        "OAUTHS2S_CLIENT_SECRET",
        "LOG_LEVEL",
        "AEM_PATH",
        "OPERATION",
        CALLER_INPUTS,
    ];
    const OPT_IN: [&str; 2] = ["AEM_PATH", "OPERATION"];

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn seal(bound: Value) -> Seal {
        let actions = BTreeMap::from([("aem-get".to_string(), map(bound))]);
        Seal::parse(&Seal::bind(&actions).unwrap().to_json()).unwrap()
    }

    fn verify(seal: &Seal, params: Value) -> Result<(), Error> {
        seal.verify(
            Some("/ns/ims-action/__secured_aem-get"),
            &map(params),
            &KNOWN,
            &OPT_IN,
            &[],
        )
    }

    #[test]
    fn bound_inputs_pass_and_added_changed_or_cleared_ones_are_named() {
        let s = seal(json!({"OAUTHS2S_CLIENT_SECRET": "s3cret", "OPERATION": "aem-get", "LOG_LEVEL": ""}));
        let bound =
            json!({"OAUTHS2S_CLIENT_SECRET": "s3cret", "OPERATION": "aem-get", "LOG_LEVEL": "", "junk": 1});
        assert!(verify(&s, bound.clone()).is_ok());
        for (name, value) in [
            ("LOG_LEVEL", json!("debug")),
            ("OPERATION", json!("aem-quota")),
            ("OAUTHS2S_CLIENT_SECRET", json!("")),
            ("AEM_PATH", json!("/etc/passwd.json")),
        ] {
            let mut p = bound.clone();
            p[name] = value;
            let e = verify(&s, p).unwrap_err();
            assert_eq!(e.status_code(), 400, "{name}: {e}");
            assert!(e.to_string().contains(&format!("'{name}'")), "{e}");
        }
    }

    #[test]
    fn opted_in_request_inputs_are_free_unless_bound() {
        let s = seal(json!({"OPERATION": "aem-get", "CALLER_INPUTS": "AEM_PATH, OPERATION"}));
        let base = json!({"OPERATION": "aem-get", "CALLER_INPUTS": "AEM_PATH, OPERATION"});
        let mut p = base.clone();
        p["AEM_PATH"] = json!("/content/x.json");
        assert!(verify(&s, p).is_ok());
        let mut p = base.clone();
        p["OPERATION"] = json!("aem-quota");
        assert!(verify(&s, p).is_err(), "a bound input stays bound");
        let mut p = base;
        p["CALLER_INPUTS"] = json!("AEM_PATH,OPERATION,LOG_LEVEL");
        assert!(verify(&s, p).is_err(), "CALLER_INPUTS is itself sealed");
        let bad = seal(json!({"CALLER_INPUTS": "LOG_LEVEL"}));
        let e = verify(&bad, json!({"CALLER_INPUTS": "LOG_LEVEL"})).unwrap_err();
        assert_eq!(e.status_code(), 500, "{e}");
    }

    #[test]
    fn objects_fingerprint_whatever_their_key_order() {
        let s = seal(json!({"OAUTHS2S_CLIENT_SECRET": {"b": 1, "a": [true, null, "x"]}}));
        let p: Value =
            serde_json::from_str(r#"{"OAUTHS2S_CLIENT_SECRET": {"a": [true, null, "x"], "b": 1}}"#).unwrap();
        assert!(verify(&s, p).is_ok());
    }

    #[test]
    fn an_unknown_action_or_a_damaged_seal_is_a_configuration_error() {
        let s = seal(json!({}));
        let e = s
            .verify(Some("/ns/p/other"), &Map::new(), &KNOWN, &OPT_IN, &[])
            .unwrap_err();
        assert_eq!(e.status_code(), 500);
        assert!(
            e.to_string().contains("'other'") && e.to_string().contains("aem-get"),
            "{e}"
        );
        assert!(s.verify(None, &Map::new(), &KNOWN, &OPT_IN, &[]).is_err());
        for text in [
            "",
            "{}",
            r#"{"format":"ims-action seal 1","salt":"short","actions":{}}"#,
        ] {
            assert!(Seal::parse(text).is_err(), "{text}");
        }
        assert_eq!(action_key("/ns/pkg/__secured_aem-quota"), "aem-quota");
        assert_eq!(action_key("aem-quota-native"), "aem-quota-native");
    }

    #[test]
    fn every_departure_is_named_in_one_answer() {
        let s = seal(json!({"OAUTHS2S_CLIENT_SECRET": "s3cret", "OPERATION": "aem-get"}));
        let e = verify(
            &s,
            json!({"OPERATION": "aem-quota", "LOG_LEVEL": "debug", "AEM_PATH": "/x"}),
        )
        .unwrap_err();
        assert_eq!(
            e,
            Error::SealMismatch {
                added: vec!["AEM_PATH".into(), "LOG_LEVEL".into()],
                changed: vec!["OPERATION".into()],
                missing: vec!["OAUTHS2S_CLIENT_SECRET".into()],
                for_web_caller: false,
            }
        );
        assert!(s.vouches_for(Some("/ns/p/aem-get"), "OPERATION", Some(&json!("aem-get"))));
        assert!(!s.vouches_for(Some("/ns/p/aem-get"), "OPERATION", Some(&json!("aem-quota"))));
        assert!(!s.vouches_for(Some("/ns/p/aem-get"), "LOG_LEVEL", Some(&json!("debug"))));
        assert!(s.vouches_for(Some("/ns/p/aem-get"), "LOG_LEVEL", None));
    }

    #[test]
    fn fingerprints_compare_whole() {
        assert!(same_fingerprint("abc", "abc"));
        assert!(!same_fingerprint("abc", "abd"));
        assert!(!same_fingerprint("abc", "ab"));
        assert!(!same_fingerprint("", "a"));
    }

    /// A FIFO (or a directory) at the seal's path is refused without being read: reading a FIFO
    /// with no writer would block the activation forever.
    #[test]
    fn a_seal_path_that_is_not_a_regular_file_is_refused_unread() {
        let dir = std::env::temp_dir().join(format!("ims-action-seal-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("ims-action.seal.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(match Sealing::from_path(&path, true) {
                Sealing::Broken(why) => why,
                other => format!("{other:?}"),
            });
        });
        let why = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the FIFO was read (and blocked)");
        assert!(why.contains("is not a regular file"), "{why}");
        match Sealing::from_path(&dir, true) {
            Sealing::Broken(why) => assert!(why.contains("is not a regular file"), "{why}"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_reveals_no_value() {
        let text = Seal::bind(&BTreeMap::from([(
            "a".to_string(),
            map(json!({"OAUTHS2S_CLIENT_SECRET": "p8e-very-secret-value"})),
        )]))
        .unwrap()
        .to_json();
        assert!(!text.contains("p8e-very-secret-value"), "{text}");
        assert!(text.contains("OAUTHS2S_CLIENT_SECRET"));
    }
}
