//! The streaming secret masker: secrets whole, split across writes, encoded, and refused.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use mobius_pipelines::mask::{MaskError, Masker};

/// Masks `writes` as consecutive writes to one stream and compares the concatenated output
/// (including what `finish` flushes) with `expected`, and with masking the whole input at once.
fn check(secrets: &[(&str, &str)], writes: &[&[u8]], expected: &[u8]) {
    let masker = Masker::new(secrets.iter().copied()).expect("valid secrets");
    let mut stream = masker.stream();
    let mut out = Vec::new();
    for write in writes {
        out.extend(stream.write(write));
    }
    out.extend(stream.finish());
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(expected), "writes {writes:?}");
    assert_eq!(out, expected, "writes {writes:?}");
    assert_eq!(masker.mask(&writes.concat()), expected, "whole input");
}

const TOKEN: (&str, &str) = ("TOKEN", "hunter2-secret");

#[test]
fn secret_printed_whole() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"token=hunter2-secret\n", b"token=***\n"),
        (b"hunter2-secret", b"***"),
        (b"hunter2-secrethunter2-secret", b"***"),
        (b"hunter2-secre", b"hunter2-secre"),
        (b"a hunter2-secret b hunter2-secret c", b"a *** b *** c"),
        (b"", b""),
    ];
    for (input, expected) in cases {
        check(&[TOKEN], &[input], expected);
    }
}

#[test]
fn secret_split_across_two_writes_at_every_point() {
    let input = b"before hunter2-secret after";
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        check(&[TOKEN], &[a, b], b"before *** after");
    }
}

#[test]
fn secret_split_across_three_writes() {
    let input = b"x hunter2-secret y";
    for first in 0..=input.len() {
        for second in first..=input.len() {
            let writes: [&[u8]; 3] = [&input[..first], &input[first..second], &input[second..]];
            check(&[TOKEN], &writes, b"x *** y");
        }
    }
}

#[test]
fn secret_one_byte_per_write() {
    let input = b"hunter2-hunter2-secret!";
    let writes: Vec<&[u8]> = input.chunks(1).collect();
    check(&[TOKEN], &writes, b"hunter2-***!");
}

#[test]
fn base64_forms_at_every_offset() {
    // Expected outputs computed independently: the characters of base64(prefix + secret +
    // "tail!") that depend only on the secret are masked; the edges mixing in neighbours stay.
    let secret = ("PASS", "p@ss>w0rd?~");
    let cases: &[(&[u8], &[u8])] = &[
        (b"cEBzcz53MHJkP350YWlsIQ==", b"***50YWlsIQ=="),
        (b"eHBAc3M+dzByZD9+dGFpbCE=", b"eH***dGFpbCE="),
        (b"eHlwQHNzPncwcmQ/fnRhaWwh", b"eHl***nRhaWwh"),
        (b"eHBAc3M-dzByZD9-dGFpbCE=", b"eH***dGFpbCE="),
        (b"eHlwQHNzPncwcmQ_fnRhaWwh", b"eHl***nRhaWwh"),
        (b"auth: cEBzcz53MHJkP34=\n", b"auth: ***4=\n"),
    ];
    for (input, expected) in cases {
        check(&[secret], &[input], expected);
        let (a, b) = input.split_at(input.len() / 2);
        check(&[secret], &[a, b], expected);
    }
}

