#!/usr/bin/env python3
"""Checks every link and image in the book's Markdown, without building it or using the network.

- Internal links (`[text](other.md#anchor)`, `![alt](folder/fig.svg)`, reference definitions,
  raw HTML `href`/`src`) must name a file that exists, and an anchor that file defines: a
  heading (its id computed as mdBook 0.5 does, duplicates numbered -1, -2, ...), an explicit
  `{#id}`, or an HTML `id="..."`. Links into `api/` (the crate's documentation, published beside
  the book) are checked against `target/doc/` when `cargo doc` has run.
- External links must be well-formed http(s) URLs with a real host name (or mailto:). They are
  not fetched.

Code blocks and inline code are skipped; `{{#include file.md}}` outside code is expanded in
place, its links resolved from the including chapter, as mdBook does.

Usage: scripts/link-check.py [BOOK_ROOT]   (default: the repository; reads BOOK_ROOT/book.toml)
       scripts/link-check.py --self-test   (the broken fixture book must fail with each fault)
Prints `FILE:LINE: problem` for each broken link; exits 1 if there is any.
"""

import html
import re
import subprocess
import sys
import tomllib
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s:]+)(?::[^}\s]*)?\s*\}\}")
REF_DEF = re.compile(r"^ {0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+.*)?$")
AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
HTML_ATTR = re.compile(r"""<[a-zA-Z][^>]*?\s(?:href|src)\s*=\s*["']([^"']*)["']""")
HTML_ID = re.compile(r"""\s(?:id|name)\s*=\s*["']([^"']+)["']""")
HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def strip_code(lines, blank_inline=True):
    """Yields (line number, text) with fenced code blocks removed and inline code blanked."""
    fence = None
    for n, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and line.strip().strip(fence[0]) == "":
                fence = None
            continue
        yield n, blank_inline_code(line) if blank_inline else line


def blank_inline_code(line):
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            end = line.find("`" * run, i + run)
            if end != -1:
                out.append(" " * (end + run - i))
                i = end + run
                continue
            out.append(line[i : i + run])
            i += run
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def inline_destinations(line):
    """The destinations of `[text](dest)` and `![alt](dest)` in a line, parentheses balanced."""
    for m in re.finditer(r"\]\(", line):
        i = m.end()
        while i < len(line) and line[i] == " ":
            i += 1
        if i < len(line) and line[i] == "<":
            end = line.find(">", i)
            if end != -1:
                yield line[i + 1 : end]
            continue
        depth, j = 0, i
        while j < len(line):
            c = line[j]
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            elif c.isspace():
                break
            j += 1
        yield line[i:j]


