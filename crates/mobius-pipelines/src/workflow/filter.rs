//! Whether a push, a pull request or a release triggers a workflow: GitHub's filter patterns
//! for `branches`, `tags`, `paths` and their `-ignore` forms, and activity `types`.
//!
//! Pattern syntax as GitHub documents it: `*` matches any characters except `/`, `**` any
//! characters including `/`, `?` one character, `+` one or more of the preceding character,
//! `[abc]` / `[a-z]` one character of a set; a leading `!` in `branches`, `tags` or `paths`
//! excludes what earlier patterns included (later patterns win).

use super::model::RefFilter;

/// A pushed ref and what it changed.
#[derive(Debug, Clone, Copy)]
pub struct PushedRef<'a> {
    /// `main` for `refs/heads/main`.
    pub branch: Option<&'a str>,
    /// `v1.0` for `refs/tags/v1.0`.
    pub tag: Option<&'a str>,
    /// Files changed by the push; `None` when unknown (a new branch), which no path filter
    /// rejects.
    pub changed: Option<&'a [String]>,
}

/// Whether `push` with this filter runs for the pushed ref. `$default-branch` must have been
/// replaced already ([`super::with_default_branch`]).
pub fn push_matches(filter: &RefFilter, pushed: &PushedRef<'_>) -> bool {
    let branches = (&filter.branches, &filter.branches_ignore);
    let tags = (&filter.tags, &filter.tags_ignore);
    let ref_ok = match (pushed.branch, pushed.tag) {
        (Some(branch), _) => ref_matches(branches, tags, branch),
        (None, Some(tag)) => ref_matches(tags, branches, tag),
        (None, None) => false,
    };
    ref_ok && paths_match(filter, pushed.changed)
}

/// Whether `name` passes its kind's filters (`own`: patterns and ignore patterns). Without
/// filters of its own, a ref passes only if the other kind has none either: a workflow with
/// only tag filters does not run for branch pushes, and the other way round.
fn ref_matches(own: (&Vec<String>, &Vec<String>), other: (&Vec<String>, &Vec<String>), name: &str) -> bool {
    let (patterns, ignore) = own;
    if !patterns.is_empty() {
        included(patterns, name)
    } else if !ignore.is_empty() {
        !ignore.iter().any(|p| glob(p, name))
    } else {
        other.0.is_empty() && other.1.is_empty()
    }
}

fn paths_match(filter: &RefFilter, changed: Option<&[String]>) -> bool {
    let Some(changed) = changed else { return true };
    if !filter.paths.is_empty() {
        changed.iter().any(|file| included(&filter.paths, file))
    } else if !filter.paths_ignore.is_empty() {
        changed.iter().any(|file| !filter.paths_ignore.iter().any(|p| glob(p, file)))
    } else {
        true
    }
}

/// The activity types a `pull_request` workflow runs for when it lists none, as on GitHub.
pub const DEFAULT_PULL_REQUEST_TYPES: &[&str] = &["opened", "synchronize", "reopened"];

/// Whether `pull_request` with this filter runs for a pull request into `base` (the base
/// branch, which `branches` filters, as on GitHub), of activity `action`, changing `changed`.
pub fn pull_request_matches(filter: &RefFilter, action: &str, base: &str, changed: Option<&[String]>) -> bool {
    let typed = if filter.types.is_empty() {
        DEFAULT_PULL_REQUEST_TYPES.contains(&action)
    } else {
        filter.types.iter().any(|t| t == action)
    };
    let no_tags = (&Vec::new(), &Vec::new());
    typed && ref_matches((&filter.branches, &filter.branches_ignore), no_tags, base) && paths_match(filter, changed)
}

/// Whether `release` with this filter runs for a release activity (`published`, `created`…);
/// without `types`, every activity runs it, as on GitHub.
pub fn release_matches(filter: &RefFilter, action: &str) -> bool {
    filter.types.is_empty() || filter.types.iter().any(|t| t == action)
}

