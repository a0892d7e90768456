//! Strings with embedded `${{ … }}` expressions.

use super::parser::{Expr, parse};
use super::value::Value;
use super::{Context, ExprError, evaluate};

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Text copied as is.
    Literal(String),
    /// A parsed `${{ … }}`.
    Expression(Expr),
}

/// Splits `text` into literal and expression segments. The end of an expression is the first
/// `}}` outside a string literal, so `${{ format('}}') }}` works. Parse errors report columns
/// within the whole text.
pub fn parse_template(text: &str) -> Result<Vec<Segment>, ExprError> {
    let mut segments = Vec::new();
    let mut rest = text;
    // Chars consumed so far, to turn expression columns into text columns.
    let mut offset = 0;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            segments.push(Segment::Literal(rest[..start].to_string()));
        }
        let open_column = offset + rest[..start].chars().count() + 1;
        let body = &rest[start + 3..];
        let end = closing(body).ok_or(ExprError::UnterminatedTemplate { column: open_column })?;
        let expr = parse(&body[..end]).map_err(|e| shift(e, open_column + 2))?;
        segments.push(Segment::Expression(expr));
        let consumed = start + 3 + end + 2;
        offset += rest[..consumed].chars().count();
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest.to_string()));
    }
    Ok(segments)
}

/// The byte index of the `}}` that closes an expression, skipping quoted strings.
fn closing(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // `''` inside a string toggles twice, which is what an escaped quote needs.
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Moves an error's column from expression-relative to text-relative.
fn shift(error: ExprError, by: usize) -> ExprError {
    use ExprError::*;
    match error {
        Unexpected { found, column } => Unexpected { found, column: column + by },
        UnterminatedString { column } => UnterminatedString { column: column + by },
        InvalidNumber { text, column } => InvalidNumber { text, column: column + by },
        UnknownFunction { name, column } => UnknownFunction { name, column: column + by },
        ArgumentCount { function, expected, column } => ArgumentCount { function, expected, column: column + by },
        UnknownContext { name, column } => UnknownContext { name, column: column + by },
        TooDeep { column } => TooDeep { column: column + by },
        other => other,
    }
}

/// Evaluates parsed segments. A template that is exactly one expression yields that
/// expression's value unchanged (an object stays an object); otherwise the segments are
/// converted to strings and concatenated.
pub fn evaluate_template(segments: &[Segment], ctx: &dyn Context) -> Result<Value, ExprError> {
    if let [Segment::Expression(expr)] = segments {
        return evaluate(expr, ctx);
    }
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Expression(expr) => out.push_str(&evaluate(expr, ctx)?.to_display_string()),
        }
    }
    Ok(Value::String(out))
}

/// Parses and evaluates `text`, converting the result to a string.
pub fn render(text: &str, ctx: &dyn Context) -> Result<String, ExprError> {
    Ok(evaluate_template(&parse_template(text)?, ctx)?.to_display_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_expressions() {
        let segments = parse_template("a ${{ 'x}}' }} b ${{1}}").unwrap_or_default();
        assert_eq!(segments.len(), 4);
        assert_eq!(segments[0], Segment::Literal("a ".into()));
        assert_eq!(segments[2], Segment::Literal(" b ".into()));
    }

    #[test]
    fn errors_point_into_the_text() {
        assert_eq!(parse_template("ab ${{ 1 ) }}"), Err(ExprError::Unexpected { found: ")".into(), column: 10 }));
        assert_eq!(parse_template("é ${{ 1"), Err(ExprError::UnterminatedTemplate { column: 3 }));
    }
}
