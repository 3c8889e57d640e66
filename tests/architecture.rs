//! The crate's dependency graph follows the book's reading order: a module may use the
//! foundations and the modules of chapters before it, never a later one.
//!
//! The check reads the real paths of the source, parsed with `syn`: every `use` item (grouped,
//! nested, renamed or glob, at the top of a file or inside a function or an inline module) and
//! every path written in code (`crate::mlp::Mlp::new(..)` in an expression or a type, and paths
//! inside macro calls such as `vec![...]`). `crate::`, `self::` and `super::` are resolved
//! against the file's place in the module tree, so `super::super::mlp` from
//! `src/classical/scoreboard.rs` is `crate::mlp`. Doc comments are attributes holding text, not
//! paths, so a doc link to a later chapter is not an import.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use syn::visit::{self, Visit};

/// The modules in reading order: foundations, then the getting-started chapters, then the
/// reimplementations. (A chapter not written yet simply does not appear in the crate.)
const ORDER: &[&str] = &[
    "float",
    "param",
    "init",
    "matmul",
    "vmath",
    "linear",
    "embedding",
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
    "course", // the course's results table, which borrows the MLP chapter's network
    "dropout",
    "vae",
    "made",
    "lstm",
    "self_attention",
    "transformer", // reimplementations
];

/// The crate-relative module path of a file under `src/`: `lib.rs` is the root,
/// `x.rs` and `x/mod.rs` are `x`, `x/y.rs` is `x::y`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Collects every path of a file that names something in this crate, resolved to an absolute
/// module path (without the leading `crate`).
struct Paths {
    /// The module being read: the file's, plus any inline `mod x { ... }` entered.
    module: Vec<String>,
    /// `(absolute path, the path as written)`.
    found: Vec<(Vec<String>, String)>,
    /// Paths that cannot be resolved (a `super` above the crate root).
    errors: Vec<String>,
}

impl Paths {
    fn record(&mut self, segments: &[String]) {
        let written = segments.join("::");
        let (mut base, mut rest) = match segments.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &segments[1..]),
            Some("self") => (self.module.clone(), &segments[1..]),
            Some("super") => (self.module.clone(), segments),
            _ => return,
        };
        while rest.first().is_some_and(|s| s == "super") {
            if base.pop().is_none() {
                self.errors
                    .push(format!("`{written}` goes above the crate root"));
                return;
            }
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        self.found.push((base, written));
    }

    fn use_tree(&mut self, tree: &syn::UseTree, mut prefix: Vec<String>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix);
            }
            syn::UseTree::Name(n) => {
                // `use a::b::{self}` names `a::b` itself.
                if n.ident != "self" {
                    prefix.push(n.ident.to_string());
                }
                self.record(&prefix);
            }
            syn::UseTree::Rename(r) => {
                if r.ident != "self" {
                    prefix.push(r.ident.to_string());
                }
                self.record(&prefix);
            }
            syn::UseTree::Glob(_) => {
                prefix.push("*".to_string());
                self.record(&prefix);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(t, prefix.clone());
                }
            }
        }
    }

    /// Paths inside a macro call, which `syn` leaves as tokens: every `crate`, `self` or
    /// `super` followed by `::name` segments.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        use proc_macro2::TokenTree;
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let colons = |i: usize| {
            matches!((tokens.get(i), tokens.get(i + 1)),
                (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                    if a.as_char() == ':' && b.as_char() == ':')
        };
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id)
                    if ["crate", "self", "super"].contains(&id.to_string().as_str())
                        && !(i >= 2 && colons(i - 2)) =>
                {
                    let mut segments = vec![id.to_string()];
                    while colons(i + 1) {
                        match tokens.get(i + 3) {
                            Some(TokenTree::Ident(next)) => segments.push(next.to_string()),
                            _ => break,
                        }
                        i += 3;
                    }
                    self.record(&segments);
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let inline = m.content.is_some();
        if inline {
            self.module.push(m.ident.to_string());
        }
        visit::visit_item_mod(self, m);
        if inline {
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&u.tree, Vec::new());
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(&segments);
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        visit::visit_macro(self, m);
    }
}

