//! What an OpenWhisk invoker sends: the action's zip (`exec` at its top) in `/init`, then one
//! `/run` per activation with the activation's context beside the params.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

use crate::proxy::{Proxy, Reply};

/// The namespace key the invoker passes with each activation (`api_key`): a platform secret the
/// action never needs, so it must never show up in a result or a log.
pub const API_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:ns-key-d0c9b3a1e2f4";

/// The action every container runs unless a test names another (`/namespace/package/action`).
pub const ACTION_NAME: &str = "/guest/ims-action/aem-quota";

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The binary under test: the release static binary named by `IMS_ACTION_RELEASE_BIN` (what
/// `make test` passes after `make build`), else the debug binary cargo built for these tests.
pub fn action_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = match std::env::var_os("IMS_ACTION_RELEASE_BIN").filter(|v| !v.is_empty()) {
            Some(p) => Path::new(env!("CARGO_MANIFEST_DIR")).join(p),
            None => crate::common::bin(),
        };
        assert!(
            path.is_file(),
            "IMS_ACTION_RELEASE_BIN names {}, which is not a file (run `make build` first)",
            path.display()
        );
        eprintln!("conformance: driving {}", path.display());
        path
    })
    .clone()
}

/// The deployable zip: the binary as `exec` (mode 755) at the top, plus `extra` files beside it.
pub fn action_zip(extra: &[(&str, &[u8])]) -> Vec<u8> {
    let exec = std::fs::read(action_binary()).expect("read the action binary");
    let mut zip = ZipWriter::default();
    zip.add("exec", 0o755, &exec);
    for (name, data) in extra {
        zip.add(name, 0o644, data);
    }
    zip.finish()
}

/// The zip of the binary alone, base64-encoded once per test process (the debug binary is
/// tens of MiB).
pub fn plain_zip() -> &'static Code {
    static ZIP: OnceLock<Code> = OnceLock::new();
    ZIP.get_or_init(|| Code::of(&action_zip(&[])))
}

/// An action's zip as `/init` carries it: base64.
pub struct Code(String);

impl Code {
    pub fn of(zip: &[u8]) -> Code {
        Code(base64::engine::general_purpose::STANDARD.encode(zip))
    }
}

/// `POST /init`'s body for a native (binary) action. Written out by hand: base64 needs no JSON
/// escaping, and serialising a string of tens of MiB is slow in a debug build.
pub fn init_body(code: &Code, env: Value) -> Vec<u8> {
    let head = r#"{"value":{"binary":true,"main":"main","env":"#;
    let env = serde_json::to_string(&env).expect("env");
    format!(r#"{head}{env},"code":"{}"}}}}"#, code.0).into_bytes()
}

/// `POST /run`'s body: the params in `value`, the activation's context around them, the
/// deadline a minute away as epoch milliseconds in a string (as the invoker sends it).
pub fn run_body(params: &Value, id: &str) -> Vec<u8> {
    serde_json::to_vec(&run_envelope(params, id)).expect("run body")
}

pub fn run_envelope(params: &Value, id: &str) -> Value {
    run_envelope_for(ACTION_NAME, params, id)
}

pub fn run_envelope_for(action_name: &str, params: &Value, id: &str) -> Value {
    json!({
        "value": params,
        "namespace": "guest",
        "action_name": action_name,
        "activation_id": id,
        "transaction_id": format!("tx-{id}"),
        "api_key": API_KEY,
        "deadline": (now_ms() + 60_000).to_string(),
    })
}

/// A proxy with the action initialised in it: one container.
pub struct Container {
    pub proxy: Proxy,
}

impl Container {
    /// Starts `proxy` and initialises it with `code` and `/init`'s `env`; panics unless the
    /// proxy accepts it.
    pub fn init(proxy: Proxy, code: &Code, env: Value) -> Container {
        let reply = proxy.post("/init", &init_body(code, env));
        assert_eq!(
            reply.status,
            200,
            "/init refused: {}\n{}",
            reply.text(),
            proxy.stderr()
        );
        Container { proxy }
    }

    /// One activation: `/run` with `params`; the proxy's HTTP status and body.
    pub fn run_raw(&self, body: &[u8]) -> Reply {
        self.proxy.post("/run", body)
    }

    /// One activation whose result must come back as the action's JSON object with HTTP 200
    /// (both proxies answer otherwise only for their own errors).
    pub fn run(&self, params: &Value, id: &str) -> Value {
        self.result_of(self.run_raw(&run_body(params, id)))
    }

    /// One activation of the action `/guest/ims-action/<action>`.
    pub fn run_as(&self, action: &str, params: &Value, id: &str) -> Value {
        let envelope = run_envelope_for(&format!("/guest/ims-action/{action}"), params, id);
        self.result_of(self.run_raw(&serde_json::to_vec(&envelope).expect("run body")))
    }

    /// The action's result in a proxy's answer; panics when the proxy answered for itself.
    pub fn result_of(&self, reply: Reply) -> Value {
        assert_eq!(
            reply.status,
            200,
            "the proxy answered for itself: {}\n{}",
            reply.text(),
            self.proxy.stderr()
        );
        let result = reply.json();
        assert!(result.is_object(), "{result}");
        result
    }
}

/// A minimal zip writer (stored entries, Unix modes): both proxies unpack it with their
/// language's standard library (Go's archive/zip, Python's zipfile).
#[derive(Default)]
struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

impl ZipWriter {
    fn add(&mut self, name: &str, mode: u32, data: &[u8]) {
        let crc = crc32(data);
        let size = u32::try_from(data.len()).expect("entry under 4 GiB");
        let offset = u32::try_from(self.out.len()).expect("zip under 4 GiB");
        // Local file header.
        self.out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        self.out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        self.out.extend_from_slice(&0u16.to_le_bytes()); // flags
        self.out.extend_from_slice(&0u16.to_le_bytes()); // stored
        self.out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out.extend_from_slice(&size.to_le_bytes());
        self.out.extend_from_slice(&size.to_le_bytes());
        self.out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.out.extend_from_slice(&0u16.to_le_bytes()); // extra
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(data);
        // Central directory entry: made by Unix (3), so the mode in the high half of the
        // external attributes counts.
        self.central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        self.central.extend_from_slice(&(3u16 << 8 | 20).to_le_bytes());
        self.central.extend_from_slice(&20u16.to_le_bytes());
        self.central.extend_from_slice(&0u16.to_le_bytes());
        self.central.extend_from_slice(&0u16.to_le_bytes());
        self.central.extend_from_slice(&0u32.to_le_bytes());
        self.central.extend_from_slice(&crc.to_le_bytes());
        self.central.extend_from_slice(&size.to_le_bytes());
        self.central.extend_from_slice(&size.to_le_bytes());
        self.central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        self.central
            .extend_from_slice(&((0o100_000 | mode) << 16).to_le_bytes());
        self.central.extend_from_slice(&offset.to_le_bytes());
        self.central.extend_from_slice(name.as_bytes());
        self.entries += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        let start = u32::try_from(self.out.len()).expect("zip under 4 GiB");
        let size = self.central.len() as u32;
        self.out.append(&mut self.central);
        self.out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]); // disk numbers
        self.out.extend_from_slice(&self.entries.to_le_bytes());
        self.out.extend_from_slice(&self.entries.to_le_bytes());
        self.out.extend_from_slice(&size.to_le_bytes());
        self.out.extend_from_slice(&start.to_le_bytes());
        self.out.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.out
    }
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, entry) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *entry = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, b| {
        table[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[test]
fn the_zip_writer_matches_a_known_crc() {
    // CRC-32 (IEEE) of "123456789" is the standard check value.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