/// Whether the last pattern in `patterns` that matches `name` is a positive one.
fn included(patterns: &[String], name: &str) -> bool {
    let mut included = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) => {
                if glob(negated, name) {
                    included = false;
                }
            }
            None => {
                if glob(pattern, name) {
                    included = true;
                }
            }
        }
    }
    included
}

/// Whether `name` matches the filter pattern `pattern` in full.
pub fn glob(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches(&pattern, &name)
}

fn matches(p: &[char], n: &[char]) -> bool {
    let Some(&first) = p.first() else { return n.is_empty() };
    if first == '*' {
        let double = p.get(1) == Some(&'*');
        let rest = if double { &p[2..] } else { &p[1..] };
        // `**/` also matches no directory at all: `**/README.md` matches `README.md`.
        if double && rest.first() == Some(&'/') && matches(&rest[1..], n) {
            return true;
        }
        // Try every length the star could take, shortest first.
        for taken in 0..=n.len() {
            if taken > 0 && !double && n[taken - 1] == '/' {
                break;
            }
            if matches(rest, &n[taken..]) {
                return true;
            }
        }
        return false;
    }
    // One character class or literal, possibly followed by `+`.
    let (class, width) = match first {
        '[' => match class_end(p) {
            Some(end) => (Some(&p[1..end]), end + 1),
            None => (None, 1),
        },
        _ => (None, 1),
    };
    let one = |c: char| match (first, class) {
        (_, Some(set)) => in_class(set, c),
        ('?', None) => true,
        (literal, None) => literal == c,
    };
    if p.get(width) == Some(&'+') {
        let rest = &p[width + 1..];
        let mut taken = 0;
        while taken < n.len() && one(n[taken]) {
            taken += 1;
            if matches(rest, &n[taken..]) {
                return true;
            }
        }
        return false;
    }
    match n.first() {
        Some(&c) if one(c) => matches(&p[width..], &n[1..]),
        _ => false,
    }
}

/// The index of the `]` closing the class opened at `p[0]`.
fn class_end(p: &[char]) -> Option<usize> {
    p.iter()
        .enumerate()
        .skip(2)
        .find(|(_, c)| **c == ']')
        .map(|(i, _)| i)
        .or_else(|| (p.get(1) == Some(&']')).then_some(1))
        .filter(|i| *i > 1)
}

