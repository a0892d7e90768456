#!/bin/sh
# Installed by `mobius hooks install`: refuses a commit whose staged changes add a secret.
# Bypass once with SKIP=mobius-secrets git commit ...; mark a known false positive with a
# `gitleaks:allow` comment on its line, or allowlist it in .gitleaks.toml.
case ",${SKIP:-}," in
    *,mobius-secrets,*) exit 0 ;;
esac
if ! command -v mobius >/dev/null 2>&1; then
    echo "pre-commit: mobius is not on PATH; cannot scan staged changes for secrets" >&2
    exit 1
fi
mobius scan secrets --staged --redact
status=$?
if [ "$status" -eq 1 ]; then
    echo "pre-commit: secrets found in staged changes; commit refused" >&2
elif [ "$status" -ne 0 ]; then
    echo "pre-commit: the secret scan failed (exit $status); commit refused" >&2
fi
exit "$status"
