//! The byte arithmetic of an agent job's log, shared by the backends: which part of a chunk is
//! new, and which part of a stored chunk a read wants.

use crate::StoreError;
use crate::agents::LogAppend;

/// The part of `data`, sent to start at byte `offset`, that a log of `log_len` bytes does not
/// hold yet: all of it when it starts at the end, its tail when it overlaps the end, nothing
/// when the log already holds it (a chunk sent again). A chunk that starts past the end is a
/// gap: the sender must resend from `log_len`.
pub(crate) fn unseen(log_len: u64, offset: u64, data: &[u8]) -> Result<&[u8], LogAppend> {
    if offset > log_len {
        return Err(LogAppend::Gap { expected: log_len });
    }
    // `offset <= log_len`, so the difference is at most the chunk's length once it overlaps.
    let held = log_len - offset;
    Ok(usize::try_from(held).ok().and_then(|held| data.get(held..)).unwrap_or_default())
}

/// Appends to `out` the bytes of a stored chunk (`data`, starting at byte `start` of the log)
/// that fall in `[from, end)`.
pub(crate) fn take_slice(out: &mut Vec<u8>, start: u64, data: &[u8], from: u64, end: u64) {
    let chunk_end = start.saturating_add(data.len() as u64);
    let (lo, hi) = (from.max(start), end.min(chunk_end));
    if lo < hi {
        out.extend_from_slice(&data[(lo - start) as usize..(hi - start) as usize]);
    }
}

/// A stored length or offset of job `job`'s log as the `u64` the trait speaks.
pub(crate) fn length(value: i64, job: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("agent job {job} has a negative log offset")))
}

/// A byte offset as the databases' 64-bit integer; only a log past 8 EiB has one that is not.
pub(crate) fn signed(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("a log offset of {value} bytes is past what is stored")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_log_lacks_is_new() {
        let check = |log_len, offset, expected: Result<&[u8], LogAppend>| {
            assert_eq!(unseen(log_len, offset, b"abcd"), expected, "log of {log_len}, chunk at {offset}");
        };
        check(0, 0, Ok(b"abcd"));
        check(4, 4, Ok(b"abcd"));
        check(4, 0, Ok(b""));
        check(6, 2, Ok(b""));
        check(5, 2, Ok(b"d"));
        check(3, 2, Ok(b"bcd"));
        check(4, 5, Err(LogAppend::Gap { expected: 4 }));
        check(0, u64::MAX, Err(LogAppend::Gap { expected: 0 }));
        check(u64::MAX, 0, Ok(b""));
    }

    #[test]
    fn a_read_takes_the_part_of_each_chunk_in_its_window() {
        let check = |start, from, end, expected: &[u8]| {
            let mut out = Vec::new();
            take_slice(&mut out, start, b"abcd", from, end);
            assert_eq!(out, expected, "chunk at {start}, window [{from}, {end})");
        };
        check(10, 10, 14, b"abcd");
        check(10, 0, 100, b"abcd");
        check(10, 11, 13, b"bc");
        check(10, 12, 100, b"cd");
        check(10, 0, 11, b"a");
        check(10, 14, 20, b"");
        check(10, 0, 10, b"");
    }
}
