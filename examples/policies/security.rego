# What no environment takes, whatever the reason.
package mobius.gate

deny_unresolved_secrets contains msg if {
	ships_artifact
	unresolved := input.artifact.scan.secrets.unresolved
	unresolved > 0
	msg := sprintf("%s: %s has %d unresolved secret-scan finding(s); revoke each secret or mark it a false positive first", [input.service, input.artifact.commit, unresolved])
}

deny_critical_vulnerabilities contains msg if {
	ships_artifact
	critical := input.artifact.scan.vulnerabilities.critical
	critical > 0
	msg := sprintf("%s: %s has %d critical vulnerabilit(y/ies)", [input.service, input.artifact.digest, critical])
}

warn_high_vulnerabilities contains msg if {
	ships_artifact
	high := input.artifact.scan.vulnerabilities.high
	high > 0
	msg := sprintf("%s: %s has %d high-severity vulnerabilit(y/ies)", [input.service, input.artifact.digest, high])
}
