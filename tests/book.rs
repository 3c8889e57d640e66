//! The book's integrity: every chapter SUMMARY.md links to exists, every include and anchor
//! resolves, every figure a chapter shows exists and has alt text, and the math settings that
//! keep the book offline are in place.

use std::path::{Path, PathBuf};

fn chapters() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters")
}

/// Every Markdown file under `chapters/`.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The `(text, target)` pairs of Markdown links `[text](target)` and images `![alt](target)`
/// outside code, with a flag telling images apart.
fn links(markdown: &str) -> Vec<(bool, String, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop inline code spans.
        let mut text = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                text.push_str(part);
            }
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(close) = text[i..].find("](") {
            let close = i + close;
            let open = text[..close].rfind('[');
            let end = text[close + 2..].find(')').map(|e| close + 2 + e);
            if let (Some(open), Some(end)) = (open, end) {
                let image = open > 0 && bytes[open - 1] == b'!';
                out.push((
                    image,
                    text[open + 1..close].to_string(),
                    text[close + 2..end].to_string(),
                ));
                i = end + 1;
            } else {
                i = close + 2;
            }
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:")
}

#[test]
fn every_summary_entry_exists_except_drafts() {
    let summary = std::fs::read_to_string(chapters().join("SUMMARY.md")).unwrap();
    let entries = links(&summary);
    assert!(entries.len() > 10, "SUMMARY.md lists the whole plan");
    let mut written = 0;
    for (_, title, target) in entries {
        if target.is_empty() {
            continue; // a draft: planned, not written yet
        }
        assert!(
            chapters().join(&target).is_file(),
            "SUMMARY.md: `{title}` -> {target} does not exist"
        );
        written += 1;
    }
    assert!(
        written >= 2,
        "at least the introduction and the MLP chapter are written"
    );
}

#[test]
fn every_include_and_anchor_resolves() {
    let mut files = Vec::new();
    markdown_files(&chapters(), &mut files);
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(start) = rest.find("{{#") {
                let after = &rest[start + 3..];
                let end = after
                    .find("}}")
                    .unwrap_or_else(|| panic!("{}:{}: unclosed {{{{#", file.display(), n + 1));
                let directive = after[..end].trim();
                rest = &after[end + 2..];
                let mut words = directive.split_whitespace();
                let kind = words.next().unwrap();
                if !matches!(kind, "include" | "rustdoc_include") {
                    continue;
                }
                let arg = words.next().unwrap_or_else(|| {
                    panic!("{}:{}: {kind} without a path", file.display(), n + 1)
                });
                let (path, anchor) = match arg.split_once(':') {
                    Some((p, a)) => (p, Some(a)),
                    None => (arg, None),
                };
                let target = file.parent().unwrap().join(path);
                let source = std::fs::read_to_string(&target).unwrap_or_else(|_| {
                    panic!(
                        "{}:{}: included file {} does not exist",
                        file.display(),
                        n + 1,
                        target.display()
                    )
                });
                if let Some(anchor) =
                    anchor.filter(|a| !a.chars().next().unwrap_or('0').is_ascii_digit())
                {
                    let has = |tag: &str| {
                        source
                            .lines()
                            .any(|l| l.trim_end().ends_with(&format!("{tag}: {anchor}")))
                    };
                    assert!(
                        has("ANCHOR") && has("ANCHOR_END"),
                        "{}:{}: anchor `{anchor}` not found in {}",
                        file.display(),
                        n + 1,
                        target.display()
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5, "the chapters include code from the crate");
}

#[test]
fn every_figure_exists_and_has_alt_text() {
    let mut files = Vec::new();
    markdown_files(&chapters(), &mut files);
    let mut images = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (image, alt, target) in links(&text) {
            if is_external(&target) || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            let resolved = file.parent().unwrap().join(path);
            if image {
                images += 1;
                assert!(
                    !alt.trim().is_empty(),
                    "{}: figure {target} has no alt text",
                    file.display()
                );
                assert!(
                    resolved.is_file(),
                    "{}: figure {target} does not exist",
                    file.display()
                );
            }
        }
    }
    assert!(images >= 3, "the MLP chapter shows its figures");
}

#[test]
fn math_is_rendered_offline() {
    let toml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("book.toml")).unwrap();
    let katex = toml
        .split("[preprocessor.katex]")
        .nth(1)
        .expect("a [preprocessor.katex] section");
    let section = katex.split("\n[").next().unwrap();
    assert!(
        section.lines().any(|l| l.trim() == "no-css = true"),
        "mdbook-katex must not link its CDN stylesheet"
    );
    let head =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("theme/head.hbs"))
            .unwrap();
    assert!(head.contains("katex/katex.min.css"));
    assert!(chapters().join("katex/katex.min.css").is_file());
    let css = std::fs::read_to_string(chapters().join("katex/katex.min.css")).unwrap();
    for font in css.split("url(fonts/").skip(1) {
        let name = font.split(')').next().unwrap();
        if name.ends_with(".woff2") {
            assert!(
                chapters().join("katex/fonts").join(name).is_file(),
                "missing KaTeX font {name}"
            );
        }
    }
}
