//! Matrix expansion with GitHub's `include` / `exclude` rules.
//!
//! From the docs ("Running variations of jobs in a workflow"): the axes' cartesian product is
//! taken in file order; each `exclude` entry removes every combination it matches (a partial
//! match is enough); then each `include` entry is added to every original combination where it
//! does not overwrite one of the original axis values (values added by an earlier include may be
//! overwritten), and becomes a new combination if it fits none.

use serde_json::{Map, Value};

use super::model::{Matrix, MatrixSpec, Strategy};

/// One combination of matrix values (`matrix.<key>`).
pub type Combination = Map<String, Value>;

/// GitHub's limit on the jobs one matrix may generate.
pub const MAX_COMBINATIONS: usize = 256;

/// Why a matrix cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    /// More than [`MAX_COMBINATIONS`] combinations (`count` saturates for huge products).
    #[error("{count} combinations, more than {MAX_COMBINATIONS}")]
    TooMany {
        /// How many combinations the matrix makes.
        count: usize,
    },
    /// The matrix is or holds a `${{ }}` expression, known only at run time.
    #[error("the matrix is computed at run time")]
    Dynamic,
    /// Neither an axis nor an `include` entry.
    #[error("a matrix needs at least one axis or `include` entry")]
    Empty,
}

/// The combinations of `strategy.matrix`, in GitHub's order. A strategy without a matrix has
/// one empty combination (the job runs once).
pub fn expand_matrix(strategy: &Strategy) -> Result<Vec<Combination>, MatrixError> {
    let matrix = match &strategy.matrix {
        None => return Ok(vec![Combination::new()]),
        Some(MatrixSpec::Expr(_) | MatrixSpec::Computed(_)) => return Err(MatrixError::Dynamic),
        Some(MatrixSpec::Static(m)) => m,
    };
    if matrix.axes.is_empty() {
        if matrix.include.is_empty() {
            return Err(MatrixError::Empty);
        }
        // Without axes every include entry is its own combination.
        return limit(matrix.include.clone());
    }
    let product = matrix.axes.iter().fold(1usize, |n, (_, values)| n.saturating_mul(values.len()));
    // Building a huge product only to count it would cost memory on hostile input; excludes
    // that bring such a product back under the limit are not worth supporting.
    if product > MAX_COMBINATIONS * 64 {
        return Err(MatrixError::TooMany { count: product });
    }
    let mut combos = vec![Combination::new()];
    for (key, values) in &matrix.axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(key.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    combos.retain(|c| !matrix.exclude.iter().any(|e| matches(e, c)));
    let original: Vec<&str> = matrix.axes.iter().map(|(k, _)| k.as_str()).collect();
    let base_len = combos.len();
    let mut extra = Vec::new();
    for entry in &matrix.include {
        let mut fitted = false;
        for combo in combos.iter_mut().take(base_len) {
            let overwrites = entry
                .iter()
                .any(|(k, v)| original.contains(&k.as_str()) && combo.get(k).is_some_and(|cv| !same(cv, v)));
            if !overwrites {
                fitted = true;
                for (k, v) in entry {
                    combo.insert(k.clone(), v.clone());
                }
            }
        }
        if !fitted {
            extra.push(entry.clone());
        }
    }
    combos.extend(extra);
    limit(combos)
}

/// Which entry of a computed matrix has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixEntryError {
    /// An item of `include` or `exclude` is not a mapping.
    #[error("a `matrix.{list}` entry is {item}, not a mapping")]
    ListItemNotAMapping {
        /// `include` or `exclude`.
        list: String,
        /// The item.
        item: Value,
    },
    /// An axis is not a sequence of values.
    #[error("`matrix.{axis}` is {value}, not a sequence")]
    AxisNotASequence {
        /// The axis.
        axis: String,
        /// What it is instead.
        value: Value,
    },
}

/// A matrix from its entries once computed (`axis: [values]`, `include` and `exclude` lists
/// of mappings), in their order; the error says which entry has the wrong shape.
pub fn matrix_from_entries<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a Value)>,
) -> Result<Matrix, MatrixEntryError> {
    let mut matrix = Matrix::default();
    for (key, value) in entries {
        match (key, value) {
            ("include" | "exclude", Value::Array(items)) => {
                let mut list = Vec::new();
                for item in items {
                    match item {
                        Value::Object(entry) => list.push(entry.clone()),
                        other => {
                            return Err(MatrixEntryError::ListItemNotAMapping {
                                list: key.to_owned(),
                                item: other.clone(),
                            });
                        }
                    }
                }
                if key == "include" { matrix.include = list } else { matrix.exclude = list }
            }
            // GitHub accepts a missing list; `fromJSON` of an absent output gives null.
            ("include" | "exclude", Value::Null) => {}
            (_, Value::Array(values)) => matrix.axes.push((key.to_owned(), values.clone())),
            (_, other) => {
                return Err(MatrixEntryError::AxisNotASequence { axis: key.to_owned(), value: other.clone() });
            }
        }
    }
    Ok(matrix)
}

fn limit(combos: Vec<Combination>) -> Result<Vec<Combination>, MatrixError> {
    if combos.len() > MAX_COMBINATIONS {
        return Err(MatrixError::TooMany { count: combos.len() });
    }
    Ok(combos)
}

/// Whether an exclude entry matches a combination: every key it names has the same value.
fn matches(entry: &Map<String, Value>, combo: &Combination) -> bool {
    entry.iter().all(|(k, v)| combo.get(k).is_some_and(|cv| same(cv, v)))
}

/// Equality of matrix values; scalars compare by their text so `12` matches `"12"`, as the
/// runner compares the YAML tokens.
fn same(a: &Value, b: &Value) -> bool {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => Some(String::new()),
            _ => None,
        }
    }
    match (text(a), text(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
