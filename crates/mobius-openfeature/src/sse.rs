//! Server-Sent Events, decoded as the WHATWG HTML standard's "event stream interpretation"
//! says — the part a change stream needs: lines end with CRLF, LF or CR (a CRLF may be split
//! across two chunks); `data:` lines are joined with `\n`; a line starting with `:` is a
//! comment (the server's keep-alive); a blank line dispatches the event; `event:` names it;
//! other fields are ignored. Written here rather than taken from a crate because it is this
//! small, and so a line's length can be bounded: a server that never ends a line cannot make
//! the provider buffer without limit.

/// The longest line kept; a longer one ends the stream ([`LineTooLong`]).
pub const MAX_LINE: usize = 64 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, `message` when absent.
    pub kind: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// A line past [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event stream sent a line longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

/// The decoder's state between chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF starting this one belongs to it.
    after_cr: bool,
    /// Past the stream's start, where a UTF-8 byte order mark is skipped.
    started: bool,
    /// How many bytes of a byte order mark the stream started with so far (a chunk may end
    /// inside it).
    bom_read: usize,
    data: String,
    has_data: bool,
    kind: String,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Feeds the next chunk of bytes; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let mut events = Vec::new();
        for &byte in chunk {
            if !self.started {
                if byte == BOM[self.bom_read] {
                    self.bom_read += 1;
                    self.started = self.bom_read == BOM.len();
                    continue;
                }
                // Not a byte order mark after all: what looked like one is the line's start.
                self.started = true;
                self.line.extend_from_slice(&BOM[..self.bom_read]);
            }
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_ended(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(events)
    }

    fn line_ended(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let kind = std::mem::take(&mut self.kind);
            let data = std::mem::take(&mut self.data);
            let has_data = std::mem::replace(&mut self.has_data, false);
            // An event with no data is not dispatched.
            return has_data.then(|| Event { kind: if kind.is_empty() { "message".to_owned() } else { kind }, data });
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => value.clone_into(&mut self.kind),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event { kind: "message".to_owned(), data: data.to_owned() }
    }

    /// Feeds `chunks` in order and checks the events, and that every way of cutting their
    /// concatenation in two gives the same events.
    fn check(chunks: &[&[u8]], expected: &[Event]) {
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(decoder.feed(chunk).unwrap());
        }
        assert_eq!(events, expected);
        let whole: Vec<u8> = chunks.concat();
        for cut in 0..=whole.len() {
            let mut decoder = Decoder::new();
            let mut events = decoder.feed(&whole[..cut]).unwrap();
            events.extend(decoder.feed(&whole[cut..]).unwrap());
            assert_eq!(events, expected, "cut at {cut}");
        }
    }

    #[test]
    fn events_comments_and_every_line_ending() {
        let change = r#"{"type":"refetchEvaluation","etag":"2"}"#;
        check(&[format!("data: {change}\n\n").as_bytes()], &[event(change)]);
        check(
            &[b": keep-alive\n\n", b"data:x\r\n\r\n", b"data: y\r\rdata: z\n\n"],
            &[event("x"), event("y"), event("z")],
        );
        check(&[b"data: a\ndata:b\nid: 7\nretry: 10\n\n"], &[event("a\nb")]);
        check(&[b"event: ping\ndata\n\n"], &[Event { kind: "ping".to_owned(), data: String::new() }]);
        check(&[b"\xEF\xBB\xBFdata: bom\n\n"], &[event("bom")]);
        check(&[b"id: 1\n\n: nothing to dispatch\n\ndata: unfinished\n"], &[]);
    }

    #[test]
    fn a_line_that_never_ends_is_refused() {
        let mut decoder = Decoder::new();
        let chunk = vec![b'x'; 1024];
        let mut refused = false;
        for _ in 0..=MAX_LINE / 1024 {
            if decoder.feed(&chunk).is_err() {
                refused = true;
            }
        }
        assert!(refused);
    }
}
