//! Reading a file that configuration names (the seal, a `.env`): only a regular file, and only up
//! to a bound, so that a FIFO, a device or a huge file can neither hang nor flood the process.

use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// A FIFO, a directory, a device: refused before it is opened.
    NotRegular,
    /// More than the bound allows.
    TooLarge,
    /// Missing, unreadable, or an I/O error on the way.
    Io(std::io::Error),
}

/// The bytes of the regular file at `path`, at most `max` of them.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    // Checked before opening (opening a FIFO waits for a writer), and again on the file opened
    // (the path may have been swapped in between).
    if !std::fs::metadata(path).map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}
