# An exhausted error budget freezes production, except for hotfixes and security fixes. Flag
# changes go through: turning a feature off is how a burning budget is often stopped.
package mobius.gate

deny_budget_frozen contains msg if {
	production
	ships_artifact
	input.slo.status == "frozen"
	msg := sprintf("%s: the error budget is exhausted (%v%% left): production is frozen but for hotfixes and security fixes", [input.service, input.slo.budget_remaining * 100])
}

warn_budget_burning contains msg if {
	production
	input.slo.status == "warning"
	msg := sprintf("%s: the error budget is burning fast (%v%% left)", [input.service, input.slo.budget_remaining * 100])
}

exception contains rules if {
	input.reason in {"hotfix", "security"}
	rules := ["budget_frozen"]
}