def heading_text_to_id(text):
    """mdBook 0.5's id for a heading, from its Markdown text (inline markup removed)."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    parts = re.split(r"(`+)(.*?)\1", text)
    plain = []
    for k, part in enumerate(parts):
        if k % 3 == 2:  # inside a code span: verbatim
            plain.append(part)
        elif k % 3 == 0:
            part = part.replace("*", "").replace("\\", "")
            part = re.sub(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])", "", part)
            plain.append(part)
    text = "".join(plain).strip().lower()
    out = []
    for ch in text:
        if ch.isalnum() or ch in "_-":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


class Book:
    def __init__(self, root):
        self.root = root
        config = tomllib.loads((root / "book.toml").read_text(encoding="utf-8"))
        self.src = (root / config.get("book", {}).get("src", "src")).resolve()
        self.api_docs = REPO / "target" / "doc"
        self.problems = []
        self.anchor_cache = {}
        self.api_unchecked = 0

    def complain(self, file, line, message):
        self.problems.append(f"{file.relative_to(self.root) if file.is_relative_to(self.root) else file}:{line}: {message}")

    def expanded(self, file, seen=()):
        """The file's lines with `{{#include x.md}}` (outside code) expanded, each with its origin."""
        out = []
        fence = None
        lines = file.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            m = FENCE.match(line)
            if fence is None and m:
                fence = m.group(1)
            elif fence is not None and line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
            elif fence is None:
                inc = INCLUDE.search(line)
                if inc and inc.group(1).endswith(".md"):
                    target = (file.parent / inc.group(1)).resolve()
                    if target.is_file() and target not in seen:
                        out.extend((line_text, (file, n)) for line_text, _ in self.expanded(target, seen + (file,)))
                        continue
            out.append((line, (file, n)))
        return out

    def anchors_of_markdown(self, file):
        if file in self.anchor_cache:
            return self.anchor_cache[file]
        ids, used = set(), set()
        lines = [text for text, _ in self.expanded(file)]
        previous = ""
        for _, line in strip_code(lines, blank_inline=False):
            for m in HTML_ID.finditer(blank_inline_code(line)):
                ids.add(html.unescape(m.group(1)))
            text = None
            atx = re.match(r"^ {0,3}#{1,6}(?:\s+(.*?))?\s*$", line)
            if atx:
                text = re.sub(r"\s+#+\s*$", "", atx.group(1) or "")
            elif re.match(r"^ {0,3}(=+|-+)\s*$", line) and previous.strip() and not previous.lstrip().startswith(("-", "*", "|", ">")):
                text = previous.strip()
            previous = line
            if text is None:
                continue
            attrs = re.search(r"\s*\{([^}]*)\}\s*$", text)
            if attrs:
                explicit = re.search(r"#([^\s}]+)", attrs.group(1))
                text = text[: attrs.start()]
                if explicit:
                    ids.add(explicit.group(1))
                    used.add(explicit.group(1))
                    continue
            base = heading_text_to_id(text)
            candidate, k = base, 0
            while candidate in used:
                k += 1
                candidate = f"{base}-{k}"
            used.add(candidate)
            ids.add(candidate)
        self.anchor_cache[file] = ids
        return ids

    def anchors_of_html(self, file):
        if file not in self.anchor_cache:
            text = file.read_text(encoding="utf-8", errors="replace")
            self.anchor_cache[file] = {html.unescape(m.group(1)) for m in HTML_ID.finditer(text)}
        return self.anchor_cache[file]

    def check_external(self, file, line, dest):
        parsed = urllib.parse.urlsplit(dest)
        scheme = parsed.scheme.lower()
        if scheme == "mailto":
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", parsed.path):
                self.complain(file, line, f"{dest}: not a valid mailto address")
            return
        if scheme not in ("http", "https"):
            self.complain(file, line, f"{dest}: external links must be http or https (scheme {scheme}:)")
            return
        host = parsed.hostname or ""
        labels = host.split(".")
        if not parsed.netloc or len(labels) < 2 or not all(HOST_LABEL.match(label) for label in labels):
            self.complain(file, line, f"{dest}: not a valid URL (host {host!r})")
            return
        try:
            parsed.port
        except ValueError:
            self.complain(file, line, f"{dest}: not a valid URL (port)")
            return
        if re.search(r"\s", dest):
            self.complain(file, line, f"{dest}: not a valid URL (space)")

    def check_internal(self, file, line, base_dir, dest):
        path_part, _, anchor = dest.partition("#")
        path_part = urllib.parse.unquote(path_part.split("?")[0])
        anchor = urllib.parse.unquote(anchor)
        target = (base_dir / path_part).resolve() if path_part else file.resolve()
        try:
            inside = target.relative_to(self.src)
        except ValueError:
            self.complain(file, line, f"{dest}: points outside the book ({self.src.name}/)")
            return
        if inside.parts[:1] == ("api",):
            self.check_api(file, line, dest, inside, anchor)
            return
        if target.suffix == ".html" and target.with_suffix(".md").is_file():
            target = target.with_suffix(".md")
        if target.is_dir():
            target = target / "index.md" if (target / "index.md").is_file() else target / "README.md"
        if not target.is_file():
            self.complain(file, line, f"{dest}: {target.relative_to(self.src)} does not exist")
            return
        if anchor:
            if target.suffix != ".md":
                return
            if anchor not in self.anchors_of_markdown(target):
                self.complain(file, line, f"{dest}: {target.relative_to(self.src)} has no heading or id {anchor!r}")

    def check_api(self, file, line, dest, inside, anchor):
        if not self.api_docs.is_dir():
            self.api_unchecked += 1
            return
        target = self.api_docs.joinpath(*inside.parts[1:])
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            self.complain(file, line, f"{dest}: the API documentation has no {inside}")
        elif anchor and anchor not in self.anchors_of_html(target):
            self.complain(file, line, f"{dest}: {inside} has no anchor {anchor!r}")

    def check_file(self, file):
        lines = self.expanded(file)
        texts = [text for text, _ in lines]
        for n, text in strip_code(texts):
            origin, line = lines[n - 1][1]
            dests = list(inline_destinations(text))
            m = REF_DEF.match(text)
            if m:
                dests.append(m.group(2))
            dests += [m.group(1) for m in AUTOLINK.finditer(text)]
            dests += [html.unescape(m.group(1)) for m in HTML_ATTR.finditer(text)]
            for dest in dests:
                dest = dest.strip()
                if not dest:
                    if file.name != "SUMMARY.md":  # there, `- [Title]()` is a draft chapter
                        self.complain(origin, line, "empty link destination")
                elif SCHEME.match(dest):
                    self.check_external(origin, line, dest)
                else:
                    self.check_internal(origin, line, file.parent, dest)

    def files(self):
        """Every Markdown file of the book, except those only included into another."""
        all_md = sorted(self.src.rglob("*.md"))
        included = set()
        for f in all_md:
            for line in f.read_text(encoding="utf-8").splitlines():
                for m in INCLUDE.finditer(line):
                    included.add((f.parent / m.group(1)).resolve())
        return [f for f in all_md if f.resolve() not in included]

    def run(self):
        files = self.files()
        for f in files:
            self.check_file(f)
        for p in self.problems:
            print(p)
        note = f"; {self.api_unchecked} link(s) into api/ not checked (run cargo doc)" if self.api_unchecked else ""
        if self.problems:
            print(f"link-check: {len(self.problems)} broken link(s) in {len(files)} Markdown files{note}", file=sys.stderr)
            return 1
        print(f"link-check: every link in {len(files)} Markdown files is well-formed and resolves{note}")
        return 0


