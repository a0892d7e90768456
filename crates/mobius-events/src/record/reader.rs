//! Records framed as they are read from a file or a pipe, a block at a time: what [`frames`]
//! does for a text in memory, in memory bounded by the largest record rather than the file.
//!
//! [`frames`]: super::frames

use std::fmt;
use std::io::{self, Read};

use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// How much is read at a time.
const BLOCK: usize = 1 << 20;

/// One record read from a file: its text, the line it starts on (1-based), and the byte
/// offset just past it in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFrame {
    pub text: String,
    pub line: usize,
    pub end: u64,
}

/// Why reading records stopped. Nothing is framed after one.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read")]
    Io(#[from] io::Error),
    /// Malformed JSON, positioned in the file as serde_json positions it in a text.
    #[error("{message} at line {line} column {column}")]
    Json { line: usize, column: usize, message: String },
    #[error("not UTF-8 at line {line}")]
    NotUtf8 { line: usize },
}

impl ReadError {
    /// The line the error is on (0 for a failed read).
    pub fn line(&self) -> usize {
        match self {
            ReadError::Io(_) => 0,
            ReadError::Json { line, .. } | ReadError::NotUtf8 { line } => *line,
        }
    }
}

/// Whether a body is one JSON array, as [`frames`](super::frames) decides it: its first
/// character that is not whitespace is `[`. Reads at most until that character; what was read
/// is returned, to be read again before the rest.
pub fn starts_array(reader: &mut impl Read) -> io::Result<(bool, Vec<u8>)> {
    let mut head = Vec::new();
    let mut block = [0u8; 4096];
    loop {
        let n = match reader.read(&mut block) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&block[..n]);
        let text = match std::str::from_utf8(&head) {
            Ok(text) => text,
            Err(e) if e.error_len().is_none() && n > 0 => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
            Err(_) => return Ok((false, head)),
        };
        if let Some(first) = text.chars().find(|c| !c.is_whitespace()) {
            return Ok((first == '[', head));
        }
        if n == 0 {
            return Ok((false, head));
        }
    }
}

/// Checks that a body is one well-formed JSON array (the elements are not read as events),
/// reading it once: the check [`frames`](super::frames) makes of an array before framing it,
/// for a body that is read twice rather than held.
pub fn check_array(reader: impl Read) -> Result<usize, serde_json::Error> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array of events")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut count = 0;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                count += 1;
            }
            Ok(count)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(BLOCK, reader));
    let count = (&mut deserializer).deserialize_seq(Count)?;
    deserializer.end()?;
    Ok(count)
}

/// The records of a body read from `reader` — a JSON array, or JSON values one after another —
/// framed one by one as [`frames`](super::frames) frames them, with the same lines and ends.
///
/// An array is framed element by element without being checked whole first: a caller that must
/// refuse a malformed array before anything of it is used checks it with [`check_array`]
/// first. Malformed JSON, text that is not UTF-8, or a failed read ends the body: the iterator
/// yields the error, then nothing.
pub fn read_frames<R: Read>(reader: R) -> FrameReader<R> {
    FrameReader::with_block(reader, BLOCK)
}

/// The iterator of [`read_frames`].
pub struct FrameReader<R> {
    source: R,
    block: usize,
    /// What was read and not dropped yet (checked to be UTF-8 once, as it was read).
    buf: String,
    /// Bytes read after `buf` that are not UTF-8 yet: a character cut by a block's end, to be
    /// completed by the next block, or bytes that are not UTF-8 whatever follows.
    pending: Vec<u8>,
    /// `pending` is not UTF-8 whatever follows.
    invalid: bool,
    /// The source has no more to give.
    eof: bool,
    /// Bytes of `buf` done with: records framed and what separated them.
    pos: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    /// The line of `buf[counted]`, and how many bytes of that line come before it.
    line: usize,
    column: usize,
    counted: usize,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet: an array or a stream of values.
    Start,
    Stream,
    /// In an array, before its first element or its `]`.
    ArrayFirst,
    /// In an array, after an element: a `,` or the `]`.
    ArrayAfter,
    /// In an array, after a `,`: an element.
    ArrayNext,
    /// After the array: only whitespace.
    ArrayClosed,
    Done,
}

/// What parsing the text at the current position found.
enum Step {
    Frame(ReadFrame),
    /// The text ends before the next thing does: read more.
    More,
    End,
}

