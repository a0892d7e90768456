//! The syntax tree and a recursive-descent parser with GitHub's precedence.

use super::ExprError;
use super::lexer::{Token, TokenKind, tokenize};

/// Trees deeper than this are rejected so that hostile input cannot overflow the stack while
/// parsing, evaluating or dropping. Every parenthesis, `!`, operator in a chain and property
/// access counts one level. The runner's limit is 50 as well (`ExpressionConstants.MaxDepth`).
const MAX_DEPTH: usize = 50;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `null`, `true`, `false`, a number or a string.
    Literal(Literal),
    /// A named context such as `github` or `matrix`, lower-cased.
    Context(String),
    /// `target.name` or `target['name']`.
    Property { target: Box<Expr>, name: String },
    /// `target[index]` with a computed index.
    Index { target: Box<Expr>, index: Box<Expr> },
    /// `target.*` or `target[*]`: the object filter.
    Filter(Box<Expr>),
    /// `!operand`.
    Not(Box<Expr>),
    /// A binary operator.
    Binary { op: BinaryOp, lhs: Box<Expr>, rhs: Box<Expr> },
    /// A call of a built-in function.
    Call { function: Function, args: Vec<Expr> },
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, including `NaN` and `Infinity`.
    Number(f64),
    /// A single-quoted string with `''` unescaped.
    String(String),
}

/// Binary operators, loosest first: `||`, `&&`, `==`/`!=`, then the orderings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||`: the first truthy operand, else the last.
    Or,
    /// `&&`: the first falsy operand, else the last.
    And,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// The built-in functions. Names are matched case-insensitively (`toJson` is common).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `contains(search, item)`.
    Contains,
    /// `startsWith(string, prefix)`.
    StartsWith,
    /// `endsWith(string, suffix)`.
    EndsWith,
    /// `format(template, args…)`.
    Format,
    /// `join(array, separator = ',')`.
    Join,
    /// `toJSON(value)`.
    ToJson,
    /// `fromJSON(text)`.
    FromJson,
    /// `hashFiles(patterns…)`.
    HashFiles,
    /// `success()`.
    Success,
    /// `failure()`.
    Failure,
    /// `cancelled()`.
    Cancelled,
    /// `always()`.
    Always,
}

impl Function {
    const ALL: [(&'static str, Function, usize, usize); 12] = [
        ("contains", Function::Contains, 2, 2),
        ("startsWith", Function::StartsWith, 2, 2),
        ("endsWith", Function::EndsWith, 2, 2),
        ("format", Function::Format, 1, usize::MAX),
        ("join", Function::Join, 1, 2),
        ("toJSON", Function::ToJson, 1, 1),
        ("fromJSON", Function::FromJson, 1, 1),
        // The runner allows up to 255 patterns.
        ("hashFiles", Function::HashFiles, 1, 255),
        // Job-level `success(needs…)`/`failure(needs…)` forms are not supported yet.
        ("success", Function::Success, 0, 0),
        ("failure", Function::Failure, 0, 0),
        ("cancelled", Function::Cancelled, 0, 0),
        ("always", Function::Always, 0, 0),
    ];

    fn lookup(name: &str) -> Option<(&'static str, Function, usize, usize)> {
        Self::ALL.iter().copied().find(|(n, ..)| n.eq_ignore_ascii_case(name))
    }

    /// Whether this is one of the job status functions.
    pub fn is_status(self) -> bool {
        matches!(self, Function::Success | Function::Failure | Function::Cancelled | Function::Always)
    }
}

/// The named contexts GitHub knows; any other bare identifier is a parse error, as in the
/// runner ("Unrecognized named-value"). `jobs` is valid only in `on.workflow_call.outputs`,
/// which lint checks (`workflow::checks`).
pub const CONTEXTS: [&str; 12] =
    ["github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix", "needs", "inputs"];

/// Parses an expression without its `${{ }}` delimiters.
pub fn parse(source: &str) -> Result<Expr, ExprError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser { tokens, pos: 0, depth: 0 };
    if parser.tokens.is_empty() {
        return Err(ExprError::Empty);
    }
    let expr = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some(token) => Err(unexpected(token)),
    }
}

