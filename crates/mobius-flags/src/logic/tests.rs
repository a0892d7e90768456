//! JsonLogic operator tables: each rule against data, with the result JsonLogic's reference
//! implementation gives.

use serde_json::{Map, Value, json};

use super::{Abort, Compiler, Env, Scope, State, eval};
use crate::fractional::Algorithm;
use crate::position;

/// Compiles `rule` (flagd-lenient, so any JsonLogic loads) and applies it to `data`.
fn apply(rule: &Value, data: &Value) -> Result<Value, String> {
    let node = position::parse(&rule.to_string()).map_err(|e| e.message)?;
    let expr = Compiler::new(false).any(&node).map_err(|p| p.kind.to_string())?;
    let empty = Map::new();
    let key = json!("flag");
    let env = Env {
        context: &empty,
        flag_key: &key,
        timestamp: std::cell::Cell::new(Some(0)),
        algorithm: Algorithm::HighPrecision,
        require_targeting_key: false,
    };
    let mut state = State::new();
    match eval(&expr, &env, Scope::Item(data), &mut state).map_err(|abort| *abort) {
        Ok(v) => Ok(v.into_json()),
        Err(Abort::Undecided) => Err("undecided".to_owned()),
        Err(Abort::Budget) => Err("budget".to_owned()),
        Err(Abort::TargetingKeyMissing) => Err("targeting key missing".to_owned()),
        Err(Abort::Error(m)) => Err(m),
    }
}

fn check(cases: &[(Value, Value, Value)]) {
    for (rule, data, expected) in cases {
        assert_eq!(apply(rule, data).as_ref(), Ok(expected), "{rule} with {data}");
    }
}

fn check_no_data(cases: &[(Value, Value)]) {
    let cases: Vec<_> = cases.iter().map(|(r, e)| (r.clone(), json!(null), e.clone())).collect();
    check(&cases);
}

#[test]
fn truthiness_is_jsonlogics() {
    check_no_data(&[
        (json!({"!!": [0]}), json!(false)),
        (json!({"!!": [1]}), json!(true)),
        (json!({"!!": [-1]}), json!(true)),
        (json!({"!!": [[]]}), json!(false)),
        (json!({"!!": [[0]]}), json!(true)),
        (json!({"!!": [""]}), json!(false)),
        (json!({"!!": ["0"]}), json!(true)),
        (json!({"!!": [null]}), json!(false)),
        (json!({"!!": [{"var": "missing"}]}), json!(false)),
        (json!({"!": [true]}), json!(false)),
        (json!({"!": true}), json!(false)),
        (json!({"!": [[]]}), json!(true)),
        (json!({"if": [[], "truthy", "falsy"]}), json!("falsy")),
        (json!({"if": [[0], "truthy", "falsy"]}), json!("truthy")),
        (json!({"if": ["0", "truthy", "falsy"]}), json!("truthy")),
    ]);
}

#[test]
fn equality_and_comparison() {
    check_no_data(&[
        (json!({"==": [1, 1]}), json!(true)),
        (json!({"==": [1, "1"]}), json!(true)),
        (json!({"==": [0, false]}), json!(true)),
        (json!({"==": [null, false]}), json!(false)),
        (json!({"==": [null, null]}), json!(true)),
        (json!({"===": [1, "1"]}), json!(false)),
        (json!({"===": [1, 1.0]}), json!(true)),
        (json!({"===": [null]}), json!(false)),
        (json!({"!=": [1, 2]}), json!(true)),
        (json!({"!=": [1, "1"]}), json!(false)),
        (json!({"!==": [1, "1"]}), json!(true)),
        (json!({">": [2, 1]}), json!(true)),
        (json!({">": ["2", 11]}), json!(false)),
        (json!({">=": [1, 1]}), json!(true)),
        (json!({"<": [1, 2]}), json!(true)),
        (json!({"<": ["10", "9"]}), json!(true)),
        (json!({"<": [1, 2, 3]}), json!(true)),
        (json!({"<": [1, 1, 3]}), json!(false)),
        (json!({"<": [1, 4, 3]}), json!(false)),
        (json!({"<=": [1, 1, 3]}), json!(true)),
        (json!({"<=": [1, 3, 3]}), json!(true)),
        (json!({"<=": [1, 4, 3]}), json!(false)),
        (json!({"<": ["a", 1]}), json!(false)),
        (json!({">=": ["a", 1]}), json!(false)),
        (json!({"<": [null, 1]}), json!(true)),
        (json!({"<": [1]}), json!(false)),
    ]);
}

