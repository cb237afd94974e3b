//! The Redis protocol (RESP2), the part the token store speaks: commands as arrays of bulk
//! strings, and the replies they get. Replies are bytes from outside (a store at a wrong address,
//! or a hostile one, can send anything), so they are read as bytes, never sliced as text, and
//! bounded as a whole: one budget ([`MAX_REPLY`]) for everything a reply holds, nested or not,
//! checked before anything is allocated; only the reply type the command gets is accepted, and
//! arrays only flat (MGET's bulk strings). Time is bounded by the reader the caller passes in
//! (the Redis connection checks its deadline before every read).
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::io::{self, BufRead, Write};

use super::envelope::MAX_SEALED;

/// The most bytes one reply may hold, framing included: a sealed entry ([`MAX_SEALED`]) and a
/// lock's owner id (MGET), with room for the framing. Nothing we ask for is larger.
pub const MAX_REPLY: usize = MAX_SEALED + 1024;
/// The most digits a length or integer may have (`i64::MAX` has 19).
const MAX_DIGITS: usize = 19;
/// The longest error word kept (`WRONGPASS`, `NOPERM`…).
const MAX_ERROR_WORD: usize = 32;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(Vec<u8>),
    /// `-ERR …`: only its first word (`ERR`, `WRONGPASS`, `NOPERM`…) is kept, never the text,
    /// which a server could fill with what it was sent.
    Error(String),
    /// `:1`.
    Int(i64),
    /// `$3\r\nabc`, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n$1\r\na\r\n$-1\r\n`: bulk strings (or nil) only.
    Array(Vec<Option<Vec<u8>>>),
}

/// The reply type a command gets (an error reply is accepted for every command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `+…`: SET, AUTH, SELECT.
    Status,
    /// `+OK` or a nil bulk: `SET … NX`.
    StatusOrNil,
    /// `$…`: GET.
    Bulk,
    /// `:…`: EVAL of our compare-and-delete.
    Int,
    /// `*n` of bulk strings, exactly `n`: MGET of `n` keys.
    Array(usize),
}

/// Writes one command.
pub fn write_command(out: &mut impl Write, args: &[&[u8]]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(32 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Reads one reply of the type `expect` (or an error reply), within [`MAX_REPLY`] bytes.
pub fn read_reply(input: &mut impl BufRead, expect: Expect) -> io::Result<Reply> {
    let mut reader = Budgeted {
        input,
        left: MAX_REPLY,
    };
    let (kind, rest) = reader.line()?;
    match (kind, expect) {
        (b'-', _) => Ok(Reply::Error(error_word(&rest))),
        (b'+', Expect::Status | Expect::StatusOrNil) => Ok(Reply::Status(rest)),
        (b':', Expect::Int) => parse_int(&rest).map(Reply::Int).ok_or_else(garbage),
        (b'$', Expect::Bulk) => reader.bulk(&rest).map(Reply::Bulk),
        (b'$', Expect::StatusOrNil) => match reader.bulk(&rest)? {
            None => Ok(Reply::Bulk(None)),
            Some(_) => Err(garbage()),
        },
        (b'*', Expect::Array(n)) => {
            if parse_len(&rest) != Some(Len::Some(n)) {
                return Err(garbage());
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                match reader.line()? {
                    (b'$', len) => items.push(reader.bulk(&len)?),
                    // Flat only: nothing we ask for holds an array in an array.
                    _ => return Err(garbage()),
                }
            }
            Ok(Reply::Array(items))
        }
        _ => Err(garbage()),
    }
}

/// A reader that may take at most `left` more bytes.
struct Budgeted<'a, R> {
    input: &'a mut R,
    left: usize,
}

impl<R: BufRead> Budgeted<'_, R> {
    /// One `\r\n`-terminated line: its type byte and the rest, without the `\r\n`.
    fn line(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut line = Vec::new();
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            let (take, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if take > self.left {
                return Err(garbage());
            }
            line.extend_from_slice(buf.get(..take).unwrap_or_default());
            self.input.consume(take);
            self.left -= take;
            if done {
                break;
            }
        }
        let Some(body) = line.strip_suffix(b"\r\n") else {
            return Err(garbage());
        };
        match body.split_first() {
            Some((kind, rest)) => Ok((*kind, rest.to_vec())),
            None => Err(garbage()),
        }
    }

    /// The body of a bulk string whose header said `len`.
    fn bulk(&mut self, len: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let len = match parse_len(len) {
            Some(Len::Nil) => return Ok(None),
            Some(Len::Some(len)) => len,
            None => return Err(garbage()),
        };
        // Checked before anything is allocated: a header may claim any length.
        let with_crlf = len
            .checked_add(2)
            .filter(|n| *n <= self.left)
            .ok_or_else(garbage)?;
        let mut value = vec![0u8; with_crlf];
        self.input.read_exact(&mut value)?;
        self.left -= with_crlf;
        if !value.ends_with(b"\r\n") {
            return Err(garbage());
        }
        value.truncate(len);
        Ok(Some(value))
    }
}

