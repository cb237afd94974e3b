//! The OpenWhisk actionloop protocol: one long-lived process per container. Per activation the
//! proxy writes one JSON line on stdin (`{value, namespace, action_name, activation_id,
//! transaction_id, deadline, api_key?}`) and reads exactly one JSON line from file descriptor 3.
//! With `__OW_WAIT_FOR_ACK` non-empty the proxy first waits for `{"ok":true}` on fd 3 — and only
//! then: an unexpected ack would shift every later result by one.
//!
//! Every line gets exactly one reply, since the Go proxy waits for one per line it writes: a
//! blank line, a line that is not JSON, or any failure inside one activation gets an error
//! result and the loop goes on; panics are caught at the activation boundary (release builds
//! unwind).
//!
//! The Node launcher asks for another framing, many activations at once, with
//! `IMS_ACTION_MULTIPLEX=1`: see [`super::multiplex`].

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use serde_json::Value;

use crate::Action;
use crate::action::result;
use crate::activation::Activation;
use crate::error::Error;

pub use super::line::{MAX_LINE, parse_activation};
use super::line::{ReadLine, read_line};

/// Whether file descriptor 3 (the proxy's result pipe) is open.
pub fn results_fd_open() -> bool {
    std::fs::metadata("/proc/self/fd/3").is_ok()
}

/// Serves activations until stdin ends, on the real stdin and `results` (fd 3: a pipe under
/// the Go proxy, a socket under Node's `child_process`).
pub fn main(results: io::Result<File>) -> ExitCode {
    let results = match results {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ims-action: cannot open the result pipe (fd 3): {e}");
            return ExitCode::from(2);
        }
    };
    let ack = std::env::var("__OW_WAIT_FOR_ACK").is_ok_and(|v| !v.is_empty());
    if super::multiplex::requested() {
        return super::multiplex::main(results, ack);
    }
    let action = Action::from_env();
    let stdin = io::stdin().lock();
    super::exit_code(serve(stdin, results, ack, |params, activation| {
        action.handle(params, activation)
    }))
}