#[test]
fn logic_operators_return_operands() {
    check_no_data(&[
        (json!({"or": [false, 0, "a"]}), json!("a")),
        (json!({"or": [false, 0]}), json!(0)),
        (json!({"or": [true, {"/": [1, "x"]}]}), json!(true)),
        (json!({"and": [true, "a", 3]}), json!(3)),
        (json!({"and": [true, "", 3]}), json!("")),
        (json!({"if": [true, "yes", "no"]}), json!("yes")),
        (json!({"if": [false, "yes", "no"]}), json!("no")),
        (json!({"if": [false, 1, false, 2, 3]}), json!(3)),
        (json!({"if": [false, 1, true, 2, 3]}), json!(2)),
        (json!({"if": [false, 1]}), json!(null)),
        (json!({"if": []}), json!(null)),
        (json!({"if": ["only"]}), json!("only")),
        (json!({"?:": [true, 1, 2]}), json!(1)),
    ]);
}

#[test]
fn arithmetic_is_javascripts() {
    check_no_data(&[
        (json!({"+": [1, "2"]}), json!(3)),
        (json!({"+": ["3px", 1]}), json!(4)),
        (json!({"+": []}), json!(0)),
        (json!({"+": ["1"]}), json!(1)),
        (json!({"+": [0.1, 0.2]}), json!(0.30000000000000004)),
        (json!({"+": ["x", 1]}), json!(null)),
        (json!({"*": [2, "3"]}), json!(6)),
        (json!({"*": [2, 3, 4]}), json!(24)),
        (json!({"-": [5, 2]}), json!(3)),
        (json!({"-": [2]}), json!(-2)),
        (json!({"-": ["5", true]}), json!(4)),
        (json!({"/": [4, 2]}), json!(2)),
        (json!({"/": [1, 4]}), json!(0.25)),
        (json!({"/": [1, 0]}), json!(null)),
        (json!({"%": [7, 3]}), json!(1)),
        (json!({"%": [-7, 3]}), json!(-1)),
        (json!({"min": [3, 1, 2]}), json!(1)),
        (json!({"max": [1, "5", 3]}), json!(5)),
        (json!({"max": [1, "x"]}), json!(null)),
        (json!({"max": []}), json!(null)),
    ]);
    // `*` with one argument returns it untouched (JavaScript's seedless reduce).
    check_no_data(&[(json!({"*": ["2"]}), json!("2"))]);
    assert!(apply(&json!({"*": []}), &json!(null)).is_err());
}

#[test]
fn strings() {
    check_no_data(&[
        (json!({"cat": ["I love", " pie"]}), json!("I love pie")),
        (json!({"cat": [1, 2.5, true, null, [1, 2], 1.0]}), json!("12.5truenull1,21")),
        (json!({"cat": [1e21, 0.0000001]}), json!("1e+211e-7")),
        (json!({"substr": ["jsonlogic", 4]}), json!("logic")),
        (json!({"substr": ["jsonlogic", -5]}), json!("logic")),
        (json!({"substr": ["jsonlogic", 0, 1]}), json!("j")),
        (json!({"substr": ["jsonlogic", -1, 1]}), json!("c")),
        (json!({"substr": ["jsonlogic", 4, -2]}), json!("log")),
        (json!({"substr": ["jsonlogic", -5, -2]}), json!("log")),
        (json!({"substr": ["jsonlogic", 20]}), json!("")),
        (json!({"substr": ["jsonlogic", 2, -20]}), json!("")),
        (json!({"substr": ["héllo", 1, 1]}), json!("é")),
        (json!({"substr": [12345, 1, 2]}), json!("23")),
        (json!({"in": ["Spring", ["Spring", "Summer"]]}), json!(true)),
        (json!({"in": ["Spring", "Springfield"]}), json!(true)),
        (json!({"in": ["i", "team"]}), json!(false)),
        (json!({"in": [1, ["1"]]}), json!(false)),
        (json!({"in": [1, "a1"]}), json!(true)),
        (json!({"in": ["a", null]}), json!(false)),
        (json!({"starts_with": ["abcdef", "abc"]}), json!(true)),
        (json!({"starts_with": ["abcdef", "ABC"]}), json!(false)),
        (json!({"ends_with": ["abcdef", "def"]}), json!(true)),
        (json!({"ends_with": ["abcdef", "abc"]}), json!(false)),
    ]);
}

#[test]
fn flagds_operators_cannot_decide_on_bad_input() {
    for rule in [
        json!({"starts_with": [123, "1"]}),
        json!({"starts_with": ["abc"]}),
        json!({"ends_with": ["abc", null]}),
        json!({"sem_ver": ["1.0.0", "=="]}),
        json!({"sem_ver": ["1.0.0", "===", "1.0.0"]}),
        json!({"sem_ver": ["not-a-version", "=", "1.0.0"]}),
        json!({"sem_ver": [1, "=", "1.0.0"]}),
        json!({"fractional": [["a", 0], ["b", 0]]}),
    ] {
        assert_eq!(apply(&rule, &json!({})), Err("undecided".to_owned()), "{rule}");
    }
    check_no_data(&[
        (json!({"sem_ver": ["v1.2.3", ">=", "1.2"]}), json!(true)),
        (json!({"sem_ver": ["1.2.3-rc.1", "<", "1.2.3"]}), json!(true)),
    ]);
}