impl<R: Read> FrameReader<R> {
    fn with_block(source: R, block: usize) -> FrameReader<R> {
        FrameReader {
            source,
            block,
            buf: String::new(),
            pending: Vec::new(),
            invalid: false,
            eof: false,
            pos: 0,
            base: 0,
            line: 1,
            column: 0,
            counted: 0,
            state: State::Start,
        }
    }

    /// Whether every byte of the body is in `buf` and UTF-8.
    fn whole(&self) -> bool {
        self.eof && self.pending.is_empty()
    }

    /// Reads another block (at least as much as is pending, so that a record longer than a
    /// block is parsed again only a few times), dropping what is done with first.
    fn fill(&mut self) -> Result<(), ReadError> {
        if self.invalid {
            self.count_to(self.buf.len());
            return Err(ReadError::NotUtf8 { line: self.line });
        }
        if self.eof {
            return Ok(());
        }
        self.count_to(self.pos);
        self.buf.drain(..self.pos);
        self.base += self.pos as u64;
        self.counted -= self.pos;
        self.pos = 0;
        let want = self.block.max(self.buf.len());
        let start = self.pending.len();
        self.pending.resize(start + want, 0);
        let mut filled = start;
        while filled < self.pending.len() {
            match self.source.read(&mut self.pending[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.pending.truncate(filled);
                    return Err(e.into());
                }
            }
        }
        self.pending.truncate(filled);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) => {
                // A character cut by the block's end is completed by the next block.
                self.invalid = e.error_len().is_some() || self.eof;
                e.valid_up_to()
            }
        };
        self.buf.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
        self.pending.drain(..valid);
        Ok(())
    }

    /// Counts lines up to `to`, a position in `buf` at or after `counted`.
    fn count_to(&mut self, to: usize) {
        let bytes = &self.buf.as_bytes()[self.counted..to];
        match bytes.iter().rposition(|b| *b == b'\n') {
            Some(last) => {
                self.line += bytes.iter().filter(|b| **b == b'\n').count();
                self.column = bytes.len() - last - 1;
            }
            None => self.column += bytes.len(),
        }
        self.counted = to;
    }

    fn text(&self) -> &str {
        &self.buf[self.pos..]
    }

    /// `error`, from parsing the text at `at`, positioned in the file.
    fn json_error(&mut self, at: usize, error: &serde_json::Error) -> ReadError {
        self.count_to(at);
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let text = error.to_string();
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        let (line, column) = if error.line() <= 1 {
            (self.line, self.column + error.column())
        } else {
            (self.line + error.line() - 1, error.column())
        };
        ReadError::Json { line, column, message }
    }

    /// Frames the value at the current position, if the text holds all of it.
    fn value(&mut self) -> Result<Step, ReadError> {
        let text = self.text();
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        let found = values.next();
        let end = values.byte_offset();
        match found {
            None if self.whole() => Ok(Step::End),
            // Whitespace only, or a number that more digits may follow.
            None => Ok(Step::More),
            Some(Ok(_)) if end == text.len() && !self.whole() => Ok(Step::More),
            Some(Ok(value)) => {
                let start = self.pos + (value.get().as_ptr() as usize - text.as_ptr() as usize);
                let record = value.get().to_owned();
                self.count_to(start);
                self.pos += end;
                Ok(Step::Frame(ReadFrame { text: record, line: self.line, end: self.base + self.pos as u64 }))
            }
            // The text ran out inside the value (`tr`, or a number cut after its `.` or `e`,
            // which serde_json calls invalid rather than unfinished): more may mend it.
            Some(Err(e))
                if !self.whole() && (e.is_eof() || offset_of(text, e.line(), e.column()) + 1 >= text.len()) =>
            {
                Ok(Step::More)
            }
            Some(Err(e)) => Err(self.json_error(self.pos, &e)),
        }
    }

    /// Skips JSON whitespace; the next character, unless the text ends first.
    fn skip_whitespace(&mut self) -> Option<char> {
        let text = self.text();
        let skipped = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
        self.pos += skipped;
        self.text().chars().next()
    }

    /// The next thing in an array: a frame, the `]`, or a refusal like serde_json's.
    fn array_step(&mut self) -> Result<Step, ReadError> {
        let unexpected = |reader: &mut Self, message: &str| {
            reader.count_to(reader.pos);
            Err(ReadError::Json { line: reader.line, column: reader.column + 1, message: message.to_owned() })
        };
        let Some(next) = self.skip_whitespace() else {
            return match (self.whole(), self.state) {
                (false, _) => Ok(Step::More),
                (true, State::ArrayClosed) => Ok(Step::End),
                (true, _) => unexpected(self, "EOF while parsing a list"),
            };
        };
        match (self.state, next) {
            (State::ArrayFirst, ']') | (State::ArrayAfter, ']') => {
                self.pos += 1;
                self.state = State::ArrayClosed;
                self.array_step()
            }
            (State::ArrayAfter, ',') => {
                self.pos += 1;
                self.state = State::ArrayNext;
                self.array_step()
            }
            (State::ArrayAfter, _) => unexpected(self, "expected `,` or `]`"),
            (State::ArrayClosed, _) => unexpected(self, "trailing characters"),
            (_, _) => match self.value()? {
                Step::Frame(frame) => {
                    self.state = State::ArrayAfter;
                    Ok(Step::Frame(frame))
                }
                Step::End => unexpected(self, "EOF while parsing a list"),
                Step::More => Ok(Step::More),
            },
        }
    }

    fn step(&mut self) -> Result<Step, ReadError> {
        match self.state {
            State::Start => {
                let text = self.text();
                match text.chars().find(|c| !c.is_whitespace()) {
                    Some('[') => {
                        let json_space = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
                        let array = text[json_space..].starts_with('[');
                        self.pos += json_space;
                        if !array {
                            // Whitespace to `char::is_whitespace`, not to JSON.
                            self.count_to(self.pos);
                            let (line, column) = (self.line, self.column + 1);
                            return Err(ReadError::Json { line, column, message: "expected value".into() });
                        }
                        self.pos += 1;
                        self.state = State::ArrayFirst;
                        self.array_step()
                    }
                    // Whitespace to serde_json is less than to `char::is_whitespace`: what else
                    // there is, it refuses.
                    Some(_) | None if self.whole() || text.chars().any(|c| !c.is_whitespace()) => {
                        self.state = State::Stream;
                        self.value()
                    }
                    _ => Ok(Step::More),
                }
            }
            State::Stream => self.value(),
            State::Done => Ok(Step::End),
            _ => self.array_step(),
        }
    }
}

