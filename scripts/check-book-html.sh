#!/usr/bin/env bash
# Checks a built book for what a reader offline would notice: math that did not render, and any
# stylesheet, script, font or image that would be fetched from the network.
set -euo pipefail
book=${1:-book}
fail=0
complain() { echo "check-book-html: $*" >&2; fail=1; }

[ -f "$book/katex/katex.min.css" ] || complain "katex/katex.min.css is missing from the built book"
[ -n "$(ls "$book"/katex/fonts/*.woff2 2>/dev/null)" ] || complain "KaTeX fonts are missing from the built book"

# Resources loaded by the page (not plain links a reader may click) must be local.
remote=$(grep -rnoE '<(link|script|img|source|iframe)[^>]*(href|src)="(https?:)?//[^"]*"' "$book" --include='*.html' || true)
[ -z "$remote" ] || complain "pages load remote resources:
$remote"
remote_css=$(grep -rnoE 'url\((["'"'"'])?(https?:)?//[^)]*\)|@import[^;]*(https?:)?//' "$book" --include='*.css' || true)
[ -z "$remote_css" ] || complain "stylesheets load remote resources:
$remote_css"

# Every page with math links the local KaTeX stylesheet, and no math was left raw or in error.
for page in $(grep -rl 'class="katex"' "$book" --include='*.html'); do
  grep -q 'katex/katex.min.css' "$page" || complain "$page has math but does not link katex/katex.min.css"
done
errors=$(grep -rl 'katex-error' "$book" --include='*.html' || true)
[ -z "$errors" ] || complain "KaTeX could not render math in: $errors"
raw=$(grep -rlE '(^|[^\\])\$\$' "$book" --include='*.html' --exclude=print.html | grep -v '/api/' || true)
for page in $raw; do
  # Dollar signs are fine inside code; outside it, a $$ means a display was not rendered. (No
  # grep -q: under pipefail its early exit would kill sed and the pipeline would count as no match.)
  if sed -e 's/<code[^>]*>.*<\/code>//g' -e 's/<pre.*<\/pre>//g' -e '/<pre/,/<\/pre>/d' "$page" | grep -E '(^|[^\\])\$\$' >/dev/null; then
    complain "$page contains unrendered display math (\$\$)"
  fi
done

[ "$fail" -eq 0 ] && echo "check-book-html: $book is self-contained and its math rendered"
exit "$fail"
