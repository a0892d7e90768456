package mobius.gate_test

test_a_clean_production_deploy_is_allowed if {
	count(data.mobius.gate.deny_untrusted_build) == 0 with input as clean
	count(data.mobius.gate.deny_not_default_branch) == 0 with input as clean
	count(data.mobius.gate.deny_friday_afternoon) == 0 with input as clean
}

test_an_outside_build_is_denied_in_production if {
	some msg in data.mobius.gate.deny_untrusted_build with input as with_changes({"artifact": {"built_by_mobius": false}})
	contains(msg, "only artifacts built by Mobius go to production")
}

test_an_outside_build_goes_to_staging if {
	count(data.mobius.gate.deny_untrusted_build) == 0 with input as with_changes({"environment": "staging", "artifact": {"built_by_mobius": false}})
}

test_a_feature_branch_is_denied_in_production if {
	some msg in data.mobius.gate.deny_not_default_branch with input as with_changes({"artifact": {"branch": "feature/pay-later"}})
	contains(msg, "built from branch feature/pay-later")
}

test_a_tag_build_is_denied_in_production if {
	some msg in data.mobius.gate.deny_not_default_branch with input as with_changes({"artifact": {"branch": ""}})
	contains(msg, "built from a tag")
}

test_a_flag_change_is_not_a_build if {
	count(data.mobius.gate.deny_not_default_branch) == 0 with input as with_changes({"action": "flag-change", "artifact": {"branch": "feature/x"}})
}

test_friday_from_16_utc_is_denied if {
	count(data.mobius.gate.deny_friday_afternoon) == 1 with input as with_changes(friday_at(16, "2026-12-04T16:00:00Z"))
}

test_friday_before_16_utc_is_allowed if {
	count(data.mobius.gate.deny_friday_afternoon) == 0 with input as with_changes(friday_at(15, "2026-12-04T15:59:59Z"))
}

test_a_reason_excepts_friday_afternoon if {
	inp := object.union(with_changes(friday_at(17, "2026-12-04T17:30:00Z")), {"reason": "hotfix"})
	data.mobius.gate.exception[_][_] == "friday_afternoon" with input as inp
}

test_a_blank_reason_is_no_reason if {
	inp := object.union(with_changes(friday_at(17, "2026-12-04T17:30:00Z")), {"reason": "  "})
	not "friday_afternoon" in {name | some rules in data.mobius.gate.exception with input as inp; some name in rules}
}
