//! Records framed one by one, without a limit on their number and without being read: for a
//! caller that works through a large local file in pieces and names records by line.

use serde_json::value::RawValue;

use super::{array_elements, newlines};

/// One record of a body, framed but not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The record's text.
    pub text: &'a str,
    /// The line it starts on (1-based).
    pub line: usize,
    /// The byte offset just past it in the body: how much of the body is done once it is.
    pub end: usize,
}

/// The records of a body — a JSON array, or JSON values one after another — framed one by one
/// without being read, with no limit on their number: for a caller that works through a large
/// local file in pieces and names records by line (`mobius events import`).
///
/// A malformed array is an error for the whole body, found before any record is framed.
/// Malformed JSON in a stream of values ends it: the iterator yields the error, then nothing.
pub fn frames(text: &str) -> Result<Frames<'_>, serde_json::Error> {
    if !text.trim_start().starts_with('[') {
        return Ok(Frames::stream(text));
    }
    match array_elements(text, usize::MAX) {
        Ok(Ok(elements)) => Ok(Frames { text, line: 1, counted: 0, inner: Inner::Array(elements.into_iter()) }),
        Ok(Err(e)) => Err(e),
        Err(_) => unreachable!("no text holds usize::MAX records"),
    }
}

/// The iterator of [`frames`].
pub struct Frames<'a> {
    text: &'a str,
    /// The line of the byte at `counted`: lines are counted on from the previous record, since
    /// recounting from the start for each record would make a large body quadratic.
    line: usize,
    counted: usize,
    inner: Inner<'a>,
}

enum Inner<'a> {
    Array(std::vec::IntoIter<&'a str>),
    Stream(serde_json::StreamDeserializer<'a, serde_json::de::StrRead<'a>, &'a RawValue>),
    Done,
}

impl<'a> Frames<'a> {
    fn stream(text: &'a str) -> Frames<'a> {
        let values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        Frames { text, line: 1, counted: 0, inner: Inner::Stream(values) }
    }

    /// The frame of `record`, a slice of the body, ending at `end`.
    fn frame(&mut self, record: &'a str, end: usize) -> Frame<'a> {
        let start = record.as_ptr() as usize - self.text.as_ptr() as usize;
        self.line += newlines(&self.text.as_bytes()[self.counted..start]);
        self.counted = start;
        Frame { text: record, line: self.line, end }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Array(elements) => {
                let element = elements.next()?;
                let end = element.as_ptr() as usize - self.text.as_ptr() as usize + element.len();
                Some(Ok(self.frame(element, end)))
            }
            Inner::Stream(values) => match values.next()? {
                Ok(value) => {
                    let end = values.byte_offset();
                    Some(Ok(self.frame(value.get(), end)))
                }
                Err(e) => {
                    self.inner = Inner::Done;
                    Some(Err(e))
                }
            },
            Inner::Done => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_BATCH_ITEMS;

    /// Each frame as (text, line, end), and the error that ended the body, if any.
    fn check(text: &str, expected: &[(&str, usize, usize)], broken_at_line: Option<usize>) {
        let mut framed = Vec::new();
        let mut broken = None;
        for frame in frames(text).unwrap() {
            match frame {
                Ok(f) => {
                    assert!(broken.is_none(), "nothing is framed after malformed JSON");
                    assert_eq!(&text[f.end - f.text.len()..f.end], f.text, "`end` is just past the record");
                    framed.push((f.text, f.line, f.end));
                }
                Err(e) => broken = Some(e.line()),
            }
        }
        assert_eq!(framed, expected, "{text:?}");
        assert_eq!(broken, broken_at_line, "{text:?}");
    }

    #[test]
    fn frames_carry_their_line_and_where_they_end() {
        check("{\"a\":1}\n\n{\"b\":\n2}\n", &[("{\"a\":1}", 1, 7), ("{\"b\":\n2}", 3, 17)], None);
        check("[\n {\"a\":1},\n {\"b\":2}\n]", &[("{\"a\":1}", 2, 10), ("{\"b\":2}", 3, 20)], None);
        check("  [1, 2]", &[("1", 1, 4), ("2", 1, 7)], None);
        check("", &[], None);
        // Malformed JSON ends a stream, keeping what came before.
        check("{\"a\":1}\n{\"b\": [1,\n", &[("{\"a\":1}", 1, 7)], Some(3));
    }

    #[test]
    fn a_malformed_array_frames_nothing() {
        let error = frames("[{\"a\":1},\n{\"b\"").err().expect("an error");
        assert_eq!(error.line(), 2);
    }

    #[test]
    fn frames_have_no_limit_on_their_number() {
        let body = "1\n".repeat(MAX_BATCH_ITEMS + 1);
        assert_eq!(frames(&body).unwrap().count(), MAX_BATCH_ITEMS + 1);
        let last = frames(&body).unwrap().last().unwrap().unwrap();
        assert_eq!((last.line, last.end), (MAX_BATCH_ITEMS + 1, body.len() - 1));
    }
}
