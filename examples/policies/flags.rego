# What flag changes production takes, and when. A flag flip releases code to users as a deploy
# does, so it is held to the same hours; and each one says why, for the audit trail and the
# incident timeline that show it.
package mobius.gate

# Every change to a production flag set gives a reason (`--reason`, `X-Mobius-Reason`).
deny_flag_change_without_reason contains msg if {
	flag_change
	production
	not has_reason
	msg := sprintf("flag set %s: a %s change in production needs a reason (--reason)", [input.flag.set, input.flag.change])
}

# No flag turned on in production on Friday from 16:00 UTC on — a rollout's step up included —
# unless it is a hotfix or a security fix (the exception below). Turning one off always goes.
deny_flag_on_friday_afternoon contains msg if {
	flag_change
	production
	input.time.weekday == "Friday"
	input.time.hour >= 16
	some key in turned_on
	msg := sprintf("flag set %s: no flag turned on in production on Friday after 16:00 UTC (%s, at %s)", [input.flag.set, key, input.time.rfc3339])
}

exception contains rules if {
	flag_change
	input.reason in {"hotfix", "security"}
	rules := ["flag_on_friday_afternoon"]
}

has_reason if {
	is_string(input.reason)
	trim_space(input.reason) != ""
}

# The flags the change turns on: enabled after and not before, or the flag a rollout steps up.
turned_on contains f.key if {
	some f in input.flag.flags
	enabled(f.after)
	not enabled(f.before)
}

turned_on contains input.flag.flag if input.flag.change == "rollout-step"

enabled(definition) if definition.state == "ENABLED"