fn in_class(set: &[char], c: char) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            if (set[i]..=set[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows from GitHub's "Patterns to match branches and tags" and "Patterns to match file
    /// paths" tables.
    #[test]
    fn patterns_match_as_github_documents() {
        let rows: &[(&str, &str, bool)] = &[
            ("feature/*", "feature/my-branch", true),
            ("feature/*", "feature/your-branch", true),
            ("feature/*", "feature/a/b", false),
            ("feature/**", "feature/beta-a/my-branch", true),
            ("feature/**", "feature/mona/the/octocat", true),
            ("main", "main", true),
            ("main", "main2", false),
            ("releases/mona-the-octocat", "releases/mona-the-octocat", true),
            ("*", "main", true),
            ("*", "releases/x", false),
            ("**", "all/the/branches", true),
            ("*feature", "mona-feature", true),
            ("*feature", "feature", true),
            ("v2*", "v2.0.0", true),
            ("v2*", "v1", false),
            ("v[12].[0-9]+.[0-9]+", "v1.10.1", true),
            ("v[12].[0-9]+.[0-9]+", "v2.0.0", true),
            ("v[12].[0-9]+.[0-9]+", "v3.0.0", false),
            ("v[12].[0-9]+.[0-9]+", "v1.x.0", false),
            ("*.js", "app.js", true),
            ("*.js", "js/index.js", false),
            ("**.js", "js/index.js", true),
            ("docs/*", "docs/README.md", true),
            ("docs/**", "docs/mona/octocat.txt", true),
            ("docs/**/*.md", "docs/a/markdown/file.md", true),
            ("**/docs/**", "src/docs/file.txt", true),
            ("**/README.md", "README.md", true),
            ("**/README.md", "js/README.md", true),
            ("**/*src/**", "a/src/app.js", true),
            ("**/*-post.md", "my-post.md", true),
            ("**/*-post.md", "path/their-post.md", true),
            ("**/migrate-*.sql", "migrate-10909.sql", true),
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("ma?n", "main", true),
            ("ma?n", "man", false),
        ];
        for (pattern, name, want) in rows {
            assert_eq!(glob(pattern, name), *want, "{pattern} vs {name}");
        }
    }

    fn filter(branches: &[&str], ignore: &[&str], paths: &[&str], paths_ignore: &[&str]) -> RefFilter {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        RefFilter {
            branches: owned(branches),
            branches_ignore: owned(ignore),
            paths: owned(paths),
            paths_ignore: owned(paths_ignore),
            ..RefFilter::default()
        }
    }

    fn branch<'a>(name: &'a str, changed: Option<&'a [String]>) -> PushedRef<'a> {
        PushedRef { branch: Some(name), tag: None, changed }
    }

    #[test]
    fn pull_requests_match_types_base_branches_and_paths() {
        let any = RefFilter::default();
        for action in ["opened", "synchronize", "reopened"] {
            assert!(pull_request_matches(&any, action, "main", None), "{action} runs by default");
        }
        assert!(!pull_request_matches(&any, "closed", "main", None), "closed needs `types`");
        let closed = RefFilter { types: vec!["closed".into()], ..RefFilter::default() };
        assert!(pull_request_matches(&closed, "closed", "main", None));
        assert!(!pull_request_matches(&closed, "opened", "main", None), "`types` replaces the default");
        let into_main = filter(&["main"], &[], &["src/**"], &[]);
        let src = ["src/lib.rs".to_owned()];
        let docs = ["docs/a.md".to_owned()];
        assert!(pull_request_matches(&into_main, "opened", "main", Some(&src)), "the base branch is filtered");
        assert!(!pull_request_matches(&into_main, "opened", "feature", Some(&src)));
        assert!(!pull_request_matches(&into_main, "opened", "main", Some(&docs)));
        let tags_only = RefFilter { tags: vec!["v*".into()], ..RefFilter::default() };
        assert!(pull_request_matches(&tags_only, "opened", "main", None), "tags do not filter pull requests");
        assert!(release_matches(&any, "published"));
        let published = RefFilter { types: vec!["published".into()], ..RefFilter::default() };
        assert!(release_matches(&published, "published"));
        assert!(!release_matches(&published, "created"));
    }

    #[test]
    fn branch_filters_with_negation_and_ignore() {
        let f = filter(&["releases/**", "!releases/**-alpha"], &[], &[], &[]);
        assert!(push_matches(&f, &branch("releases/10", None)));
        assert!(!push_matches(&f, &branch("releases/10-alpha", None)));
        assert!(!push_matches(&f, &branch("main", None)));
        let f = filter(&[], &["docs/*"], &[], &[]);
        assert!(push_matches(&f, &branch("main", None)));
        assert!(!push_matches(&f, &branch("docs/x", None)));
        assert!(push_matches(&RefFilter::default(), &branch("anything", None)));
        let tags_only = RefFilter { tags: vec!["v*".into()], ..RefFilter::default() };
        assert!(!push_matches(&tags_only, &branch("main", None)), "only tag filters: branch pushes do not run");
        assert!(push_matches(&tags_only, &PushedRef { branch: None, tag: Some("v1"), changed: None }));
    }

    #[test]
    fn path_filters() {
        let changed = vec!["docs/a.md".to_owned(), "README.md".to_owned()];
        let f = filter(&[], &[], &["src/**"], &[]);
        assert!(!push_matches(&f, &branch("main", Some(&changed))));
        let f = filter(&[], &[], &["**.md", "!docs/**"], &[]);
        assert!(push_matches(&f, &branch("main", Some(&changed))), "README.md is still included");
        let f = filter(&[], &[], &[], &["**.md"]);
        assert!(!push_matches(&f, &branch("main", Some(&changed))), "every changed file is ignored");
        assert!(push_matches(&f, &branch("main", None)), "unknown changes pass");
    }
}