/// The byte offset in `text` of serde_json's (line, column) there.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start = match line {
        0 | 1 => 0,
        _ => text.match_indices('\n').nth(line - 2).map_or(text.len(), |(i, _)| i + 1),
    };
    start + column.saturating_sub(1)
}

impl<R: Read> Iterator for FrameReader<R> {
    type Item = Result<ReadFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let step = self.step().and_then(|step| match step {
                Step::More => self.fill().map(|()| Step::More),
                other => Ok(other),
            });
            match step {
                Ok(Step::Frame(frame)) => return Some(Ok(frame)),
                Ok(Step::More) => continue,
                Ok(Step::End) => {
                    self.state = State::Done;
                    return None;
                }
                Err(e) => {
                    self.state = State::Done;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::frames;

    /// What [`frames`] makes of `text`: each frame as (text, line, end), and the line of the
    /// error that ended it.
    fn in_memory(text: &str) -> (Vec<ReadFrame>, Option<usize>) {
        let mut framed = Vec::new();
        let mut broken = None;
        match frames(text) {
            Ok(iter) => {
                for frame in iter {
                    match frame {
                        Ok(f) => framed.push(ReadFrame { text: f.text.to_owned(), line: f.line, end: f.end as u64 }),
                        Err(e) => broken = Some(e.line()),
                    }
                }
            }
            Err(e) => broken = Some(e.line()),
        }
        (framed, broken)
    }

    /// What the reader makes of `bytes` read `block` bytes at a time.
    fn read(bytes: &[u8], block: usize) -> (Vec<ReadFrame>, Option<ReadError>) {
        let mut framed = Vec::new();
        let mut broken = None;
        for frame in FrameReader::with_block(bytes, block) {
            match frame {
                Ok(f) => {
                    assert!(broken.is_none(), "nothing after an error");
                    framed.push(f);
                }
                Err(e) => broken = Some(e),
            }
        }
        (framed, broken)
    }

    /// Framed as in memory, whatever the block size.
    fn check(text: &str) {
        let (expected, expected_broken) = in_memory(text);
        for block in [1, 2, 3, 7, 64, BLOCK] {
            let (framed, broken) = read(text.as_bytes(), block);
            let array = text.trim_start().starts_with('[');
            if array && expected_broken.is_some() {
                // In memory a malformed array frames nothing; read, what comes before the
                // fault is framed (`check_array` finds it first).
                assert!(broken.is_some(), "{text:?} in blocks of {block}");
                assert!(expected.is_empty());
                continue;
            }
            assert_eq!(framed, expected, "{text:?} in blocks of {block}");
            assert_eq!(broken.map(|e| e.line()), expected_broken, "{text:?} in blocks of {block}");
        }
    }

    #[test]
    fn frames_are_read_as_they_are_framed_in_memory() {
        for text in [
            "{\"a\":1}\n\n{\"b\":\n2}\n",
            "[\n {\"a\":1},\n {\"b\":2}\n]",
            "  [1, 2]",
            "",
            "  \n",
            "[]",
            "[ ]\n",
            "{\"a\":1}\n{\"b\": [1,\n",
            "5   true\n \"x\"",
            "123",
            "12 345 6",
            "{\"é\": \"ünïcødé ✓\"}\n{\"b\": \"日本\"}",
            "[{\"a\":1},\n{\"b\"",
            "[1,]",
            "[1 2]",
            "[1] x",
            "{\"a\":1}{\"b\":2}[3]",
            "{\"a\":1}\n{\"b\":2}\n{\"broken\": \n",
        ] {
            check(text);
        }
    }

    proptest::proptest! {
        /// Any text, well-formed or not, cut into blocks anywhere (inside a record, a number, a
        /// character): the frames and the error's line are those of the text in memory.
        #[test]
        fn blocks_never_show(
            pieces in proptest::collection::vec(proptest::sample::select(&[
                "{\"a\":1}", "[1, 2]", "\"é✓\"", "12", "3.5e2", "true", "null", " ", "\n", "\r\n", "\t", ",",
                "{", "}", "[", "]", "x", "\"", "\\", "\"\\\"\"", "\u{a0}",
            ][..]), 0..24),
            block in 1usize..24,
        ) {
            let text = pieces.concat();
            let (expected, expected_broken) = in_memory(&text);
            let (framed, broken) = read(text.as_bytes(), block);
            if text.trim_start().starts_with('[') && expected_broken.is_some() {
                proptest::prop_assert!(broken.is_some(), "{:?}", text);
            } else {
                proptest::prop_assert_eq!(framed, expected, "{:?}", text);
                proptest::prop_assert_eq!(broken.map(|e| e.line()), expected_broken, "{:?}", text);
            }
        }
    }

    #[test]
    fn errors_are_positioned_in_the_file() {
        let text = "{\"a\":1}\n{\"b\":2}\n  {\"c\": x}\n";
        for block in [1, 5, BLOCK] {
            let (framed, broken) = read(text.as_bytes(), block);
            assert_eq!(framed.len(), 2);
            match broken {
                Some(ReadError::Json { line, column, message }) => {
                    assert_eq!((line, column), (3, 9), "as serde_json puts it in the whole text");
                    assert_eq!(message, "expected value");
                }
                other => panic!("{other:?}"),
            }
        }
        let whole = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>().nth(2).unwrap().unwrap_err();
        assert_eq!((whole.line(), whole.column()), (3, 9));
    }

    #[test]
    fn text_that_is_not_utf8_ends_the_body_at_its_line() {
        let mut bytes = b"{\"a\":1}\n{\"b\":\"".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\"}\n");
        for block in [1, 4, BLOCK] {
            let (framed, broken) = read(&bytes, block);
            assert_eq!(framed.len(), 1);
            assert!(matches!(broken, Some(ReadError::NotUtf8 { line: 2 })), "{broken:?}");
        }
        // A character cut by a block's end is not an error.
        let (framed, broken) = read("{\"é\":1}".as_bytes(), 3);
        assert!(broken.is_none() && framed.len() == 1);
    }

    #[test]
    fn a_malformed_array_is_found_by_checking_it_first() {
        assert_eq!(check_array("[1, {\"a\": [2]}, \"x\"]\n".as_bytes()).unwrap(), 3);
        let error = check_array("[{\"a\":1},\n{\"b\"".as_bytes()).unwrap_err();
        let expected = frames("[{\"a\":1},\n{\"b\"").err().unwrap();
        assert_eq!((error.line(), error.column(), error.to_string()), (2, 4, expected.to_string()));
        assert!(check_array("[1] [2]".as_bytes()).is_err(), "one array only");
    }

    #[test]
    fn the_first_character_tells_an_array() {
        for (text, array) in [("  [1]", true), ("\n{\"a\":1}", false), ("", false), ("  ", false), ("\u{a0}[", true)] {
            let mut reader = text.as_bytes();
            let (found, head) = starts_array(&mut reader).unwrap();
            assert_eq!(found, array, "{text:?}");
            assert_eq!(head, text.as_bytes(), "what was read is given back");
        }
    }
}
