# Ten gate rules and an exception, for `cargo bench -p mobius-policy` and
# `cargo run --release -p mobius-policy --example decide_latency`: the shipped examples' rules
# plus ones that call the regex, glob and time builtins.
package mobius.gate

ships_artifact if input.action in {"deploy", "promotion", "gitops-sync"}

production if input.environment == "production"

deny_untrusted_build contains msg if {
	production
	ships_artifact
	not input.artifact.built_by_mobius
	msg := sprintf("%s: only artifacts built by Mobius go to production", [input.service])
}

deny_not_default_branch contains msg if {
	production
	ships_artifact
	input.artifact.branch != input.artifact.default_branch
	msg := sprintf("%s: only builds of %s go to production, not %s", [input.service, input.artifact.default_branch, input.artifact.branch])
}

deny_friday_afternoon contains msg if {
	production
	ships_artifact
	ns := time.parse_rfc3339_ns(input.time.rfc3339)
	time.weekday(ns) == "Friday"
	[hour, _, _] := time.clock(ns)
	hour >= 16
	msg := sprintf("%s: no production deploys on Friday after 16:00 UTC without a reason", [input.service])
}

deny_unresolved_secrets contains msg if {
	ships_artifact
	input.artifact.scan.secrets.unresolved > 0
	msg := sprintf("%s: %d unresolved secret-scan finding(s)", [input.service, input.artifact.scan.secrets.unresolved])
}

deny_critical_vulnerabilities contains msg if {
	ships_artifact
	input.artifact.scan.vulnerabilities.critical > 0
	msg := sprintf("%s: %d critical vulnerabilities", [input.service, input.artifact.scan.vulnerabilities.critical])
}

deny_budget_frozen contains msg if {
	production
	ships_artifact
	input.slo.status == "frozen"
	msg := sprintf("%s: the error budget is exhausted", [input.service])
}

deny_unpinned_digest contains msg if {
	ships_artifact
	not regex.match(`^sha256:[0-9a-f]{64}$`, input.artifact.digest)
	msg := sprintf("%s: %s is not a sha256 digest", [input.service, input.artifact.digest])
}

deny_token_scope contains msg if {
	production
	not input.actor.token_scope in {"deploy", "admin"}
	msg := sprintf("%s: a %s token cannot change production", [input.actor.name, input.actor.token_scope])
}

warn_high_vulnerabilities contains msg if {
	ships_artifact
	input.artifact.scan.vulnerabilities.high > 0
	msg := sprintf("%s: %d high-severity vulnerabilities", [input.service, input.artifact.scan.vulnerabilities.high])
}

warn_release_branch contains msg if {
	glob.match("release/*", ["/"], input.artifact.branch)
	msg := sprintf("%s: built from release branch %s", [input.service, input.artifact.branch])
}

exception contains rules if {
	input.reason in {"hotfix", "security"}
	rules := ["friday_afternoon", "budget_frozen"]
}
