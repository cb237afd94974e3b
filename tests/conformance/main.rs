//! Conformance with the real OpenWhisk proxies: the `ims-action` binary driven through the
//! unmodified Go ActionLoop proxy (apache/openwhisk-runtime-go) and dockerskeleton proxy
//! (apache/openwhisk-runtime-docker), vendored in `tests/openwhisk-proxies/`, exactly as an
//! invoker drives a container: `POST /init` with the zip, then `POST /run` per activation,
//! against the emulator on 127.0.0.1.
//!
//! The binary is the release build named by `IMS_ACTION_RELEASE_BIN` (`make test`), else the
//! debug build cargo made for this test run.

#[path = "../common/mod.rs"]
mod common;

mod deployment;
mod dockerskeleton;
mod go_actionloop;
mod invoker;
mod proxy;

use common::*;
use serde_json::{Value, json};

/// A request, and what only its own answer looks like: a reply handed to the wrong request
/// fails the check.
pub struct Case {
    pub params: Value,
    pub status: u64,
    pub expect: Expect,
}

pub enum Expect {
    /// The JSON pointer's value in the result.
    At(&'static str, Value),
    /// An error whose message names this input.
    ErrorNaming(&'static str),
}

impl Case {
    pub fn check(&self, result: &Value, what: &str) {
        assert_eq!(status(result), self.status, "{what}: {result}");
        match &self.expect {
            Expect::At(pointer, want) => {
                assert_eq!(
                    result.pointer(pointer),
                    Some(want),
                    "{what}: {pointer} in {result}"
                )
            }
            Expect::ErrorNaming(input) => {
                assert!(message(result).contains(input), "{what}: {result}")
            }
        }
    }
}

pub fn aem_get(w: &World, path: &str) -> Value {
    with(w.oauth(), json!({"OPERATION": "aem-get", "AEM_PATH": path}))
}

/// Eight requests with eight different answers (two without any upstream call).
pub fn cases(w: &World) -> Vec<Case> {
    let ok = |params, pointer, want| Case {
        params,
        status: 200,
        expect: Expect::At(pointer, want),
    };
    let missing = |name: &'static str| Case {
        params: without(w.oauth(), &[name]),
        status: 400,
        expect: Expect::ErrorNaming(name),
    };
    vec![
        ok(w.oauth(), "/body/filters/imsOrgId", json!(w.env["IMS_ORG_ID"])),
        ok(
            aem_get(w, "/content/dam/demo.json"),
            "/body/jcr:title",
            json!("Demo"),
        ),
        missing("OAUTHS2S_CLIENT_SECRET"),
        ok(
            aem_get(w, "/content/dam/demo/hero.jpg.json"),
            "/body/jcr:uuid",
            json!("5c0d2b9e-7d43-4e0a-9d6f-2b8f3f5f7a11"),
        ),
        ok(
            aem_get(w, "/api/assets/demo.json"),
            "/body/properties/name",
            json!("demo"),
        ),
        Case {
            params: aem_get(w, "/content/dam/nothing-here.json"),
            status: 404,
            expect: Expect::At("/error/statusCode", json!(404)),
        },
        missing("IMS_ORG_ID"),
        ok(
            aem_get(w, "/api/assets.json"),
            "/body/properties/elements",
            json!(2),
        ),
    ]
}

/// After a request that is not a good activation, the next one gets its own answer, from the
/// same process.
pub fn then_a_good_one(c: &invoker::Container, cases: &[Case], i: usize, after: &str) {
    let case = &cases[i % cases.len()];
    let result = c.run(&case.params, &format!("good-{i}"));
    case.check(&result, &format!("the request after {after}"));
}

/// Nothing secret in `text`: the namespace key, the client secret, the caller's token.
pub fn assert_no_secrets(w: &World, text: &str, what: &str) {
    for secret in [
        invoker::API_KEY,
        w.env["OAUTHS2S_CLIENT_SECRET"].as_str(),
        CALLER_TOKEN,
    ] {
        assert!(!text.contains(secret), "{what} quotes a secret");
    }
}