fn unexpected(token: &Token) -> ExprError {
    ExprError::Unexpected { found: token.kind.describe(), column: token.column }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&TokenKind> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn next(&mut self) -> Result<Token, ExprError> {
        let token = self.tokens.get(self.pos).cloned().ok_or(ExprError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(token)
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<Token, ExprError> {
        let token = self.next()?;
        if &token.kind == kind { Ok(token) } else { Err(unexpected(&token)) }
    }

    /// Counts one more level of nesting; callers restore `depth` when they return.
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let column = self.tokens.get(self.pos.saturating_sub(1)).map_or(0, |t| t.column);
            return Err(ExprError::TooDeep { column });
        }
        Ok(())
    }

    /// Parses a left-associative level of binary operators.
    fn binary(
        &mut self,
        ops: &[(TokenKind, BinaryOp)],
        operand: fn(&mut Self) -> Result<Expr, ExprError>,
    ) -> Result<Expr, ExprError> {
        let saved = self.depth;
        let mut lhs = operand(self)?;
        while let Some(op) = self.peek().and_then(|k| ops.iter().find(|(t, _)| t == k).map(|(_, op)| *op)) {
            self.pos += 1;
            self.enter()?;
            let rhs = operand(self)?;
            lhs = Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        self.depth = saved;
        Ok(lhs)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let saved = self.depth;
        self.enter()?;
        let result = self.binary(&[(TokenKind::Or, BinaryOp::Or)], Self::and);
        self.depth = saved;
        result
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        self.binary(&[(TokenKind::And, BinaryOp::And)], Self::equality)
    }

    fn equality(&mut self) -> Result<Expr, ExprError> {
        self.binary(&[(TokenKind::Eq, BinaryOp::Eq), (TokenKind::Ne, BinaryOp::Ne)], Self::comparison)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let ops = [
            (TokenKind::Lt, BinaryOp::Lt),
            (TokenKind::Le, BinaryOp::Le),
            (TokenKind::Gt, BinaryOp::Gt),
            (TokenKind::Ge, BinaryOp::Ge),
        ];
        self.binary(&ops, Self::unary)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&TokenKind::Not) {
            self.pos += 1;
            let saved = self.depth;
            self.enter()?;
            let operand = self.unary();
            self.depth = saved;
            return Ok(Expr::Not(Box::new(operand?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let saved = self.depth;
        let mut expr = self.primary()?;
        loop {
            if matches!(self.peek(), Some(TokenKind::Dot | TokenKind::LBracket)) {
                self.enter()?;
            }
            match self.peek() {
                Some(TokenKind::Dot) => {
                    self.pos += 1;
                    let token = self.next()?;
                    expr = match token.kind {
                        TokenKind::Star => Expr::Filter(Box::new(expr)),
                        TokenKind::Ident(name) => Expr::Property { target: Box::new(expr), name },
                        // Keywords are valid property names (`github.event.null` is odd but legal).
                        TokenKind::Null | TokenKind::Bool(_) => {
                            Expr::Property { target: Box::new(expr), name: token.kind.describe() }
                        }
                        _ => return Err(unexpected(&token)),
                    };
                }
                Some(TokenKind::LBracket) => {
                    self.pos += 1;
                    if self.peek() == Some(&TokenKind::Star) {
                        self.pos += 1;
                        expr = Expr::Filter(Box::new(expr));
                    } else {
                        let index = self.or()?;
                        expr = match index {
                            Expr::Literal(Literal::String(name)) => Expr::Property { target: Box::new(expr), name },
                            index => Expr::Index { target: Box::new(expr), index: Box::new(index) },
                        };
                    }
                    self.expect(&TokenKind::RBracket)?;
                }
                _ => {
                    self.depth = saved;
                    return Ok(expr);
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let token = self.next()?;
        Ok(match token.kind {
            TokenKind::Null => Expr::Literal(Literal::Null),
            TokenKind::Bool(b) => Expr::Literal(Literal::Bool(b)),
            TokenKind::Number(n) => Expr::Literal(Literal::Number(n)),
            TokenKind::String(s) => Expr::Literal(Literal::String(s)),
            TokenKind::LParen => {
                let inner = self.or()?;
                self.expect(&TokenKind::RParen)?;
                inner
            }
            TokenKind::Ident(name) if self.peek() == Some(&TokenKind::LParen) => self.call(name, token.column)?,
            TokenKind::Ident(name) => {
                let lower = name.to_ascii_lowercase();
                if !CONTEXTS.contains(&lower.as_str()) {
                    return Err(ExprError::UnknownContext { name, column: token.column });
                }
                Expr::Context(lower)
            }
            _ => return Err(unexpected(&token)),
        })
    }

    fn call(&mut self, name: String, column: usize) -> Result<Expr, ExprError> {
        let (canonical, function, min, max) =
            Function::lookup(&name).ok_or(ExprError::UnknownFunction { name, column })?;
        self.expect(&TokenKind::LParen)?;
        let mut args = Vec::new();
        if self.peek() == Some(&TokenKind::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.or()?);
                let token = self.next()?;
                match token.kind {
                    TokenKind::Comma => continue,
                    TokenKind::RParen => break,
                    _ => return Err(unexpected(&token)),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let expected = match (min, max) {
                (min, max) if min == max => min.to_string(),
                (min, usize::MAX) => format!("at least {min}"),
                (min, max) => format!("{min} to {max}"),
            };
            return Err(ExprError::ArgumentCount { function: canonical, expected, column });
        }
        Ok(Expr::Call { function, args })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(n: f64) -> Box<Expr> {
        Box::new(Expr::Literal(Literal::Number(n)))
    }

    #[test]
    fn and_binds_tighter_than_or_and_comparisons_tighter_than_equality() {
        let expected = Expr::Binary {
            op: BinaryOp::Or,
            lhs: lit(1.0),
            rhs: Box::new(Expr::Binary {
                op: BinaryOp::And,
                lhs: Box::new(Expr::Binary {
                    op: BinaryOp::Eq,
                    lhs: Box::new(Expr::Binary { op: BinaryOp::Lt, lhs: lit(2.0), rhs: lit(3.0) }),
                    rhs: Box::new(Expr::Literal(Literal::Bool(true))),
                }),
                rhs: lit(4.0),
            }),
        };
        assert_eq!(parse("1 || 2 < 3 == true && 4"), Ok(expected));
    }

    #[test]
    fn property_forms() {
        let dotted = parse("github.event['ref']");
        let expected = Expr::Property {
            target: Box::new(Expr::Property { target: Box::new(Expr::Context("github".into())), name: "event".into() }),
            name: "ref".into(),
        };
        assert_eq!(dotted, Ok(expected));
        assert!(matches!(parse("Matrix.*.x"), Ok(Expr::Property { .. })));
        assert!(matches!(parse("needs[*]"), Ok(Expr::Filter(_))));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse("(1 == 2))"), Err(ExprError::Unexpected { found: ")".into(), column: 9 }));
        assert_eq!(parse("foo(1)"), Err(ExprError::UnknownFunction { name: "foo".into(), column: 1 }));
        assert_eq!(parse("1 &&"), Err(ExprError::UnexpectedEnd));
        assert_eq!(parse("  "), Err(ExprError::Empty));
        assert!(matches!(parse(&"(".repeat(1000)), Err(ExprError::TooDeep { .. })));
        assert!(matches!(parse(&"!".repeat(1000)), Err(ExprError::TooDeep { .. })));
        assert!(matches!(parse(&"1 == ".repeat(10_000)), Err(ExprError::TooDeep { .. })));
        assert!(matches!(parse(&format!("github{}", ".a".repeat(10_000))), Err(ExprError::TooDeep { .. })));
    }
}