/// The loop, over any reader and writer so that it can be tested on its own.
pub fn serve(
    mut input: impl BufRead,
    mut results: impl Write,
    ack: bool,
    mut handler: impl FnMut(Value, &Activation) -> Value,
) -> io::Result<()> {
    if ack {
        results.write_all(b"{\"ok\":true}\n")?;
        results.flush()?;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        let too_long = match read_line(&mut input, &mut line)? {
            ReadLine::Eof => return Ok(()),
            ReadLine::Line => false,
            ReadLine::TooLong => true,
        };
        let reply = if too_long {
            result::failure(&Error::invalid(
                "activation",
                format!("is larger than {MAX_LINE} bytes"),
            ))
        } else {
            match parse_activation(&line) {
                Ok((params, activation)) => catch_unwind(AssertUnwindSafe(|| handler(params, &activation)))
                    .unwrap_or_else(|_| {
                        result::failure(&Error::Internal("the action failed unexpectedly".into()))
                    }),
                Err(e) => result::failure(&e),
            }
        };
        // Logs of this activation must land before the proxy's end-of-activation marker.
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        let mut out =
            serde_json::to_vec(&reply).unwrap_or_else(|_| b"{\"error\":\"unserialisable result\"}".to_vec());
        out.push(b'\n');
        results.write_all(&out)?;
        results.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use serde_json::json;

    fn run(input: &str, ack: bool) -> Vec<Value> {
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out, ack, |params, activation| {
            if params.get("panic").is_some() {
                panic!("boom");
            }
            json!({"echo": params, "deadline": activation.deadline_ms, "id": activation.activation_id})
        })
        .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_reply_per_line_with_that_activations_context() {
        let replies = run(
            "{\"value\":{\"a\":1},\"activation_id\":\"x1\",\"deadline\":\"1700000000000\"}\n\
             {\"value\":{\"a\":2},\"activation_id\":\"x2\",\"deadline\":1700000000001}\n",
            false,
        );
        assert_eq!(replies.len(), 2);
        assert_eq!(
            replies[0],
            json!({"echo": {"a": 1}, "deadline": 1_700_000_000_000u64, "id": "x1"})
        );
        assert_eq!(replies[1]["id"], "x2");
        assert_eq!(replies[1]["deadline"], 1_700_000_000_001u64);
    }

    #[test]
    fn the_line_carries_the_namespace_and_api_key() {
        let line = br#"{"value":{},"namespace":"ns1","api_key":"uuid:secret-part","deadline":"1"}"#;
        let (_, a) = parse_activation(line).unwrap();
        assert_eq!(a.namespace.as_deref(), Some("ns1"));
        assert_eq!(a.api_key.as_ref().map(Secret::expose), Some("uuid:secret-part"));
        assert!(!format!("{a:?}").contains("secret-part"));
        let (_, a) = parse_activation(br#"{"value":{},"api_key":""}"#).unwrap();
        assert_eq!(a.api_key, None);
    }

    #[test]
    fn ack_only_when_asked() {
        assert_eq!(run("", true), vec![json!({"ok": true})]);
        assert!(run("", false).is_empty());
    }

    #[test]
    fn bad_lines_and_panics_get_error_replies_and_the_loop_goes_on() {
        let replies = run(
            "not json\n[1,2]\n{\"value\":{\"panic\":1}}\n\u{0}\u{1}\n{\"value\":{\"ok\":1}}\n",
            false,
        );
        assert_eq!(replies.len(), 5);
        for r in &replies[..4] {
            assert!(r["error"]["statusCode"].as_u64().is_some(), "{r}");
        }
        assert_eq!(replies[2]["error"]["statusCode"], 500);
        assert_eq!(replies[4]["echo"], json!({"ok": 1}));
    }

    #[test]
    fn blank_and_whitespace_only_lines_each_get_an_error_reply() {
        // The Go proxy waits for one reply per line it writes: skipping one would hand every
        // later request the previous one's answer.
        let replies = run(
            "\n   \n\t\r\n{\"value\":{\"ok\":1}}\n\n{\"value\":{\"ok\":2}}\n",
            false,
        );
        assert_eq!(replies.len(), 6, "{replies:?}");
        for i in [0, 1, 2, 4] {
            assert_eq!(replies[i]["error"]["statusCode"], 400, "{}", replies[i]);
            let message = replies[i]["error"]["body"]["error"].as_str().unwrap();
            assert!(message.contains("blank line"), "{message}");
        }
        assert_eq!(replies[3]["echo"], json!({"ok": 1}));
        assert_eq!(replies[5]["echo"], json!({"ok": 2}));
        // With the ack too: the ack, then one reply per line.
        let replies = run(" \n{\"value\":{}}\n", true);
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0], json!({"ok": true}));
        assert_eq!(replies[1]["error"]["statusCode"], 400);
        assert_eq!(replies[2]["echo"], json!({}));
    }

    #[test]
    fn whitespace_without_a_final_newline_is_a_line_but_nothing_at_all_is_not() {
        assert_eq!(run("  \t", false).len(), 1);
        assert!(run("", false).is_empty());
        assert_eq!(run("{\"value\":{}}\n", false).len(), 1);
    }

    #[test]
    fn a_line_without_a_final_newline_is_served_then_eof_ends() {
        let replies = run("{\"value\":{\"a\":1}}", false);
        assert_eq!(replies.len(), 1);
    }

    #[test]
    fn an_oversized_line_is_refused_and_the_next_served() {
        let big = format!(
            "{{\"value\":{{\"x\":\"{}\"}}}}\n{{\"value\":{{\"a\":3}}}}\n",
            "y".repeat(MAX_LINE + 10)
        );
        let replies = run(&big, false);
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0]["error"]["statusCode"], 400);
        assert_eq!(replies[1]["echo"], json!({"a": 3}));
    }
}