#[test]
fn arrays() {
    let data = json!({"xs": [1, 2, 3, 4], "empty": [], "pairs": [{"n": 1}, {"n": 2}]});
    check(&[
        (json!({"merge": [[1, 2], [3, 4]]}), json!(null), json!([1, 2, 3, 4])),
        (json!({"merge": [1, 2, [3, 4]]}), json!(null), json!([1, 2, 3, 4])),
        (json!({"merge": [[1, [2]]]}), json!(null), json!([1, [2]])),
        (json!({"map": [{"var": "xs"}, {"*": [{"var": ""}, 2]}]}), data.clone(), json!([2, 4, 6, 8])),
        (json!({"map": [{"var": "pairs"}, {"var": "n"}]}), data.clone(), json!([1, 2])),
        (json!({"map": [{"merge": [[1], [2]]}, {"+": [{"var": ""}, 1]}]}), json!(null), json!([2, 3])),
        (json!({"map": [{"var": "nothing"}, 1]}), data.clone(), json!([])),
        (json!({"filter": [{"var": "xs"}, {"%": [{"var": ""}, 2]}]}), data.clone(), json!([1, 3])),
        (
            json!({"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}),
            data.clone(),
            json!(10),
        ),
        (json!({"reduce": [{"var": "nothing"}, {"var": "current"}, 7]}), data.clone(), json!(7)),
        (json!({"all": [{"var": "xs"}, {">": [{"var": ""}, 0]}]}), data.clone(), json!(true)),
        (json!({"all": [{"var": "xs"}, {">": [{"var": ""}, 1]}]}), data.clone(), json!(false)),
        (json!({"all": [{"var": "empty"}, true]}), data.clone(), json!(false)),
        (json!({"none": [{"var": "xs"}, {">": [{"var": ""}, 4]}]}), data.clone(), json!(true)),
        (json!({"some": [{"var": "xs"}, {">": [{"var": ""}, 3]}]}), data.clone(), json!(true)),
        (json!({"some": [{"var": "empty"}, true]}), data.clone(), json!(false)),
    ]);
}

#[test]
fn var_and_missing() {
    let data = json!({"a": {"b": [10, {"c": "x"}]}, "n": null, "e": "", "z": 0});
    check(&[
        (json!({"var": "a.b.1.c"}), data.clone(), json!("x")),
        (json!({"var": "a.b.0"}), data.clone(), json!(10)),
        (json!({"var": "a.b.01"}), data.clone(), json!(null)),
        (json!({"var": ["a.b.9", "default"]}), data.clone(), json!("default")),
        (json!({"var": ["n", "default"]}), data.clone(), json!(null)),
        (json!({"var": ["n.deeper", "default"]}), data.clone(), json!("default")),
        (json!({"var": ["z", 5]}), data.clone(), json!(0)),
        (json!({"var": ""}), json!([1]), json!([1])),
        (json!({"var": []}), json!("all"), json!("all")),
        (json!({"var": 1}), json!(["a", "b"]), json!("b")),
        (json!({"missing": ["a", "n", "e", "z", "q"]}), data.clone(), json!(["n", "e", "q"])),
        (json!({"missing": [["a", "q"]]}), data.clone(), json!(["q"])),
        (json!({"missing_some": [1, ["a", "q"]]}), data.clone(), json!([])),
        (json!({"missing_some": [2, ["a", "q", "r"]]}), data.clone(), json!(["q", "r"])),
        (json!({"if": [{"missing": ["a"]}, "missing", "present"]}), data.clone(), json!("present")),
    ]);
}

#[test]
fn unknown_operators_and_odd_objects_are_load_errors() {
    for (rule, message) in [
        (json!({"regex": ["a", "b"]}), "unknown operator \"regex\""),
        (json!({"if": [true, {"a": 1, "b": 2}]}), "exactly one operator, this one has 2 keys"),
        (json!({"var": {"cat": ["a"]}}), "expected a var path"),
    ] {
        let error = apply(&rule, &json!({})).unwrap_err();
        assert!(error.contains(message), "{rule}: {error}");
    }
}

#[test]
fn a_runaway_rule_exhausts_its_budget() {
    let big: Vec<u32> = (0..1000).collect();
    let data = json!({"xs": big.clone()});
    // Inside `map`, `var` reads the element, so the inner array is written into the rule.
    let rule = json!({"map": [{"var": "xs"}, {"map": [big, {"+": [1, 1]}]}]});
    // A million inner evaluations: past the budget, stopped, not run to completion.
    assert_eq!(apply(&rule, &data), Err("budget".to_owned()));
}

#[test]
fn deep_rules_evaluate_without_overflowing() {
    let mut rule = json!(true);
    for _ in 0..(position::MAX_DEPTH / 2 - 1) {
        rule = json!({"!": [rule]});
    }
    assert_eq!(apply(&rule, &json!({})), Ok(json!(false)));
    let mut too_deep = json!(true);
    for _ in 0..position::MAX_DEPTH {
        too_deep = json!({"!": [too_deep]});
    }
    assert!(apply(&too_deep, &json!({})).unwrap_err().contains("nested deeper"));
}
