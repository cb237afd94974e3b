//! The Redis protocol (RESP2), the part the token store speaks: commands as arrays of bulk
//! strings, and the replies they get, read with bounds (a store at a wrong address must not make
//! us read gigabytes or recurse without end).

use std::io::{self, BufRead, Read, Write};

/// The largest bulk string read: sealed token entries are well under this.
const MAX_BULK: usize = 1024 * 1024;
/// The most elements of an array reply (MGET of two keys is the largest we ask for).
const MAX_ITEMS: usize = 16;
/// The longest status, error or integer line.
const MAX_LINE: usize = 4096;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR …`: only its first word (`ERR`, `WRONGPASS`, `NOPERM`…) is kept, never the text,
    /// which a server could fill with what it was sent.
    Error(String),
    /// `:1`.
    Int(i64),
    /// `$3\r\nabc`, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2…`, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
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

/// Reads one reply.
pub fn read_reply(input: &mut impl BufRead) -> io::Result<Reply> {
    read_nested(input, 0)
}

fn read_nested(input: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    let line = read_line(input)?;
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Ok(Reply::Error(
            rest.split_whitespace().next().unwrap_or("").to_string(),
        )),
        ":" => rest.parse().map(Reply::Int).map_err(|_| garbage()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| garbage())?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let len = usize::try_from(len).map_err(|_| garbage())?;
            if len > MAX_BULK {
                return Err(garbage());
            }
            let mut value = vec![0u8; len + 2];
            input.read_exact(&mut value)?;
            if !value.ends_with(b"\r\n") {
                return Err(garbage());
            }
            value.truncate(len);
            Ok(Reply::Bulk(Some(value)))
        }
        "*" => {
            let count: i64 = rest.parse().map_err(|_| garbage())?;
            if count < 0 {
                return Ok(Reply::Array(None));
            }
            let count = usize::try_from(count).map_err(|_| garbage())?;
            if count > MAX_ITEMS || depth > 2 {
                return Err(garbage());
            }
            let items = (0..count)
                .map(|_| read_nested(input, depth + 1))
                .collect::<io::Result<_>>()?;
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(garbage()),
    }
}

/// One `\r\n`-terminated line, without it; never empty (it holds the type byte).
fn read_line(input: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") || line.len() < 3 {
        return Err(garbage());
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| garbage())
}

/// What is not the protocol (the caller reports it as such, never quoting it).
fn garbage() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not the Redis protocol")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> io::Result<Reply> {
        read_reply(&mut io::BufReader::new(bytes))
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
        assert_eq!(read(b"+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            read(b"-WRONGPASS invalid password p8e-echoed\r\n").unwrap(),
            Reply::Error("WRONGPASS".into())
        );
        assert_eq!(read(b":1\r\n").unwrap(), Reply::Int(1));
        assert_eq!(
            read(b"$3\r\na\r\n\r\n").unwrap(),
            Reply::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(read(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(
            read(b"*2\r\n$1\r\nv\r\n$-1\r\n").unwrap(),
            Reply::Array(Some(vec![Reply::Bulk(Some(b"v".to_vec())), Reply::Bulk(None)]))
        );
    }

    #[test]
    fn what_is_not_the_protocol_or_too_big_is_refused() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"+OK\n",
            b"$99999999999\r\n",
            b"$5\r\nab",
            b"*100\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b":one\r\n",
            b"",
        ] {
            assert!(read(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