#[test]
fn secret_inside_json() {
    let cases: &[(&str, &str, &[u8], &[u8])] = &[
        ("QUOTE", "say \"hi\" now", br#"{"v":"say \"hi\" now"}"#, br#"{"v":"***"}"#),
        ("SLASH", r"C:\keys\prod", br#"{"path":"C:\\keys\\prod"}"#, br#"{"path":"***"}"#),
        ("LINES", "line-one\nline-two", br#"{"k":"line-one\nline-two"}"#, br#"{"k":"***"}"#),
    ];
    for (name, value, input, expected) in cases {
        check(&[(name, value)], &[input], expected);
    }
}

#[test]
fn overlapping_and_adjacent_secrets_are_both_masked() {
    let secrets = [("A", "abcdef"), ("B", "defghi")];
    let cases: &[(&[u8], &[u8])] = &[
        // Overlapping: the union of both ranges is masked, with no fragment between.
        (b"[abcdefghi]", b"[***]"),
        // Adjacent ranges merge into one mask.
        (b"[abcdefdefghi]", b"[***]"),
        (b"[abcdef-defghi]", b"[***-***]"),
    ];
    for (input, expected) in cases {
        check(&secrets, &[input], expected);
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            check(&secrets, &[a, b], expected);
        }
    }
}

#[test]
fn secret_at_the_very_end_is_flushed_by_finish() {
    let masker = Masker::new([TOKEN]).expect("valid");
    let mut stream = masker.stream();
    assert_eq!(stream.write(b"done: hunter2-"), b"done: ");
    assert_eq!(stream.write(b"secret"), b"***");
    assert!(stream.finish().is_empty());

    let mut stream = masker.stream();
    assert_eq!(stream.write(b"end hunter2-sec"), b"end ");
    // Not a secret after all: finish releases the held-back tail unchanged.
    assert_eq!(stream.finish(), b"hunter2-sec");
}

#[test]
fn non_utf8_bytes_around_a_secret() {
    let input = b"\xff\xfe hunter2-secret \xc3\x28 \xe2\x82";
    let expected = b"\xff\xfe *** \xc3\x28 \xe2\x82";
    check(&[TOKEN], &[input], expected);
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        check(&[TOKEN], &[a, b], expected);
    }
    // A non-ASCII secret is matched on its UTF-8 bytes.
    check(&[("UNI", "pässwörd")], &["x pässwörd y".as_bytes()], b"x *** y");
}

#[test]
fn short_secret_refused_by_name_without_value() {
    for value in ["", "x", "Q7", "Zq!", "äöü"] {
        let err = Masker::new([("OK_SECRET", "long-enough"), ("DB_PIN", value)]).expect_err("too short");
        assert_eq!(err, MaskError::TooShort { name: "DB_PIN".into() });
        let text = err.to_string();
        assert!(text.contains("DB_PIN"), "{text}");
        if !value.is_empty() {
            assert!(!text.contains(value), "{text} leaks {value}");
        }
    }
    assert!(Masker::new([("FOUR", "abcd")]).is_ok());
}

#[test]
fn multi_line_secret_lines_masked_separately() {
    let key = ("KEY", "-----BEGIN-----\nMIIEabcdefgh\nxyz\n-----END-----");
    let cases: &[(&[u8], &[u8])] = &[
        (b"line: MIIEabcdefgh\n", b"line: ***\n"),
        (b"-----BEGIN-----", b"***"),
        // Lines under four characters are not masked on their own.
        (b"xyz", b"xyz"),
        (b"-----BEGIN-----\nMIIEabcdefgh\nxyz\n-----END-----\n", b"***\n"),
        // Printed with CRLF line endings, each line is still caught.
        (b"-----BEGIN-----\r\nMIIEabcdefgh\r\n", b"***\r\n***\r\n"),
    ];
    for (input, expected) in cases {
        check(&[key], &[input], expected);
    }
}

/// A small deterministic PRNG (xorshift64*), so the property test needs no extra crates and
/// every failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// Every form of `secret` that must never survive masking.
fn forbidden_forms(secret: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![secret.as_bytes().to_vec()];
    for engine in [&STANDARD, &URL_SAFE] {
        for offset in 0..3usize {
            let mut data = vec![b'#'; offset];
            data.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&data);
            let start = (8 * offset).div_ceil(6);
            let end = 8 * (offset + secret.len()) / 6;
            forms.push(encoded.as_bytes()[start..end].to_vec());
        }
    }
    forms
}

#[test]
fn any_chunking_equals_masking_the_whole_input() {
    let secrets = [("A", "s3cr3t-alpha"), ("B", "alpha-beta!"), ("C", "zz\"q\\uote")];
    let masker = Masker::new(secrets).expect("valid");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut pieces: Vec<Vec<u8>> = vec![
        b" ".to_vec(),
        b"\n".to_vec(),
        b"\xff\xc3".to_vec(),
        "é€".as_bytes().to_vec(),
        b"s3cr3t".to_vec(),
        b"alpha".to_vec(),
        b"zz\\\"q".to_vec(),
    ];
    for (_, value) in secrets {
        pieces.push(value.as_bytes().to_vec());
        pieces.push(serde_json::to_string(value).expect("json").into_bytes());
        for offset in 0..3usize {
            for engine in [&STANDARD, &URL_SAFE] {
                let mut data = b"xy".to_vec();
                data.truncate(offset);
                data.extend_from_slice(value.as_bytes());
                data.extend_from_slice(b"tail");
                pieces.push(engine.encode(&data).into_bytes());
            }
        }
    }
    for _ in 0..300 {
        let mut input = Vec::new();
        for _ in 0..rng.below(20) {
            if rng.below(3) == 0 {
                input.push(u8::try_from(rng.below(256)).unwrap_or(b'?'));
            } else {
                input.extend_from_slice(&pieces[rng.below(pieces.len())]);
            }
        }
        let whole = masker.mask(&input);
        for (_, value) in secrets {
            for form in forbidden_forms(value) {
                assert!(
                    !whole.windows(form.len()).any(|w| w == form.as_slice()),
                    "{:?} survives in {:?}",
                    String::from_utf8_lossy(&form),
                    String::from_utf8_lossy(&whole)
                );
            }
        }
        for _ in 0..20 {
            let mut stream = masker.stream();
            let mut out = Vec::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rng.below(rest.len() + 1).min(rng.below(16)));
                out.extend(stream.write(chunk));
                rest = tail;
            }
            out.extend(stream.finish());
            assert_eq!(out, whole, "input {input:?}");
        }
    }
}

#[test]
fn megabytes_of_log_stay_fast_enough_to_run_in_tests() {
    let masker = Masker::new([TOKEN]).expect("valid");
    let line = b"building crate foo v1.2.3 (hunter2) ok hunter2-secret done\n";
    let input: Vec<u8> = line.iter().copied().cycle().take(4 << 20).collect();
    let mut stream = masker.stream();
    let mut out = Vec::new();
    for chunk in input.chunks(4096) {
        out.extend(stream.write(chunk));
    }
    out.extend(stream.finish());
    assert!(!out.windows(TOKEN.1.len()).any(|w| w == TOKEN.1.as_bytes()));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let masker = mobius_pipelines::mask::Masker::new([("TOKEN", "hunter2-secret")]).unwrap();
    let mut stream = masker.stream();
    let _ = stream.write(b"xx hunter2-se");
    for text in [format!("{masker:?}"), format!("{stream:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
    }
}
