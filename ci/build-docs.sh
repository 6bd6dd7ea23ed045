#!/usr/bin/env bash
# The documentation site, built as strictly as CI builds it: every warning (a broken link, a page
# missing from the nav, a generated table that fails) is an error. Needs no network: no web fonts,
# no CDN (mkdocs.yml), diagrams are SVG files in docs/assets.
#   ci/build-docs.sh [SITE_DIR]     (default: a temporary directory, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
site=${1:-}
if [[ -z $site ]]; then
    site=$(mktemp -d)
    trap 'rm -rf "$site"' EXIT
fi
export NO_MKDOCS_2_WARNING=1  # Material's banner about MkDocs 2 (pyproject pins mkdocs<2)
.venv/bin/pip install -q -e '.[docs]'
.venv/bin/mkdocs build --strict --site-dir "$site"
echo "docs built in $site: $(find "$site" -name '*.html' | wc -l) pages"
