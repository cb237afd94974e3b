//! The multiplexed actionloop: many activations at once over one process, for the Node launcher
//! (actions/ims-action/index.js), which asks for it with `IMS_ACTION_MULTIPLEX=1` in the child's
//! environment. The plain protocol ([`super::actionloop`]) is what the OpenWhisk proxies speak
//! and stays as it is: they send one activation at a time and read replies in order.
//!
//! Each stdin line is `<id> <activation JSON>` (the JSON as in the plain protocol) and each
//! reply on fd 3 is `<id> <result JSON>`, in whatever order activations finish. Each activation
//! runs wholly on a thread of its own, started for it: its secret set ([`crate::scrub`]), its log
//! level and its log lines' `[activation id]` tag are that thread's, and a panic stops at its
//! boundary. The threads share the action: one token cache (one IMS request per credential for
//! a burst), one HTTP connection pool, the shared store client. At most `IMS_ACTION_MAX_IN_FLIGHT`
//! (default [`DEFAULT_MAX_IN_FLIGHT`]) run at once; further lines wait unread in the pipe.
//!
//! Nothing here cuts an activation at its deadline: its HTTP budget does, and the launcher
//! answers 504 for one that overruns and drops its late reply. Lines are read and answered
//! independently, so a slow or hung activation never holds another's reply.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::{Condvar, Mutex};

use serde_json::Value;

use super::line::{MAX_LINE, ReadLine, parse_activation, read_line};
use crate::Action;
use crate::action::result;
use crate::activation::Activation;
use crate::error::Error;
use crate::logging;

/// The environment variable the launcher sets to `1` to ask for this framing.
pub const MULTIPLEX_ENV: &str = "IMS_ACTION_MULTIPLEX";
/// The environment variable that bounds the activations run at once.
pub const MAX_IN_FLIGHT_ENV: &str = "IMS_ACTION_MAX_IN_FLIGHT";
/// Activations run at once by default: Adobe I/O Runtime's default `limits.concurrency`, the
/// most one container is sent at once (and the idle connections the HTTP pool keeps per host).
pub const DEFAULT_MAX_IN_FLIGHT: usize = crate::http::MAX_IDLE_CONNECTIONS;
/// The stack of an activation's thread. Measured with 200 at once over TLS (tests/crowd.rs):
/// each touches 50 to 70 KiB in a release build, about 160 KiB in a debug one. Untouched pages
/// cost no memory, and an overflow would abort the process with every activation in flight, so
/// the margin is wide: paths not measured (a deep upstream body scrubbed, an odd certificate
/// chain) have room.
pub const STACK_SIZE: usize = 512 * 1024;
/// The longest id accepted (the launcher sends decimal counters).
const MAX_ID: usize = 32;

/// Whether the launcher asked for the multiplexed framing.
pub fn requested() -> bool {
    std::env::var(MULTIPLEX_ENV).is_ok_and(|v| v.trim() == "1")
}

/// `IMS_ACTION_MAX_IN_FLIGHT` (1 to 10000), else [`DEFAULT_MAX_IN_FLIGHT`].
pub fn max_in_flight() -> usize {
    match std::env::var(MAX_IN_FLIGHT_ENV) {
        Err(_) => DEFAULT_MAX_IN_FLIGHT,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                // ops: max-in-flight
                log::warn!(
                    "{MAX_IN_FLIGHT_ENV} must be a whole number from 1 to 10000; using {DEFAULT_MAX_IN_FLIGHT}"
                );
                DEFAULT_MAX_IN_FLIGHT
            }
        },
    }
}

/// Serves multiplexed activations until stdin ends, then waits for those in flight.
pub fn main(results: File, ack: bool) -> ExitCode {
    logging::per_thread_levels();
    let action = Action::from_env();
    let stdin = io::stdin().lock();
    super::exit_code(serve(
        stdin,
        results,
        ack,
        max_in_flight(),
        |params, activation| action.handle(params, activation),
    ))
}

/// The loop, over any reader and writer so that it can be tested on its own. Returns when
/// `input` ends and every activation started has replied.
pub fn serve(
    mut input: impl BufRead,
    results: impl Write + Send,
    ack: bool,
    max_in_flight: usize,
    handler: impl Fn(Value, &Activation) -> Value + Sync,
) -> io::Result<()> {
    let replies = Replies(Mutex::new(results));
    if ack {
        replies.write_line(b"{\"ok\":true}\n")?;
    }
    let slots = Slots::new(max_in_flight.max(1));
    let handler = &handler;
    let (replies, slots) = (&replies, &slots);
    std::thread::scope(|scope| {
        let mut line = Vec::new();
        loop {
            line.clear();
            let too_long = match read_line(&mut input, &mut line)? {
                ReadLine::Eof => return Ok(()),
                ReadLine::Line => false,
                ReadLine::TooLong => true,
            };
            let Some((id, rest)) = split_id(&line) else {
                // Only the launcher writes these lines; without an id there is no one to answer.
                // ops: multiplex-no-id
                log::error!(
                    "a multiplexed activation line without an id ({} bytes): ignored",
                    line.len()
                );
                continue;
            };
            if too_long {
                let e = Error::invalid("activation", format!("is larger than {MAX_LINE} bytes"));
                replies.reply(&id, &result::failure(&e))?;
                continue;
            }
            let (params, activation) = match parse_activation(rest) {
                Ok(parsed) => parsed,
                Err(e) => {
                    replies.reply(&id, &result::failure(&e))?;
                    continue;
                }
            };
            slots.take();
            let tag = activation
                .activation_id
                .clone()
                .unwrap_or_else(|| format!("#{id}"));
            let reply_id = id.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("activation-{id}"))
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, move || {
                    let _slot = SlotGuard(slots);
                    logging::tag_thread(&tag);
                    let reply = catch_unwind(AssertUnwindSafe(|| handler(params, &activation)))
                        .unwrap_or_else(|_| {
                            result::failure(&Error::Internal("the action failed unexpectedly".into()))
                        });
                    if let Err(e) = replies.reply(&reply_id, &reply) {
                        // ops: multiplex-reply-failed
                        log::error!("cannot write the reply on fd 3: {e}");
                    }
                });
            if let Err(e) = spawned {
                slots.give_back();
                // ops: multiplex-no-thread
                log::error!("cannot start a thread for an activation: {e}");
                let e = Error::Internal(
                    "the action could not start this activation (too many threads); retry".into(),
                );
                replies.reply(&id, &result::failure(&e))?;
            }
        }
    })
}

