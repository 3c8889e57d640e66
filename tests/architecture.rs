//! The crate's dependency graph follows the book's reading order: a module may use the
//! foundations and the modules of chapters before it, never a later one.

use std::path::Path;

/// The modules in reading order: foundations, then the getting-started chapters, then the
/// reimplementations. (A chapter not written yet simply does not appear in the crate.)
const ORDER: &[&str] = &[
    "float",
    "param",
    "init",
    "linear",
    "activation",
    "loss",
    "optim",
    "gradcheck",
    "data",
    "plot",
    "runner",
    "checkpoint", // foundations
    "classical",
    "ngram",
    "math", // getting started
    "mlp",
    "dropout",
    "vae",
    "made",
    "lstm",
    "self_attention",
    "transformer", // reimplementations
];

/// Deliberate forward references, each with its reason.
const EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "classical",
    "mlp",
    "the course's results table compares the classical methods with the MLP chapter's network",
)];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_only_use_what_comes_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |m: &str| ORDER.iter().position(|&o| o == m);
    let mut edges = 0;
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = rel
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let me = rank(&module).unwrap_or_else(|| {
            panic!(
                "src/{}: add `{module}` to ORDER in tests/architecture.rs",
                rel.display()
            )
        });
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("crate::{"),
            "src/{}: name each module in its own `use crate::x` line",
            rel.display()
        );
        for (i, _) in text.match_indices("crate::") {
            let used: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // `impl_params!` is exported at the crate root but defined in `param`.
            let used = if used == "impl_params" {
                "param".to_string()
            } else {
                used
            };
            if used.is_empty() || used == module {
                continue;
            }
            let them = rank(&used)
                .unwrap_or_else(|| panic!("src/{}: uses unknown module `{used}`", rel.display()));
            edges += 1;
            let allowed = EXCEPTIONS.iter().any(|&(a, b, _)| a == module && b == used);
            assert!(
                them < me || allowed,
                "src/{}: `{module}` uses `{used}`, which comes later in the book",
                rel.display()
            );
        }
    }
    assert!(edges > 20, "the check saw the crate's imports");
}
