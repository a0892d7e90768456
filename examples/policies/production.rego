# What may reach production, and when.
package mobius.gate

# Only what Mobius built goes to production: an artifact reported by an outside CI has no run
# Mobius can vouch for.
deny_untrusted_build contains msg if {
	production
	ships_artifact
	not input.artifact.built_by_mobius
	msg := sprintf("%s: only artifacts built by Mobius go to production; %s was built outside Mobius (workflow %s, run %s)", [input.service, input.artifact.digest, input.artifact.workflow, input.artifact.run])
}

# Only builds of the default branch go to production: a feature or release branch goes through
# a merge first.
deny_not_default_branch contains msg if {
	production
	ships_artifact
	input.artifact.branch != input.artifact.default_branch
	msg := sprintf("%s: only builds of %s go to production; %s was built from %s", [input.service, input.artifact.default_branch, input.artifact.digest, branch_name])
}

branch_name := "a tag" if input.artifact.branch == ""

branch_name := sprintf("branch %s", [input.artifact.branch]) if input.artifact.branch != ""

# No production deploy on Friday from 16:00 UTC on, unless the deploy says why (the exception
# below).
deny_friday_afternoon contains msg if {
	production
	ships_artifact
	input.time.weekday == "Friday"
	input.time.hour >= 16
	msg := sprintf("%s: no production deploys on Friday after 16:00 UTC without a reason (it is %s)", [input.service, input.time.rfc3339])
}

exception contains rules if {
	is_string(input.reason)
	trim_space(input.reason) != ""
	rules := ["friday_afternoon"]
}