/// `<id> <rest>`: the id (1 to [`MAX_ID`] ASCII letters, digits, `-` or `_`) and the rest.
fn split_id(line: &[u8]) -> Option<(String, &[u8])> {
    let space = line.iter().position(|b| *b == b' ')?;
    let id = &line[..space];
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    let id = std::str::from_utf8(id).ok().filter(|_| ok)?;
    Some((id.to_string(), &line[space + 1..]))
}

/// fd 3, shared by every activation: each reply is one whole line written under the lock.
struct Replies<W>(Mutex<W>);

impl<W: Write> Replies<W> {
    fn reply(&self, id: &str, reply: &Value) -> io::Result<()> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(id.as_bytes());
        out.push(b' ');
        if serde_json::to_writer(&mut out, reply).is_err() {
            out.truncate(id.len() + 1);
            out.extend_from_slice(b"{\"error\":\"unserialisable result\"}");
        }
        out.push(b'\n');
        self.write_line(&out)
    }

    fn write_line(&self, line: &[u8]) -> io::Result<()> {
        // A writer poisoned by a panic mid-write is still the pipe: keep writing to it.
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(line)?;
        w.flush()
    }
}

/// Activations in flight, bounded.
struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    fn new(max: usize) -> Slots {
        Slots {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    /// Waits for a free slot and takes it.
    fn take(&self) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
    }

    fn give_back(&self) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(1);
        self.freed.notify_one();
    }
}

/// Gives its slot back however the activation's thread ends.
struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Barrier;

    fn replies(out: &[u8]) -> Vec<(String, Value)> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| {
                let (id, json) = l.split_once(' ').unwrap();
                (id.to_string(), serde_json::from_str(json).unwrap())
            })
            .collect()
    }

    #[test]
    fn each_reply_carries_its_lines_id_and_a_slow_one_holds_no_other() {
        // "1" waits until "2" and "3" have both run: served one at a time, it never would.
        let barrier = Barrier::new(3);
        let input = "1 {\"value\":{\"n\":1}}\n2 {\"value\":{\"n\":2}}\n3 {\"value\":{\"n\":3}}\n";
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out, false, 10, |params, _| {
            barrier.wait();
            json!({"n": params["n"]})
        })
        .unwrap();
        let mut got = replies(&out);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("1".into(), json!({"n": 1})),
                ("2".into(), json!({"n": 2})),
                ("3".into(), json!({"n": 3}))
            ]
        );
    }

    #[test]
    fn bad_lines_panics_and_oversized_lines_are_answered_under_their_id() {
        let big = format!("9 {{\"value\":{{\"x\":\"{}\"}}}}\n", "y".repeat(MAX_LINE + 10));
        let input =
            format!("4 not json\n5 {{\"value\":{{\"panic\":1}}}}\nno-space\n{big}6 {{\"value\":{{}}}}\n");
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out, true, 1, |params, _| {
            if params.get("panic").is_some() {
                panic!("boom");
            }
            json!({"ok": true})
        })
        .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("{\"ok\":true}\n"), "the ack first: {text:.40}");
        let mut got = replies(text.split_once('\n').unwrap().1.as_bytes());
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["4", "5", "6", "9"], "the line without an id gets no reply");
        assert_eq!(got[0].1["error"]["statusCode"], 400);
        assert_eq!(got[1].1["error"]["statusCode"], 500);
        assert_eq!(got[2].1, json!({"ok": true}));
        assert_eq!(got[3].1["error"]["statusCode"], 400);
    }

    #[test]
    fn ids_are_short_plain_words() {
        assert_eq!(split_id(b"17 {}"), Some(("17".into(), &b"{}"[..])));
        assert_eq!(split_id(b"a-b_c {}").map(|(id, _)| id), Some("a-b_c".into()));
        assert_eq!(split_id(b" {}"), None);
        assert_eq!(split_id(b"{} x"), None);
        assert_eq!(split_id(&[b'1'; MAX_ID + 1]), None);
    }
}
