//! Streaming secret masking for step logs.
//!
//! A [`Masker`] is built once per job from its secrets and turns every secret into the byte
//! patterns under which it can show up in a log: the value itself, each line of a multi-line
//! value, its JSON-escaped form, and its base64 forms (standard and URL-safe alphabets, at the
//! three alignments a value can take inside a longer base64 stream). This follows GitHub's
//! runner (`SecretMasker` plus the encoders registered in `HostContext.cs`).
//!
//! A [`MaskStream`] masks one output stream (stdout and stderr each get their own) as it is
//! written. Processes flush at arbitrary points, so a secret may arrive split across writes; the
//! stream holds back a short tail that could still grow into a pattern. The concatenated output
//! of a stream is always byte-for-byte [`Masker::mask`] of the concatenated input, as long as
//! no secret is added meanwhile: [`Masker::add`] (a step's `::add-mask::`) takes effect from a
//! stream's next write on.
//!
//! Every matched range is replaced by `***`; ranges that overlap or touch are merged first, so
//! two adjacent secrets become a single `***` and no fragment of either leaks between them.

use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// What a masked range is replaced with, as on GitHub.
pub const REPLACEMENT: &[u8] = b"***";

/// Secrets shorter than this (in characters) are refused: masking them would hide common words
/// all over the log (actions/runner#507 masked `docker` everywhere) while protecting little.
pub const MIN_SECRET_CHARS: usize = 4;

/// Why a set of secrets cannot be masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// The secret is too short to mask safely. Only the secret's name is kept, never its value,
    /// because this error is meant to be printed.
    #[error("secret `{name}` is shorter than {MIN_SECRET_CHARS} characters and cannot be masked")]
    TooShort {
        /// The secret's name, e.g. `DEPLOY_TOKEN`.
        name: String,
    },
}

/// The patterns of a set of secrets, ready to search. Its `Debug` shows counts only: the
/// patterns are the secrets.
struct Patterns {
    /// Every distinct pattern, non-empty.
    patterns: Vec<Vec<u8>>,
    /// For each first byte, the indices of the patterns starting with it, longest first, so the
    /// first hit at a position is the longest match there.
    by_first: Vec<Vec<usize>>,
    /// Length of the longest pattern; 0 when there are none.
    longest: usize,
}

impl Patterns {
    fn new(mut patterns: Vec<Vec<u8>>) -> Patterns {
        patterns.retain(|p| !p.is_empty());
        patterns.sort();
        patterns.dedup();
        let mut by_first = vec![Vec::new(); 256];
        for (index, pattern) in patterns.iter().enumerate() {
            if let Some(&first) = pattern.first() {
                by_first[usize::from(first)].push(index);
            }
        }
        for list in &mut by_first {
            list.sort_by_key(|&i| std::cmp::Reverse(patterns[i].len()));
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Patterns { patterns, by_first, longest }
    }

    /// The length of the longest pattern found whole in `buf` at `at`.
    fn longest_match_at(&self, buf: &[u8], at: usize) -> Option<usize> {
        let rest = buf.get(at..)?;
        let first = *rest.first()?;
        self.by_first[usize::from(first)]
            .iter()
            .map(|&i| self.patterns[i].as_slice())
            .find(|p| rest.starts_with(p))
            .map(<[u8]>::len)
    }

    /// Whether `tail` (which reaches the end of what has been written so far) is the start of a
    /// pattern that needs more bytes to complete.
    fn is_partial_match(&self, tail: &[u8]) -> bool {
        let Some(&first) = tail.first() else {
            return false;
        };
        self.by_first[usize::from(first)]
            .iter()
            .map(|&i| self.patterns[i].as_slice())
            .any(|p| p.len() > tail.len() && p.starts_with(tail))
    }
}

/// The masks for one job's secrets. Cheap to clone; clones share their secrets, including
/// those added later with [`Masker::add`]. Hand out one [`MaskStream`] per output stream with
/// [`Masker::stream`].
#[derive(Clone)]
pub struct Masker {
    /// Replaced whole when a secret is added, so a stream masks each write with one snapshot.
    shared: Arc<RwLock<Arc<Patterns>>>,
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patterns").field("count", &self.patterns.len()).field("longest", &self.longest).finish()
    }
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker").field("patterns", &self.patterns()).finish()
    }
}

impl std::fmt::Debug for MaskStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Pending bytes may hold the start of a secret.
        f.debug_struct("MaskStream").field("pending_bytes", &self.pending.len()).finish()
    }
}

