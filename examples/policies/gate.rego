# What the gate policies of this directory share.
package mobius.gate

# The actions that put an artifact into an environment (a flag change does not).
ships_artifact if input.action in {"deploy", "promotion", "gitops-sync"}

production if input.environment == "production"

# A change to a feature flag set of an environment (`input.flag` says what changes).
flag_change if input.action == "flag-change"
