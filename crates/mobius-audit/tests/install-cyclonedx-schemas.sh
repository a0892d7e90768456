#!/usr/bin/env bash
# Installs the CycloneDX 1.6 JSON schema (and the SPDX and JSF schemas it references) that
# mobius-audit's SBOM test validates against (tests/it/sbom.rs reads MOBIUS_CYCLONEDX_SCHEMAS,
# by default the directory below). They come from PyPI's `cyclonedx-python-lib` wheel, which
# ships them unchanged; the wheel's checksum pins that content.
set -euo pipefail
dir=${MOBIUS_CYCLONEDX_SCHEMAS:-/usr/local/share/cyclonedx}
files="bom-1.6.SNAPSHOT.schema.json spdx.SNAPSHOT.schema.json jsf-0.82.SNAPSHOT.schema.json"
complete=1
for f in $files; do [ -f "$dir/$f" ] || complete=0; done
[ "$complete" = 1 ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    cyclonedx-python-lib==11.12.0 -d "$tmp"
wheel="$tmp/cyclonedx_python_lib-11.12.0-py3-none-any.whl"
echo "0e807521a921a5c3cb8ce1153f8a61d29eedfe76a46aac2796b7c6b573391a54  $wheel" | sha256sum -c --quiet
mkdir -p "$dir"
python3 - "$wheel" "$dir" $files <<'PY'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
for name in sys.argv[3:]:
    with open(f"{sys.argv[2]}/{name}", "wb") as out:
        out.write(wheel.read(f"cyclonedx/schema/_res/{name}"))
PY
