//! Shared harness for the end-to-end tests: a fresh `adobe-emulator` on 127.0.0.1 with a fresh,
//! random demo credential set (generated at test time, never checked in), and ways to drive the
//! action in-process (`Action`) or as the `ims-action` binary.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use adobe_emulator::{DemoCredentials, Emulator};
use ims_action::action::seal::{Seal, Sealing};
use ims_action::endpoint::AllowList;
use ims_action::token::TokenCache;
use ims_action::{Action, Activation};
use serde_json::{Map, Value, json};

/// Inputs of each credential kind, as the demo `.env` names them.
pub const OAUTH: [&str; 4] = [
    "OAUTHS2S_CLIENT_ID",
    "OAUTHS2S_CLIENT_SECRET",
    "OAUTHS2S_CECREDENTIALS_METASCOPES",
    "IMS_ORG_ID",
];
pub const JWT: [&str; 6] = [
    "JWT_CLIENT_ID",
    "JWT_CLIENT_SECRET",
    "JWT_TECHNICAL_ACCOUNT_ID",
    "JWT_IMS_ORG",
    "JWT_METASCOPES",
    "JWT_PRIVATE_KEY",
];
pub const ENDPOINTS: [&str; 4] = [
    "IMS_BASE_URL",
    "AEM_DATA_SERVICE_BASE_URL",
    "ANALYTICS_BASE_URL",
    "AEM_AUTHOR_URL",
];

/// The action name the tests' seals use, as the platform gives it.
pub const ACTION_NAME: &str = "/guest/ims-action/test-action";