/// A bulk or array length.
#[derive(Debug, PartialEq, Eq)]
enum Len {
    /// `-1`.
    Nil,
    Some(usize),
}

/// `-1`, or ASCII digits (no sign, no space) that fit.
fn parse_len(digits: &[u8]) -> Option<Len> {
    if digits == b"-1" {
        return Some(Len::Nil);
    }
    parse_digits(digits)
        .and_then(|n| usize::try_from(n).ok())
        .map(Len::Some)
}

/// An integer reply: an optional `-`, then ASCII digits.
fn parse_int(text: &[u8]) -> Option<i64> {
    match text.split_first() {
        Some((b'-', digits)) => parse_digits(digits).map(|n| -n),
        _ => parse_digits(text),
    }
}

/// 1 to 19 ASCII digits, no leading zero (Redis never writes one), overflow checked.
fn parse_digits(digits: &[u8]) -> Option<i64> {
    let leading_zero = digits.len() > 1 && digits.first() == Some(&b'0');
    if digits.is_empty() || digits.len() > MAX_DIGITS || leading_zero {
        return None;
    }
    digits.iter().try_fold(0i64, |n, d| {
        let digit = d.is_ascii_digit().then(|| i64::from(d - b'0'))?;
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// The first word of an error line, if it looks like one (`WRONGPASS`), else `ERR`.
fn error_word(line: &[u8]) -> String {
    let word: Vec<u8> = line.iter().take_while(|b| **b != b' ').copied().collect();
    if (1..=MAX_ERROR_WORD).contains(&word.len())
        && word
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
    {
        String::from_utf8(word).unwrap_or_default()
    } else {
        "ERR".into()
    }
}

/// What is not the protocol (the caller reports it as such, never quoting it).
fn garbage() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not the Redis protocol")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn read(bytes: &[u8], expect: Expect) -> io::Result<Reply> {
        read_reply(&mut io::BufReader::new(bytes), expect)
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"SET", b"k", b"v\r\n1", b"PX", b"10"]).unwrap();
        assert_eq!(
            out,
            b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\n1\r\n$2\r\nPX\r\n$2\r\n10\r\n"
        );
    }

    #[test]
    fn replies_of_every_kind() {
        assert_eq!(
            read(b"+OK\r\n", Expect::Status).unwrap(),
            Reply::Status(b"OK".to_vec())
        );
        assert_eq!(
            read(b"-WRONGPASS invalid password p8e-echoed\r\n", Expect::Bulk).unwrap(),
            Reply::Error("WRONGPASS".into())
        );
        assert_eq!(
            read(b"-p8e-echoed\r\n", Expect::Bulk).unwrap(),
            Reply::Error("ERR".into())
        );
        assert_eq!(read(b":1\r\n", Expect::Int).unwrap(), Reply::Int(1));
        assert_eq!(read(b":-7\r\n", Expect::Int).unwrap(), Reply::Int(-7));
        assert_eq!(
            read(b"$3\r\na\r\n\r\n", Expect::Bulk).unwrap(),
            Reply::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(read(b"$-1\r\n", Expect::Bulk).unwrap(), Reply::Bulk(None));
        assert_eq!(read(b"$-1\r\n", Expect::StatusOrNil).unwrap(), Reply::Bulk(None));
        assert_eq!(
            read(b"*2\r\n$1\r\nv\r\n$-1\r\n", Expect::Array(2)).unwrap(),
            Reply::Array(vec![Some(b"v".to_vec()), None])
        );
    }

    #[test]
    fn what_is_not_the_protocol_too_big_or_not_the_type_asked_for_is_refused() {
        let big_bulk = format!("${}\r\n", MAX_REPLY);
        for (bad, expect) in [
            (&b"HTTP/1.1 200 OK\r\n"[..], Expect::Bulk),
            (b"\xc3\xa9OK\r\n", Expect::Status),
            (b"\xff\r\n", Expect::Status),
            (b"+OK\n", Expect::Status),
            (b"\r\n", Expect::Status),
            (b"$99999999999\r\n", Expect::Bulk),
            (b"$4611686018427387904\r\n", Expect::Bulk),
            (b"$99999999999999999999\r\n", Expect::Bulk),
            (b"$+1\r\nx\r\n", Expect::Bulk),
            (b"$ 1\r\nx\r\n", Expect::Bulk),
            (b"$-2\r\n", Expect::Bulk),
            (b"$01\r\nx\r\n", Expect::Bulk),
            (b"*2\r\n$01\r\nv\r\n$-1\r\n", Expect::Array(2)),
            (b"*02\r\n$1\r\nv\r\n$-1\r\n", Expect::Array(2)),
            (b"$x\r\n", Expect::Bulk),
            (big_bulk.as_bytes(), Expect::Bulk),
            (b"$5\r\nab", Expect::Bulk),
            (b"$1\r\nabc", Expect::Bulk),
            (b"*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n", Expect::Array(2)),
            (b"*-1\r\n", Expect::Array(2)),
            (b"*2\r\n*1\r\n$1\r\na\r\n$-1\r\n", Expect::Array(2)),
            (b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", Expect::Array(1)),
            (b":1\r\n", Expect::Bulk),
            (b"+OK\r\n", Expect::Bulk),
            (b"$1\r\nx\r\n", Expect::StatusOrNil),
            (b"$1\r\nx\r\n", Expect::Status),
            (b":one\r\n", Expect::Int),
            (b":\r\n", Expect::Int),
            (b":-\r\n", Expect::Int),
            (b"", Expect::Status),
        ] {
            assert!(
                read(bad, expect).is_err(),
                "{:?} as {expect:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_line_without_end_stops_at_the_budget() {
        let endless = vec![b'+'; MAX_REPLY * 4];
        assert!(read(&endless, Expect::Status).is_err());
        let deep = b"*1\r\n".repeat(100_000);
        assert!(read(&deep, Expect::Array(1)).is_err());
    }

    #[test]
    fn a_sealed_entry_fits() {
        let entry = vec![b'v'; MAX_SEALED];
        let mut reply = format!("*2\r\n${}\r\n", entry.len()).into_bytes();
        reply.extend_from_slice(&entry);
        reply.extend_from_slice(b"\r\n$32\r\n");
        reply.extend_from_slice(&[b'o'; 32]);
        reply.extend_from_slice(b"\r\n");
        assert_eq!(
            read(&reply, Expect::Array(2)).unwrap(),
            Reply::Array(vec![Some(entry), Some(vec![b'o'; 32])])
        );
    }

    /// Random bytes, and random mutations of real replies, never panic and never read past the
    /// budget. A seeded xorshift: the same cases on every run.
    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: [&[u8]; 6] = [
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":12\r\n",
            b"$3\r\nabc\r\n",
            b"$-1\r\n",
            b"*2\r\n$1\r\nv\r\n$-1\r\n",
        ];
        let alphabet = b"+-:$*\r\n0123456789-1\xc3\xa9\xff ";
        let expects = [
            Expect::Status,
            Expect::StatusOrNil,
            Expect::Bulk,
            Expect::Int,
            Expect::Array(2),
        ];
        for _ in 0..20_000 {
            let mut bytes = seeds[(next() % seeds.len() as u64) as usize].to_vec();
            for _ in 0..(next() % 8) {
                let at = (next() % (bytes.len() as u64 + 1)) as usize;
                let byte = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => bytes[at] = byte,
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.push((next() & 0xff) as u8),
                }
            }
            if next() % 4 == 0 {
                bytes = (0..next() % 64).map(|_| (next() & 0xff) as u8).collect();
            }
            let expect = expects[(next() % expects.len() as u64) as usize];
            let mut input = &bytes[..];
            let before = input.len();
            let _ = read_reply(&mut input, expect);
            assert!(before - input.len() <= MAX_REPLY);
        }
    }
}
