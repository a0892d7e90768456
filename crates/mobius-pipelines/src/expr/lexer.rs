//! Tokens of the expression language, with 1-based columns for error messages.

use super::ExprError;
use super::value::parse_number;

/// A token and the 1-based column (in chars) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Ident(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Star,
    Not,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl TokenKind {
    /// How the token is quoted in error messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Null => "null".into(),
            TokenKind::Bool(b) => b.to_string(),
            TokenKind::Number(n) => super::value::format_number(*n),
            TokenKind::String(s) => format!("'{s}'"),
            TokenKind::Ident(s) => s.clone(),
            TokenKind::LParen => "(".into(),
            TokenKind::RParen => ")".into(),
            TokenKind::LBracket => "[".into(),
            TokenKind::RBracket => "]".into(),
            TokenKind::Comma => ",".into(),
            TokenKind::Dot => ".".into(),
            TokenKind::Star => "*".into(),
            TokenKind::Not => "!".into(),
            TokenKind::Lt => "<".into(),
            TokenKind::Le => "<=".into(),
            TokenKind::Gt => ">".into(),
            TokenKind::Ge => ">=".into(),
            TokenKind::Eq => "==".into(),
            TokenKind::Ne => "!=".into(),
            TokenKind::And => "&&".into(),
            TokenKind::Or => "||".into(),
        }
    }
}

/// Splits `source` into tokens.
///
/// A number starts with a digit, or with `-` or `.` followed by a digit, or is `-Infinity`;
/// the word is then parsed with the runner's number rules, so `0x1F`, `1e3` and `-2.5` are
/// numbers while `1x` is an error. `NaN` and `Infinity` are keywords, as in the runner's lexer.
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let two = |kind| (kind, 2);
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            '[' => (TokenKind::LBracket, 1),
            ']' => (TokenKind::RBracket, 1),
            ',' => (TokenKind::Comma, 1),
            '*' => (TokenKind::Star, 1),
            '!' if next == Some('=') => two(TokenKind::Ne),
            '!' => (TokenKind::Not, 1),
            '<' if next == Some('=') => two(TokenKind::Le),
            '<' => (TokenKind::Lt, 1),
            '>' if next == Some('=') => two(TokenKind::Ge),
            '>' => (TokenKind::Gt, 1),
            '=' if next == Some('=') => two(TokenKind::Eq),
            '&' if next == Some('&') => two(TokenKind::And),
            '|' if next == Some('|') => two(TokenKind::Or),
            '\'' => lex_string(&chars, i)?,
            c if starts_number(c, next, &chars[i..]) => lex_number(&chars, i)?,
            '.' => (TokenKind::Dot, 1),
            c if c.is_ascii_alphabetic() || c == '_' => lex_word(&chars, i),
            other => return Err(ExprError::Unexpected { found: other.to_string(), column }),
        };
        tokens.push(Token { kind, column });
        i += len;
    }
    Ok(tokens)
}

fn starts_number(c: char, next: Option<char>, rest: &[char]) -> bool {
    let next_digit = next.is_some_and(|n| n.is_ascii_digit());
    let point_digit = next == Some('.') && rest.get(2).is_some_and(char::is_ascii_digit);
    c.is_ascii_digit()
        || ((c == '-' || c == '.') && next_digit)
        || (c == '-' && (point_digit || rest.starts_with(&INFINITY)))
}

const INFINITY: [char; 9] = ['-', 'I', 'n', 'f', 'i', 'n', 'i', 't', 'y'];

fn lex_string(chars: &[char], start: usize) -> Result<(TokenKind, usize), ExprError> {
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(ExprError::UnterminatedString { column: start + 1 }),
            // A doubled quote is an escaped quote.
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                value.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((TokenKind::String(value), i + 1 - start)),
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn lex_number(chars: &[char], start: usize) -> Result<(TokenKind, usize), ExprError> {
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        let after_exponent = matches!(chars[i - 1], 'e' | 'E') && (c == '+' || c == '-');
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || after_exponent {
            i += 1;
        } else {
            break;
        }
    }
    let text: String = chars[start..i].iter().collect();
    let value = parse_number(&text);
    if value.is_nan() {
        return Err(ExprError::InvalidNumber { text, column: start + 1 });
    }
    Ok((TokenKind::Number(value), i - start))
}

/// Identifiers may contain `-` (step ids such as `steps.my-step`); keywords are case-sensitive.
fn lex_word(chars: &[char], start: usize) -> (TokenKind, usize) {
    let mut i = start + 1;
    while chars.get(i).is_some_and(|&c| is_word_char(c)) {
        i += 1;
    }
    let word: String = chars[start..i].iter().collect();
    let kind = match word.as_str() {
        "null" => TokenKind::Null,
        "true" => TokenKind::Bool(true),
        "false" => TokenKind::Bool(false),
        "NaN" => TokenKind::Number(f64::NAN),
        "Infinity" => TokenKind::Number(f64::INFINITY),
        _ => TokenKind::Ident(word),
    };
    (kind, i - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source).map(|t| t.into_iter().map(|t| t.kind).collect()).unwrap_or_default()
    }

    #[test]
    fn lexes_operators_and_literals() {
        use TokenKind::*;
        assert_eq!(
            kinds("!a.b-c <= 'it''s' && -1.5e3 || 0x1F"),
            vec![
                Not,
                Ident("a".into()),
                Dot,
                Ident("b-c".into()),
                Le,
                String("it's".into()),
                And,
                Number(-1500.0),
                Or,
                Number(31.0)
            ]
        );
    }

    #[test]
    fn reports_columns() {
        let tokens = tokenize("a  == 1").unwrap_or_default();
        assert_eq!(tokens.iter().map(|t| t.column).collect::<Vec<_>>(), vec![1, 4, 7]);
        assert_eq!(tokenize("'abc"), Err(ExprError::UnterminatedString { column: 1 }));
        assert_eq!(tokenize("1 = 2"), Err(ExprError::Unexpected { found: "=".into(), column: 3 }));
        assert!(matches!(tokenize("12ab"), Err(ExprError::InvalidNumber { column: 1, .. })));
    }
}
