//! The RESP reader (`token::store::resp::read_reply`) over arbitrary bytes, read through a
//! reader that hands out a fuzzer-chosen (tiny) number of bytes at a time, so that lines and
//! bulk strings straddle refills as they do on a socket. Oracle: no panic; never more than
//! `MAX_REPLY` bytes consumed; a reply of the type asked for (or an error reply); and a
//! status, bulk or array reply is exactly the bytes it consumed, written back.
#![no_main]

use std::io::{self, BufRead, Read};

use ims_action::token::store::resp::{Expect, MAX_REPLY, Reply, read_reply};
use libfuzzer_sys::fuzz_target;

/// A slice read `chunk` bytes at a time.
struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Chunked<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let end = (self.pos + self.chunk).min(self.data.len());
        Ok(&self.data[self.pos..end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
    }
}

fn encode(reply: &Reply) -> Option<Vec<u8>> {
    let bulk = |out: &mut Vec<u8>, value: &Option<Vec<u8>>| match value {
        None => out.extend_from_slice(b"$-1\r\n"),
        Some(v) => {
            out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    };
    let mut out = Vec::new();
    match reply {
        Reply::Status(s) => {
            out.push(b'+');
            out.extend_from_slice(s);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Bulk(v) => bulk(&mut out, v),
        Reply::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                bulk(&mut out, item);
            }
        }
        Reply::Error(_) | Reply::Int(_) => return None,
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let expect = match control % 6 {
        0 => Expect::Status,
        1 => Expect::StatusOrNil,
        2 => Expect::Bulk,
        3 => Expect::Int,
        4 => Expect::Array(2),
        _ => Expect::Array(usize::from(control >> 4)),
    };
    let mut reader = Chunked {
        data: input,
        pos: 0,
        chunk: usize::from(control >> 3 & 0x1f) + 1,
    };
    let reply = read_reply(&mut reader, expect);
    assert!(reader.pos <= MAX_REPLY, "read {} bytes", reader.pos);
    let Ok(reply) = reply else { return };
    let type_ok = match (&reply, expect) {
        (Reply::Error(_), _) => true,
        (Reply::Status(_), Expect::Status | Expect::StatusOrNil) => true,
        (Reply::Bulk(None), Expect::StatusOrNil) => true,
        (Reply::Bulk(_), Expect::Bulk) => true,
        (Reply::Int(_), Expect::Int) => true,
        (Reply::Array(items), Expect::Array(n)) => items.len() == n,
        _ => false,
    };
    assert!(type_ok, "{reply:?} for {expect:?}");
    if let Some(bytes) = encode(&reply) {
        assert_eq!(bytes.as_slice(), &input[..reader.pos], "{reply:?}");
    }
});