def self_test():
    fixture = REPO / "tests" / "fixtures" / "broken-book"
    result = subprocess.run([sys.executable, __file__, str(fixture)], capture_output=True, text=True)
    out = result.stdout
    print(out, end="")
    expected = {
        "the missing figure": r"broken\.md:\d+: figures/missing\.svg: figures/missing\.svg does not exist",
        "the link to a missing page": r"broken\.md:\d+: nowhere\.md: nowhere\.md does not exist",
        "the link to a missing anchor": r"broken\.md:\d+: working\.md#no-such-section: working\.md has no heading or id 'no-such-section'",
        "the misspelt scheme": r"broken\.md:\d+: htps://example\.org/: external links must be http or https",
        "the invalid host": r"broken\.md:\d+: https://example\.\.org/: not a valid URL",
    }
    ok = result.returncode == 1
    if not ok:
        print(f"self-test: link-check exited with {result.returncode}, expected 1", file=sys.stderr)
    for what, pattern in expected.items():
        if re.search(pattern, out):
            print(f"self-test: reported {what}")
        else:
            print(f"self-test: NOT reported: {what}", file=sys.stderr)
            ok = False
    if re.search(r"(working|index)\.md:", out):
        print("self-test: the fixture's working pages were reported, they should pass", file=sys.stderr)
        ok = False
    if ok:
        print("self-test: the link check catches a missing figure, page and anchor and malformed URLs")
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO
    return Book(root).run()


if __name__ == "__main__":
    sys.exit(main())
