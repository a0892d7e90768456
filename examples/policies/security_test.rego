package mobius.gate_test

test_an_unresolved_secret_is_denied_everywhere if {
	some msg in data.mobius.gate.deny_unresolved_secrets with input as with_changes({"environment": "dev", "artifact": {"scan": {"secrets": {"findings": 2, "unresolved": 1}}}})
	contains(msg, "1 unresolved secret-scan finding")
}

test_resolved_secrets_are_allowed if {
	count(data.mobius.gate.deny_unresolved_secrets) == 0 with input as with_changes({"artifact": {"scan": {"secrets": {"findings": 3, "unresolved": 0}}}})
}

test_a_critical_vulnerability_is_denied if {
	count(data.mobius.gate.deny_critical_vulnerabilities) == 1 with input as with_changes({"artifact": {"scan": {"vulnerabilities": {"critical": 1}}}})
}

test_a_high_vulnerability_only_warns if {
	inp := with_changes({"artifact": {"scan": {"vulnerabilities": {"high": 3}}}})
	count(data.mobius.gate.warn_high_vulnerabilities) == 1 with input as inp
	count(data.mobius.gate.deny_critical_vulnerabilities) == 0 with input as inp
}
