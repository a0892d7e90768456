//! DORA golden histories, written as data: `tests/golden/<name>/events.ndjson` is imported into
//! a fresh store, then every query in `expected.json` runs through the real CLI and its JSON
//! must contain the expected values (fields not named in the expectation may differ).

use std::path::Path;

use serde_json::Value;

use crate::util::Dir;

#[test]
fn golden_histories() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut names: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 3, "golden histories are missing");
    for history in names {
        let name = history.file_name().unwrap().to_string_lossy().into_owned();
        let dir = Dir::new();
        let events = history.join("events.ndjson");
        dir.ok(&["events", "import", events.to_str().unwrap()]);
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(history.join("expected.json")).unwrap()).unwrap();
        for query in expected["queries"].as_array().unwrap() {
            let args: Vec<&str> = query["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            let actual = dir.json(&args);
            let mut path = Vec::new();
            if let Err(problem) = contains(&actual, &query["expect"], &mut path) {
                panic!("{name}: `mobius {}`: {problem}\nactual: {actual:#}", args.join(" "));
            }
        }
    }
}

/// `actual` has every value `expected` names: objects by key, arrays element by element.
fn contains(actual: &Value, expected: &Value, path: &mut Vec<String>) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (key, want) in e {
                path.push(key.clone());
                let got = a.get(key).ok_or_else(|| format!("`{}` is missing", path.join(".")))?;
                contains(got, want, path)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!("`{}` has {} items, expected {}", path.join("."), a.len(), e.len()));
            }
            for (i, (got, want)) in a.iter().zip(e).enumerate() {
                path.push(i.to_string());
                contains(got, want, path)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Number(a), Value::Number(e)) if (a.as_f64().unwrap() - e.as_f64().unwrap()).abs() < 1e-9 => Ok(()),
        (got, want) if got == want => Ok(()),
        (got, want) => Err(format!("`{}` is {got}, expected {want}", path.join("."))),
    }
}
