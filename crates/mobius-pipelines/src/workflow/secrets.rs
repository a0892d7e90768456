//! Which secrets a workflow file's expressions name, so a run can refuse to start when one is
//! missing instead of running with an empty string (what GitHub does).

use crate::expr::{Expr, Literal, Segment, parse_template};

/// A `secrets.NAME` (or `secrets['NAME']`) in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    /// The name as written.
    pub name: String,
    /// 1-based line of its first use.
    pub line: usize,
}

/// The secrets the `${{ }}` expressions of `text` name, each once (GitHub's secret names are
/// case-insensitive), in order of first use. `GITHUB_TOKEN` is left out: GitHub provides it.
/// Expressions that do not parse are skipped (lint reports them).
pub fn referenced_secrets(text: &str) -> Vec<SecretUse> {
    let mut found: Vec<SecretUse> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if !line.contains("secrets") {
            continue;
        }
        // `mobius lint` reports the expression; it names no secret that can be known.
        let Ok(segments) = parse_template(line) else { continue };
        for segment in &segments {
            if let Segment::Expression(expr) = segment {
                let mut names = Vec::new();
                collect(expr, &mut names);
                for name in names {
                    let known = found.iter().any(|s| s.name.eq_ignore_ascii_case(&name));
                    if !known && !name.eq_ignore_ascii_case("GITHUB_TOKEN") {
                        found.push(SecretUse { name, line: index + 1 });
                    }
                }
            }
        }
    }
    found
}

fn collect(expr: &Expr, names: &mut Vec<String>) {
    match expr {
        Expr::Property { target, name } => {
            if matches!(target.as_ref(), Expr::Context(c) if c == "secrets") {
                names.push(name.clone());
            } else {
                collect(target, names);
            }
        }
        Expr::Index { target, index } => {
            match (target.as_ref(), index.as_ref()) {
                (Expr::Context(c), Expr::Literal(Literal::String(name))) if c == "secrets" => names.push(name.clone()),
                _ => collect(target, names),
            }
            collect(index, names);
        }
        Expr::Filter(inner) | Expr::Not(inner) => collect(inner, names),
        Expr::Binary { lhs, rhs, .. } => {
            collect(lhs, names);
            collect(rhs, names);
        }
        Expr::Call { args, .. } => args.iter().for_each(|a| collect(a, names)),
        Expr::Literal(_) | Expr::Context(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_secret_once_with_its_first_line() {
        let text = "on: push\njobs:\n  a:\n    steps:\n      - run: echo ${{ secrets.DEPLOY_KEY }} ${{ secrets['Api-Token'] }}\n        env:\n          K: ${{ format('{0}', secrets.deploy_key) || secrets.GITHUB_TOKEN }}\n          N: ${{ github.secrets }}\n";
        let found = referenced_secrets(text);
        assert_eq!(
            found,
            [SecretUse { name: "DEPLOY_KEY".into(), line: 5 }, SecretUse { name: "Api-Token".into(), line: 5 }]
        );
        assert!(referenced_secrets("run: echo secrets are ${{ github.sha }}").is_empty());
    }
}
