package mobius.gate_test

frozen := with_changes({"slo": {"status": "frozen", "budget_remaining": -0.1}})

test_a_frozen_budget_denies_production if {
	some msg in data.mobius.gate.deny_budget_frozen with input as frozen
	contains(msg, "-10% left")
}

test_a_hotfix_goes_through_a_freeze if {
	data.mobius.gate.exception[_][_] == "budget_frozen" with input as object.union(frozen, {"reason": "hotfix"})
}

test_another_reason_does_not if {
	not "budget_frozen" in {name | some rules in data.mobius.gate.exception with input as object.union(frozen, {"reason": "demo"}); some name in rules}
}

test_a_flag_change_goes_through_a_freeze if {
	count(data.mobius.gate.deny_budget_frozen) == 0 with input as object.union(frozen, {"action": "flag-change"})
}
