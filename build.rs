//! Turns the Rust snippets of every chapter into tests (skeptic).
//!
//! Every Markdown file under `chapters/` is handed to skeptic, so a new chapter is tested as
//! soon as it exists; a `rust` block becomes a test, `rust,ignore` blocks (the ones that show
//! included library code) are skipped.

use std::path::Path;

fn markdown_files(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("chapters/ is readable")
        .map(|e| e.expect("chapters/ entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md")
            && !path.to_string_lossy().ends_with(".skt.md")
        {
            out.push(path.to_string_lossy().into_owned());
        }
    }
}

fn main() {
    let mut files = Vec::new();
    markdown_files(Path::new("chapters"), &mut files);
    println!("cargo:rerun-if-changed=chapters");
    skeptic::generate_doc_tests(&files);
}