impl Masker {
    /// Builds a masker from `(name, value)` pairs.
    ///
    /// Refuses any value shorter than [`MIN_SECRET_CHARS`] characters with
    /// [`MaskError::TooShort`] naming the secret. A multi-line value is also masked line by
    /// line, because tools often print one line of a key at a time; lines shorter than
    /// [`MIN_SECRET_CHARS`] are skipped rather than refused, since a PEM key has such lines
    /// and masking them would over-mask.
    pub fn new<I, N, V>(secrets: I) -> Result<Masker, MaskError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: AsRef<str>,
    {
        let mut patterns = Vec::new();
        for (name, value) in secrets {
            secret_forms(&mut patterns, name, value.as_ref())?;
        }
        Ok(Masker { shared: Arc::new(RwLock::new(Arc::new(Patterns::new(patterns)))) })
    }

    /// Adds a secret while output is being masked (a step's `::add-mask::`), with the same
    /// rules as [`Masker::new`]. Every clone of this masker and every stream it handed out
    /// masks it from then on: a stream from its next [`MaskStream::write`], including the
    /// bytes it still holds back.
    pub fn add(&self, name: impl Into<String>, value: &str) -> Result<(), MaskError> {
        let mut added = Vec::new();
        secret_forms(&mut added, name, value)?;
        let mut current = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        if added.iter().all(|form| current.patterns.contains(form)) {
            return Ok(());
        }
        let mut patterns = current.patterns.clone();
        patterns.extend(added);
        *current = Arc::new(Patterns::new(patterns));
        Ok(())
    }

    /// The patterns as they are now.
    fn patterns(&self) -> Arc<Patterns> {
        Arc::clone(&self.shared.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A fresh stream, for one of a step's outputs.
    pub fn stream(&self) -> MaskStream {
        MaskStream { shared: Arc::clone(&self.shared), patterns: self.patterns(), pending: Vec::new(), mask_end: None }
    }

    /// Masks a whole input at once; what a [`MaskStream`] produces for any split of `input`.
    pub fn mask(&self, input: &[u8]) -> Vec<u8> {
        let mut stream = self.stream();
        let mut out = stream.write(input);
        out.extend(stream.finish());
        out
    }

    /// The length in bytes of the longest pattern, i.e. one more than the most a stream ever
    /// holds back.
    pub fn longest_pattern(&self) -> usize {
        self.patterns().longest
    }
}

/// Adds the forms of one secret, refusing it when too short; a multi-line value is also
/// masked line by line (lines too short are skipped, see [`Masker::new`]).
fn secret_forms(patterns: &mut Vec<Vec<u8>>, name: impl Into<String>, value: &str) -> Result<(), MaskError> {
    if value.chars().count() < MIN_SECRET_CHARS {
        return Err(MaskError::TooShort { name: name.into() });
    }
    add_forms(patterns, value);
    if value.contains('\n') {
        for line in value.lines() {
            if line.chars().count() >= MIN_SECRET_CHARS {
                add_forms(patterns, line);
            }
        }
    }
    Ok(())
}

/// Adds the forms in which `value` can appear in a log.
fn add_forms(patterns: &mut Vec<Vec<u8>>, value: &str) {
    patterns.push(value.as_bytes().to_vec());
    if let Ok(quoted) = serde_json::to_string(value) {
        // `to_string` of a string always yields `"…"`; the inside is what appears in JSON.
        if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            patterns.push(inner.as_bytes().to_vec());
        }
    }
    for engine in [&STANDARD, &URL_SAFE] {
        for offset in 0..3 {
            if let Some(form) = base64_form(engine, value.as_bytes(), offset) {
                patterns.push(form);
            }
        }
    }
}

/// The base64 characters that `value` alone determines when it starts `offset` bytes into a
/// base64-encoded stream.
///
/// Base64 character `j` encodes bits `6j..6j+6` of the stream, so the characters that depend
/// only on the value are those whose bits lie wholly inside `8*offset..8*(offset+len)`; the
/// ones at either edge mix in unknown neighbouring bytes and are left out.
fn base64_form(engine: &base64::engine::GeneralPurpose, value: &[u8], offset: usize) -> Option<Vec<u8>> {
    let mut stream = vec![0u8; offset];
    stream.extend_from_slice(value);
    let encoded = engine.encode(&stream);
    let start = (8 * offset).div_ceil(6);
    let end = 8 * (offset + value.len()) / 6;
    let form = encoded.as_bytes().get(start..end)?;
    // A fragment this short would match random base64 text and mask it for nothing.
    (form.len() >= MIN_SECRET_CHARS).then(|| form.to_vec())
}

/// Masks one output stream as it is written.
///
/// Feed it chunks with [`MaskStream::write`] in the order they were produced and call
/// [`MaskStream::finish`] at the end of the stream.
pub struct MaskStream {
    /// The masker's patterns, checked for additions at each write.
    shared: Arc<RwLock<Arc<Patterns>>>,
    /// The snapshot in use.
    patterns: Arc<Patterns>,
    /// Written bytes not yet emitted: at most the longest pattern minus one between writes.
    pending: Vec<u8>,
    /// When the last thing emitted was `***`, where in `pending` its range ends. A match
    /// starting at or before this point extends that range instead of emitting another `***`,
    /// and the bytes before it are already covered.
    mask_end: Option<usize>,
}

impl MaskStream {
    /// Takes the next chunk and returns the masked bytes that are safe to emit now.
    ///
    /// Only a tail that could be the start of a pattern is held back: at most the longest
    /// pattern minus one byte. Patterns are UTF-8 text, so a held-back tail starts where a
    /// character starts and holding back never splits a character of valid UTF-8 input;
    /// invalid bytes pass through as they are. Either way the concatenated output is exactly
    /// [`Masker::mask`] of the concatenated input.
    pub fn write(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.refresh();
        self.pending.extend_from_slice(chunk);
        let len = self.pending.len();
        // Any match starting before `window` ends within the bytes seen, so it is known now.
        let window = len.saturating_sub(self.patterns.longest.saturating_sub(1));
        let limit = (window..len).find(|&at| self.patterns.is_partial_match(&self.pending[at..])).unwrap_or(len);
        self.emit_until(limit)
    }

