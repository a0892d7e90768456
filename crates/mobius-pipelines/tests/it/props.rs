//! Property tests of the parsers that take untrusted input: the expression language (`expr`)
//! and workflow files (`workflow`).
//!
//! Each property runs a modest number of cases by default so that CI stays fast; set
//! `PROPTEST_CASES` to run many more (`bench/fuzz.sh` does, in release mode).

mod expr;
mod workflow;

use proptest::prelude::*;

/// `cases` cases, unless `PROPTEST_CASES` says otherwise. proptest reads the variable into
/// `ProptestConfig::default()`, but an explicit case count would override it, so the default
/// count is only applied when the variable is unset.
pub fn config(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() { config } else { ProptestConfig { cases, ..config } }
}

/// Text made of pieces that mean something to the lexer, the parser and the template splitter,
/// so that arbitrary input gets past the first character.
pub fn expression_noise() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        "!",
        "!=",
        "==",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        ",",
        ".",
        "*",
        "'",
        "''",
        "'a'",
        "'}}'",
        "github",
        "matrix",
        "env",
        "steps",
        "foo",
        "format",
        "contains",
        "toJSON",
        "fromJSON",
        "join",
        "hashFiles",
        "success",
        "always",
        "1",
        "-1.5e3",
        "0x1F",
        "0o17",
        "1e",
        "-",
        "NaN",
        "Infinity",
        "-Infinity",
        "null",
        "true",
        "false",
        "${{",
        "}}",
        " ",
        "\t",
        "\n",
        "é",
        "💥",
        "\u{0}",
        "_",
        "a-b",
        "{0}",
    ];
    prop_oneof![
        prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|pieces| pieces.concat()),
        ".{0,64}",
    ]
}
