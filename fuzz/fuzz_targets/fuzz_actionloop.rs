//! The actionloop reader/writer (`runtime::actionloop::serve`) over arbitrary bytes, read
//! through a `BufReader` of a fuzzer-chosen (tiny) capacity so that lines straddle buffer
//! refills. Oracle: exactly one reply line per input line (blank and whitespace-only lines
//! included; nothing after the final newline is not a line), in order; each reply is the
//! handler's answer, byte for byte, when that line parses as an activation and a 400
//! otherwise; the ack comes first and only when asked for.
#![no_main]

use std::io::BufReader;

use ims_action::runtime::actionloop::{parse_activation, serve};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn answer(params: Value, activation: &ims_action::Activation) -> Value {
    json!({"params": params, "id": activation.activation_id, "deadline": activation.deadline_ms})
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let ack = control & 0x80 != 0;
    let capacity = usize::from(control & 0x0f) + 1;
    let mut out = Vec::new();
    let reader = BufReader::with_capacity(capacity, input);
    if let Err(e) = serve(reader, &mut out, ack, answer) {
        panic!("serve failed on in-memory I/O: {e}");
    }
    let text = match std::str::from_utf8(&out) {
        Ok(t) => t,
        Err(e) => panic!("the replies are not UTF-8: {e}"),
    };
    assert!(text.is_empty() || text.ends_with('\n'), "last reply not ended");
    let mut replies = text.lines();
    if ack {
        assert_eq!(replies.next(), Some("{\"ok\":true}"));
    }
    let mut segments: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    // What follows the last newline is a line only if it holds at least one byte.
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    for segment in segments {
        let Some(line) = replies.next() else {
            panic!("no reply for {:?}", String::from_utf8_lossy(segment));
        };
        match parse_activation(segment) {
            // Compared as text: serde_json's default float parsing does not round-trip every
            // long decimal, so re-parsing the reply could differ in the last bit.
            Ok((params, activation)) => match serde_json::to_string(&answer(params, &activation)) {
                Ok(expected) => assert_eq!(line, expected),
                Err(e) => panic!("the handler's answer does not serialise: {e}"),
            },
            Err(_) => {
                let reply: Value = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(e) => panic!("reply is not JSON ({e}): {line}"),
                };
                assert_eq!(reply["error"]["statusCode"], 400, "{reply}");
            }
        }
    }
    assert_eq!(replies.next(), None, "more replies than lines");
});
