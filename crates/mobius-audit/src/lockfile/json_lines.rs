//! The line of each object-valued key in a JSON document, by its path of keys, so packages
//! read from `package-lock.json` (through `serde_json`, which keeps no positions) can say
//! where they were locked. Only runs on text `serde_json` has already accepted.

use std::collections::HashMap;

/// Path of keys from the root (array elements contribute an empty key) to the 1-based line
/// of the key whose value is an object.
pub(super) fn object_key_lines(text: &str) -> HashMap<Vec<String>, usize> {
    struct Frame {
        /// The key this container is the value of (empty for array elements and the root).
        name: String,
        object: bool,
        expect_key: bool,
    }
    let mut lines = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    // The last key read in the innermost object, and its line.
    let mut pending: Option<(String, usize)> = None;
    let mut line = 1;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\n' => line += 1,
            b'"' => {
                let start = at;
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    if bytes[at] == b'\\' {
                        at += 1;
                    }
                    at += 1;
                }
                if let Some(top) = stack.last_mut()
                    && top.object
                    && top.expect_key
                {
                    let key = serde_json::from_str(&text[start..=at.min(bytes.len() - 1)]).unwrap_or_default();
                    pending = Some((key, line));
                    top.expect_key = false;
                }
            }
            open @ (b'{' | b'[') => {
                let name = match pending.take() {
                    Some((key, key_line)) => {
                        if open == b'{' {
                            let mut path: Vec<String> = stack.iter().skip(1).map(|f| f.name.clone()).collect();
                            path.push(key.clone());
                            lines.insert(path, key_line);
                        }
                        key
                    }
                    None => String::new(),
                };
                stack.push(Frame { name, object: open == b'{', expect_key: open == b'{' });
            }
            b'}' | b']' => {
                stack.pop();
                pending = None;
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.expect_key = top.object;
                }
                pending = None;
            }
            _ => {}
        }
        at += 1;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_object_keys_not_string_values() {
        let text = r#"{
  "name": "x",
  "dependencies": {
    "a": {
      "version": "1.0.0",
      "requires": { "b": "^2" },
      "dependencies": {
        "b": { "version": "2.0.0" }
      }
    },
    "we\"ird": {}
  }
}"#;
        let lines = object_key_lines(text);
        let at = |path: &[&str]| lines.get(&path.iter().map(|s| s.to_string()).collect::<Vec<_>>()).copied();
        assert_eq!(at(&["dependencies"]), Some(3));
        assert_eq!(at(&["dependencies", "a"]), Some(4));
        assert_eq!(at(&["dependencies", "a", "requires"]), Some(6));
        assert_eq!(at(&["dependencies", "a", "dependencies", "b"]), Some(8));
        assert_eq!(at(&["dependencies", "we\"ird"]), Some(11));
        assert_eq!(at(&["name"]), None);
    }
}
