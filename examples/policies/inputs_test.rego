# Inputs the tests start from: a clean production deploy of a Mobius build of main, on a
# Wednesday morning. Each test changes what it is about with object.union.
#
# The tests name rules by their full path (data.mobius.gate.deny_x) rather than through
# `import data.mobius.gate`: with regorus 0.14.1, a rule reached through an import alias under
# `with input as` is empty when it uses a complete rule defined further down its file.
package mobius.gate_test

clean := {
	"action": "deploy",
	"service": "checkout",
	"environment": "production",
	"artifact": {
		"digest": "sha256:4b1d0c5e8f2a",
		"commit": "9f2c1e7a",
		"branch": "main",
		"default_branch": "main",
		"workflow": "build",
		"run": "1842",
		"built_by_mobius": true,
		"scan": {
			"secrets": {"findings": 0, "unresolved": 0},
			"vulnerabilities": {"critical": 0, "high": 0, "medium": 2, "low": 5},
		},
	},
	"actor": {"name": "ada", "token_scope": "deploy"},
	"time": {"rfc3339": "2026-12-02T10:15:00Z", "weekday": "Wednesday", "hour": 10},
	"slo": {"status": "ok", "budget_remaining": 0.82},
}

with_changes(changes) := object.union(clean, changes)

friday_at(hour, rfc3339) := {"time": {"rfc3339": rfc3339, "weekday": "Friday", "hour": hour}}