    /// Ends the stream and returns the rest of the masked output.
    pub fn finish(mut self) -> Vec<u8> {
        self.refresh();
        let len = self.pending.len();
        self.emit_until(len)
    }

    /// Picks up secrets added to the masker since the last write. Held-back bytes are
    /// searched again with the new patterns, so nothing already emitted changes.
    fn refresh(&mut self) {
        let current = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&current, &self.patterns) {
            self.patterns = Arc::clone(&current);
        }
    }

    /// Masks and emits `pending[..limit]`, keeping the rest.
    ///
    /// Callers guarantee that every match starting before `limit` lies whole in `pending`.
    fn emit_until(&mut self, limit: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(limit);
        let mut at = 0;
        while at < limit {
            let matched = self.patterns.longest_match_at(&self.pending, at);
            match (matched, self.mask_end) {
                (Some(len), Some(end)) if at <= end => {
                    self.mask_end = Some(end.max(at + len));
                }
                (Some(len), _) => {
                    out.extend_from_slice(REPLACEMENT);
                    self.mask_end = Some(at + len);
                }
                (None, Some(end)) if at < end => {}
                (None, _) => {
                    self.mask_end = None;
                    // Copy the run of bytes up to the next possible pattern start in one go.
                    let run = self.pending[at..limit]
                        .iter()
                        .skip(1)
                        .position(|&b| !self.patterns.by_first[usize::from(b)].is_empty())
                        .map_or(limit, |p| at + 1 + p);
                    out.extend_from_slice(&self.pending[at..run]);
                    at = run;
                    continue;
                }
            }
            at += 1;
        }
        self.pending.drain(..limit);
        // A mask still open reaches past `limit` (or touches it); keep it relative to the kept
        // bytes so a match right at their start merges into it.
        self.mask_end = self.mask_end.map(|end| end - limit.min(end));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(secrets: &[&str]) -> Masker {
        let pairs = secrets.iter().enumerate().map(|(i, s)| (format!("S{i}"), *s));
        Masker::new(pairs).expect("valid secrets")
    }

    /// Reference masking: every occurrence of every pattern, ranges merged when they overlap
    /// or touch, each merged range replaced once.
    fn naive(patterns: &Patterns, input: &[u8]) -> Vec<u8> {
        let mut covered = vec![false; input.len()];
        for p in &patterns.patterns {
            for at in 0..input.len() {
                if input[at..].starts_with(p) {
                    covered[at..at + p.len()].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        let mut out = Vec::new();
        let mut in_mask = false;
        for at in 0..input.len() {
            if covered[at] {
                if !in_mask {
                    out.extend_from_slice(REPLACEMENT);
                }
                in_mask = true;
            } else {
                in_mask = false;
                out.push(input[at]);
            }
        }
        out
    }

    #[test]
    fn base64_forms_are_the_stable_middle() {
        // "abcd" → YWJjZA== ; "_abcd" → X2FiY2Q= ; "__abcd" → X19hYmNk
        let v = b"abcd";
        assert_eq!(base64_form(&STANDARD, v, 0).as_deref(), Some(&b"YWJjZ"[..]));
        assert_eq!(base64_form(&STANDARD, v, 1).as_deref(), Some(&b"FiY2"[..]));
        assert_eq!(base64_form(&STANDARD, v, 2).as_deref(), Some(&b"hYmNk"[..]));
    }

    #[test]
    fn patterns_longest_first_per_byte() {
        let p = Patterns::new(vec![b"abcd".to_vec(), b"abcdef".to_vec(), b"abcd".to_vec()]);
        assert_eq!(p.patterns.len(), 2);
        assert_eq!(p.longest_match_at(b"xabcdefg", 1), Some(6));
        assert_eq!(p.longest_match_at(b"xabcdx", 1), Some(4));
        assert!(p.is_partial_match(b"abc"));
        assert!(!p.is_partial_match(b"abcdef"));
    }

    #[test]
    fn no_secrets_passes_everything_through() {
        let m = masker(&[]);
        let mut s = m.stream();
        assert_eq!(s.write(b"hello"), b"hello");
        assert!(s.finish().is_empty());
    }

    #[test]
    fn streaming_matches_naive_on_every_two_way_split() {
        let m = masker(&["abcd", "cdef", "s3cr\"et\\x"]);
        let input = b"xxabcdefyy abcdabcd ab \"s3cr\\\"et\\\\x\" zz abc";
        let expected = naive(&m.patterns(), input);
        assert_eq!(m.mask(input), expected);
        for split in 0..=input.len() {
            let mut s = m.stream();
            let mut out = s.write(&input[..split]);
            out.extend(s.write(&input[split..]));
            out.extend(s.finish());
            assert_eq!(out, expected, "split at {split}");
        }
    }

    #[test]
    fn streaming_matches_naive_on_random_inputs() {
        // A tiny alphabet makes overlaps, adjacency and near-misses common.
        let m = masker(&["abcd", "cdab", "bcdb", "dddd"]);
        let mut state = 0x2545_F491_u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (state >> 33) % n
        };
        for _ in 0..2000 {
            let len = next(40);
            let input: Vec<u8> = (0..len).map(|_| b"abcd"[next(4) as usize]).collect();
            let expected = naive(&m.patterns(), &input);
            let mut s = m.stream();
            let mut out = Vec::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let take = (next(6) as usize).min(rest.len());
                let (chunk, tail) = rest.split_at(take);
                out.extend(s.write(chunk));
                rest = tail;
            }
            out.extend(s.finish());
            assert_eq!(out, expected, "{}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn held_back_tail_starts_on_a_character() {
        let m = masker(&["ñandú-key"]);
        let mut s = m.stream();
        assert_eq!(s.write("é ñan".as_bytes()), "é ".as_bytes());
        assert_eq!(s.write("dú".as_bytes()), b"");
        assert_eq!(s.write("!".as_bytes()), "ñandú!".as_bytes());
        assert!(s.finish().is_empty());
    }

    #[test]
    fn holds_back_only_a_possible_pattern_start() {
        let m = masker(&["secret"]);
        let mut s = m.stream();
        assert_eq!(s.write(b"hello sec"), b"hello ");
        assert_eq!(s.write(b"ond"), b"second");
        assert_eq!(s.write(b" secr"), b" ");
        assert_eq!(s.write(b"et!"), b"***!");
        assert!(s.finish().is_empty());
    }

    #[test]
    fn added_secret_reaches_clones_and_open_streams() {
        let m = masker(&["secret"]);
        let clone = m.clone();
        let mut s = m.stream();
        assert_eq!(s.write(b"token1234 "), b"token1234 ");
        assert_eq!(clone.add("add-mask", "tok"), Err(MaskError::TooShort { name: "add-mask".into() }));
        clone.add("add-mask", "token1234").expect("long enough");
        clone.add("add-mask", "token1234").expect("adding twice is harmless");
        assert_eq!(s.write(b"token1234 secret"), b"*** ***");
        assert!(s.finish().is_empty());
        assert_eq!(m.mask(b"a token1234"), b"a ***");
        assert_eq!(m.mask(base64::engine::general_purpose::STANDARD.encode("token1234").as_bytes()), b"***");
    }
}
