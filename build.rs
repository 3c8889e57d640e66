//! Turns the Rust snippets of every chapter into tests (skeptic).
//!
//! The chapters are the Markdown files `chapters/SUMMARY.md` links to, so a new chapter is
//! tested as soon as it is in the table of contents; a `rust` block becomes a test,
//! `rust,ignore` blocks (the ones that show included library code) are skipped. Only the
//! chapters, their skeptic templates and `SUMMARY.md` are watched: the figures and tables the
//! chapter programs write into `chapters/` do not make cargo rebuild the crate.

use std::path::Path;

/// The Markdown files that `SUMMARY.md` links to, in its order.
fn chapters(summary: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in summary.lines() {
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            if target.ends_with(".md") {
                out.push(format!("chapters/{target}"));
            }
            rest = &after[end..];
        }
    }
    out
}

fn main() {
    let summary = std::fs::read_to_string("chapters/SUMMARY.md").expect("chapters/SUMMARY.md");
    println!("cargo:rerun-if-changed=chapters/SUMMARY.md");
    let files = chapters(&summary);
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
        let template = format!("{file}.skt.md");
        if Path::new(&template).exists() {
            println!("cargo:rerun-if-changed={template}");
        }
    }
    skeptic::generate_doc_tests(&files);
}