/// The top-level modules that `source`, the file of module `module`, uses, each with one path
/// that shows it, leaving out the module's own.
fn used_modules(source: &str, module: &[String]) -> Result<Vec<(String, String)>, String> {
    let file = syn::parse_file(source).map_err(|e| format!("does not parse: {e}"))?;
    let mut paths = Paths {
        module: module.to_vec(),
        found: Vec::new(),
        errors: Vec::new(),
    };
    paths.visit_file(&file);
    if !paths.errors.is_empty() {
        return Err(paths.errors.join("; "));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (absolute, written) in paths.found {
        let Some(top) = absolute.first() else {
            continue;
        };
        if Some(top) != module.first() && seen.insert(top.clone()) {
            out.push((top.clone(), written));
        }
    }
    Ok(out)
}

/// Macros exported at the crate root (`crate::name!`), with the module that defines each.
const ROOT_MACROS: &[(&str, &str)] = &[("impl_params", "param")];

/// Checks one file against the reading order; returns how many other modules it uses.
fn check_file(rel: &Path, source: &str) -> Result<usize, String> {
    let module = module_of(rel);
    let Some(me) = module.first() else {
        return Ok(0); // lib.rs only declares the modules
    };
    let rank = |m: &str| ORDER.iter().position(|&o| o == m);
    let mine = rank(me).ok_or_else(|| format!("add `{me}` to ORDER in tests/architecture.rs"))?;
    let used = used_modules(source, &module)?;
    for (them, written) in &used {
        // A `#[macro_export]` macro lives at the crate root but belongs to its defining module.
        let them = ROOT_MACROS
            .iter()
            .find(|(name, _)| name == them)
            .map_or(them.as_str(), |(_, home)| home);
        let theirs = rank(them)
            .ok_or_else(|| format!("`{written}` names `{them}`, which is not a module in ORDER"))?;
        if theirs > mine {
            return Err(format!(
                "`{me}` uses `{them}` (`{written}`), which comes later in the book"
            ));
        }
    }
    Ok(used.len())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
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
    files.sort();
    let mut edges = 0;
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let source = std::fs::read_to_string(&file).unwrap();
        match check_file(rel, &source) {
            Ok(n) => edges += n,
            Err(e) => problems.push(format!("src/{}: {e}", rel.display())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(edges > 40, "the check saw the crate's imports ({edges})");
}

#[test]
fn every_module_of_the_crate_is_in_the_reading_order() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let file = syn::parse_file(&lib).unwrap();
    let mut modules = 0;
    for item in file.items {
        if let syn::Item::Mod(m) = item {
            let name = m.ident.to_string();
            assert!(ORDER.contains(&name.as_str()), "add `{name}` to ORDER");
            modules += 1;
        }
    }
    assert!(modules > 10, "{modules}");
}

// The check's own tests: it resolves what a reader of the code would, and it can fail.

fn used(source: &str, module: &[&str]) -> Vec<String> {
    let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
    let mut out: Vec<String> = used_modules(source, &module)
        .unwrap()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    out.sort();
    out
}

#[test]
fn the_reader_resolves_relative_paths_and_ignores_doc_comments() {
    let source = r#"
        //! See [`Mlp`](crate::mlp::Mlp) and [`crate::dropout`].
        use super::super::mlp::Mlp;
        use super::forest::Forest;
        use crate::{data::digits, vae as v};
        use self::inner::X;
        /// Returns a [`crate::lstm::Lstm`], in the docs only.
        fn f() -> crate::linear::Linear<f32> {
            let _ = vec![crate::transformer::Block::new(), self.x];
            todo!()
        }
        mod inner {
            use super::*;
            use super::super::super::made::Made;
        }
    "#;
    assert_eq!(
        used(source, &["classical", "scoreboard"]),
        ["data", "linear", "made", "mlp", "transformer", "vae"]
    );
}

#[test]
fn the_check_rejects_a_later_chapter_however_it_is_named() {
    let file = Path::new("classical/scoreboard.rs");
    for source in [
        "use super::super::mlp::Mlp;",
        "use crate::{data::digits, mlp::Mlp};",
        "fn f() -> usize { crate::mlp::Mlp::<f32>::new(&[1, 2], &mut rng()).sizes().len() }",
        "fn f() { let _ = vec![crate::mlp::Mlp::<f32>::new(&[1, 2], &mut rng())]; }",
        "mod tests { use super::super::super::mlp; }",
    ] {
        let e = check_file(file, source).expect_err(source);
        assert!(e.contains("`classical` uses `mlp`"), "{source}: {e}");
    }
    // Earlier modules, the module itself and doc links are fine.
    let fine = "//! [`crate::mlp`]\nuse super::forest::Forest;\nuse crate::data::digits::Digits;";
    assert_eq!(check_file(file, fine), Ok(1));
    // A module missing from ORDER, and a path above the crate root, are errors too.
    assert!(check_file(Path::new("novel/mod.rs"), "").is_err());
    assert!(check_file(file, "use super::super::super::x;").is_err());
}
