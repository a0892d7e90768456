package mobius.gate_test

# A production flag turned on by hand on a Wednesday morning, with a reason.
flag_on := object.union(clean, {
	"action": "flag-change",
	"service": "",
	"reason": "launch",
	"flag": {
		"set": "checkout.production",
		"environment": "production",
		"change": "state",
		"flag": "new-checkout",
		"version_before": 3,
		"version_after": 4,
		"rollout": null,
		"flags": [{
			"key": "new-checkout",
			"before": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
			"after": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
		}],
	},
})

flag_change_with(changes) := object.union(flag_on, changes)

friday_evening := {"time": {"rfc3339": "2026-12-04T16:30:00Z", "weekday": "Friday", "hour": 16}}

test_a_flag_change_with_a_reason_is_allowed if {
	count(data.mobius.gate.deny_flag_change_without_reason) == 0 with input as flag_on
	count(data.mobius.gate.deny_flag_on_friday_afternoon) == 0 with input as flag_on
	count(data.mobius.gate.deny_untrusted_build) == 0 with input as flag_on
}

test_a_production_flag_change_without_a_reason_is_denied if {
	some msg in data.mobius.gate.deny_flag_change_without_reason with input as object.remove(flag_on, ["reason"])
	msg == "flag set checkout.production: a state change in production needs a reason (--reason)"
	count(data.mobius.gate.deny_flag_change_without_reason) == 1 with input as flag_change_with({"reason": "  "})
}

test_a_staging_flag_change_needs_no_reason if {
	count(data.mobius.gate.deny_flag_change_without_reason) == 0 with input as object.remove(flag_change_with({"environment": "staging"}), ["reason"])
}

test_a_deploy_is_no_flag_change if {
	count(data.mobius.gate.deny_flag_change_without_reason) == 0 with input as clean
	count(data.mobius.gate.deny_flag_on_friday_afternoon) == 0 with input as with_changes(friday_evening)
}

test_a_flag_turned_on_friday_from_16_utc_is_denied if {
	some msg in data.mobius.gate.deny_flag_on_friday_afternoon with input as flag_change_with(friday_evening)
	contains(msg, "no flag turned on in production on Friday after 16:00 UTC (new-checkout, at 2026-12-04T16:30:00Z)")
}

test_a_flag_turned_on_friday_before_16_utc_is_allowed if {
	count(data.mobius.gate.deny_flag_on_friday_afternoon) == 0 with input as flag_change_with({"time": {"rfc3339": "2026-12-04T15:59:00Z", "weekday": "Friday", "hour": 15}})
}

test_a_flag_turned_off_friday_afternoon_is_allowed if {
	off := [{"key": "new-checkout", "before": flag_on.flag.flags[0].after, "after": flag_on.flag.flags[0].before}]
	count(data.mobius.gate.deny_flag_on_friday_afternoon) == 0 with input as object.union(flag_change_with(friday_evening), {"flag": {"flags": off}})
}

test_a_rollout_step_friday_afternoon_is_denied if {
	step := {"flag": {"change": "rollout-step", "rollout": {"variant": "on", "weight": 20}, "flags": []}}
	count(data.mobius.gate.deny_flag_on_friday_afternoon) == 1 with input as object.union(flag_change_with(friday_evening), step)
}

test_a_hotfix_excepts_the_friday_rule if {
	excepted := data.mobius.gate.exception with input as flag_change_with(object.union(friday_evening, {"reason": "hotfix"}))
	some rules in excepted
	"flag_on_friday_afternoon" in rules
}

test_any_other_reason_does_not_except_the_friday_rule if {
	excepted := data.mobius.gate.exception with input as flag_change_with(friday_evening)
	every rules in excepted {
		not "flag_on_friday_afternoon" in rules
	}
}
