//! `Action::handle` over arbitrary params, with the network switched off and an empty allowlist.
//!
//! The bytes are tried twice: as the params JSON itself, and as a raw actionloop activation line
//! (`{"value": …, "deadline": …}`). Whatever they hold, the action must answer with a result of
//! the documented shape and a status it documents: never a panic (libFuzzer's hook aborts on
//! one, even inside `catch_unwind`) and never a 500, which only a bug of ours produces.
#![no_main]

use std::sync::OnceLock;

use ims_action::endpoint::AllowList;
use ims_action::http::HttpClient;
use ims_action::runtime::actionloop::parse_activation;
use ims_action::token::TokenCache;
use ims_action::{Action, Activation};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Formats every record it is given and throws the text away, so that the `Display` code
/// behind each log line runs too (the level follows each activation's `LOG_LEVEL`).
struct Sink;

impl log::Log for Sink {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let _ = std::hint::black_box(record.args().to_string());
    }

    fn flush(&self) {}
}

static SINK: Sink = Sink;

fn action() -> &'static Action {
    static ACTION: OnceLock<Action> = OnceLock::new();
    ACTION.get_or_init(|| {
        let _ = log::set_logger(&SINK);
        Action::new(AllowList::parse(""), TokenCache::in_memory()).with_http(HttpClient::offline())
    })
}

fn check(result: &Value) {
    let Value::Object(r) = result else {
        panic!("the result is not an object: {result}");
    };
    match (r.get("statusCode"), r.get("error")) {
        (Some(code), None) => assert_eq!(code, 200, "{result}"),
        (None, Some(error)) => {
            let status = error["statusCode"].as_u64().unwrap_or(0);
            assert!(
                matches!(status, 400 | 403 | 502 | 504),
                "unexpected status {status}: {result}"
            );
            assert!(error["body"]["error"].is_string(), "{result}");
        }
        _ => panic!("neither a success nor an error: {result}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let action = action();
    if let Ok(params) = serde_json::from_slice::<Value>(data) {
        check(&action.handle(params, &Activation::default()));
    }
    if let Ok((params, activation)) = parse_activation(data) {
        check(&action.handle(params, &activation));
    }
});