/// The seal of a deployment that bound `bound` (an object) to action `test-action`.
pub fn seal_for(bound: &Value) -> Seal {
    let inputs = match bound {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Seal::bind(&BTreeMap::from([("test-action".to_string(), inputs)])).expect("a seal")
}

/// An activation of the sealed test action, with no deadline.
pub fn activation() -> Activation {
    Activation {
        action_name: Some(ACTION_NAME.into()),
        ..Activation::default()
    }
}

/// An emulator with a registered demo credential set.
pub struct World {
    pub emu: Emulator,
    pub demo: DemoCredentials,
    /// The demo `.env`, parsed.
    pub env: HashMap<String, String>,
    /// The demo `.env` text.
    pub env_text: String,
}

impl World {
    pub fn new() -> World {
        let emu = Emulator::start().expect("emulator starts");
        let demo = DemoCredentials::generate();
        demo.register(&emu);
        let env_text = demo.to_env(&emu);
        let env = ims_action::runtime::dotenv::parse(&env_text);
        World {
            emu,
            demo,
            env,
            env_text,
        }
    }

    /// An in-process action allowed to talk to this emulator, with its own token cache.
    pub fn action(&self) -> Action {
        Action::new(AllowList::parse(&self.emu.host_port()), TokenCache::in_memory())
    }

    /// An in-process action deployed with `bound` as its sealed configuration (run it with
    /// [`activation`]).
    pub fn sealed_action(&self, bound: &Value) -> Action {
        self.action().with_sealing(Sealing::Sealed(seal_for(bound)))
    }

    /// The seal of `bound` written to a temp file, for the binary's `IMS_ACTION_SEAL`.
    pub fn seal_file(&self, bound: &Value) -> PathBuf {
        let path = temp_path("seal.json");
        std::fs::write(&path, seal_for(bound).to_json()).expect("write the seal");
        path
    }

    /// Params made of the named `.env` entries plus every endpoint.
    pub fn params(&self, names: &[&str]) -> Value {
        let mut m = Map::new();
        for n in names.iter().chain(ENDPOINTS.iter()) {
            m.insert(n.to_string(), Value::String(self.env[*n].clone()));
        }
        Value::Object(m)
    }

    pub fn oauth(&self) -> Value {
        self.params(&OAUTH)
    }

    pub fn jwt(&self) -> Value {
        self.params(&JWT)
    }

    pub fn aem_credentials(&self) -> Value {
        self.params(&["AEM_SERVICE_CREDENTIALS"])
    }

    pub fn dev_token(&self) -> Value {
        self.params(&["AEM_DEV_TOKEN"])
    }

    /// Every credential kind of the demo `.env` at once (and the org and endpoints).
    pub fn all_credentials(&self) -> Value {
        let mut names: Vec<&str> = OAUTH.iter().chain(JWT.iter()).copied().collect();
        names.extend(["AEM_SERVICE_CREDENTIALS", "AEM_DEV_TOKEN"]);
        self.params(&names)
    }

    /// `AEM_SERVICE_CREDENTIALS` (base64 JSON, as in the demo `.env`) whose certificate expires
    /// `days` days from now (negative: already expired); the key, and so IMS's answer, is the same.
    pub fn aem_credentials_expiring_in(&self, days: i64) -> String {
        use base64::Engine as _;
        let demo = self.demo.clone().with_aem_certificate_days(days);
        base64::engine::general_purpose::STANDARD.encode(demo.aem_service_credentials(&self.emu).to_string())
    }

    /// Runs the action in-process with no deadline.
    pub fn call(&self, action: &Action, params: Value) -> Value {
        action.handle(params, &Activation::default())
    }

    /// Writes the demo `.env` to a temp file and returns its path.
    pub fn env_file(&self) -> PathBuf {
        let path = temp_path("env");
        std::fs::write(&path, &self.env_text).expect("write .env");
        path
    }
}

/// Adds or replaces entries of a params object.
pub fn with(mut params: Value, extra: Value) -> Value {
    if let (Value::Object(p), Value::Object(e)) = (&mut params, extra) {
        p.extend(e);
    }
    params
}

/// Removes entries of a params object.
/// The bearer token a web caller sends in the tests (the caller's own, never an Adobe token).
pub const CALLER_TOKEN: &str = "caller-bearer-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LWNhbGxlci10b2tlbg.sig";

/// The bound params plus what OpenWhisk adds for an HTTP caller from `org` (a GET of a web
/// action; `extra` on top, for another method or a raw-http request's query and body).
pub fn web_call(bound: Value, org: Option<&str>, extra: Value) -> Value {
    let mut headers = json!({
        "authorization": format!("Bearer {CALLER_TOKEN}"),
        "accept": "application/json",
        "user-agent": "curl/8.5.0",
        "x-forwarded-for": "203.0.113.7",
    });
    if let Some(org) = org {
        headers["x-gw-ims-org-id"] = json!(org);
    }
    with(
        with(
            bound,
            json!({"__ow_method": "get", "__ow_headers": headers, "__ow_path": ""}),
        ),
        extra,
    )
}

pub fn without(mut params: Value, names: &[&str]) -> Value {
    if let Value::Object(p) = &mut params {
        for n in names {
            p.remove(*n);
        }
    }
    params
}

/// The status of a result: `statusCode`, or `error.statusCode`.
pub fn status(result: &Value) -> u64 {
    result["statusCode"]
        .as_u64()
        .or_else(|| result["error"]["statusCode"].as_u64())
        .unwrap_or(0)
}

/// The error message of an error result ("" for a success).
pub fn message(result: &Value) -> String {
    result["error"]["body"]["error"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A unique temp path.
pub fn temp_path(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "ims-action-test-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The `ims-action` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ims-action"))
}

/// Runs the binary with `args`, the given environment on top of a clean one (PATH kept), and
/// `stdin` fed in. Returns the output. File descriptor 3 is closed, so that a descriptor this
/// test process inherited can never switch the binary into actionloop mode.
pub fn run_bin(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" 3>&-")
        .arg(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ims-action starts");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("ims-action ends")
}

/// The last line of stdout as JSON.
pub fn last_line(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|_| json!({ "unparsable": line }))
}
