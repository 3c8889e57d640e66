//! Claims the book makes about itself, kept true by tests:
//!
//! * `chapters/appendix/references.md` says it lists every work the book cites. Every citation a
//!   chapter makes (found by the scanner below) must have an entry there with the first
//!   author's surname and the year, and every link to an anchor of that page must resolve.
//! * The introduction lists the crate's modules. Every module it names must exist in `src/`, and
//!   every module of the crate must be named there.
//!
//! The citation scanner reads the prose of every Markdown file under `chapters/` (code, math,
//! link targets and HTML tags removed) and recognises the forms the book uses:
//!
//! * `Surname et al. (2015)`, `Surname et al., 2014`, or `Surname et al.` with no year;
//! * `Surname and Surname (1995)` and `Surname and Surname, 2015`;
//! * a full citation: an author list (`C. Cortes and V. Vapnik`, `Ian Goodfellow, Yoshua Bengio
//!   and Aaron Courville`, `Geurts, Ernst and Wehenkel`, `S. Keshav's`) followed by a comma, a
//!   full stop or a possessive and then a title, with a year later in the same paragraph.
//!
//! Words inside italics or quotation marks are titles, never authors. The first tests run the
//! scanner on examples of every form, so that a scanner that finds nothing cannot pass.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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

/// Removes the parts of a Markdown line pair delimited by `open` .. `close` (one line only).
fn strip_delimited(line: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find(open) {
        let after = &rest[start + open.len()..];
        match after.find(close) {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push(' ');
                rest = &after[end + close.len()..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// The prose of a Markdown text, line for line (so line numbers survive): fenced code, display
/// math, inline code, inline math, includes, link targets, HTML tags and blockquote markers
/// removed.
fn prose(markdown: &str) -> String {
    let mut out = Vec::new();
    let (mut fence, mut math) = (false, false);
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fence = !fence;
            out.push(String::new());
            continue;
        }
        if !fence && math {
            // Inside display math, until a line that closes it.
            math = !line.contains("$$");
            out.push(String::new());
            continue;
        }
        if !fence && trimmed.starts_with("$$") {
            // Display math: `$$ ... $$` on one line is whole; a `$$` alone opens a block.
            math = !trimmed[2..].contains("$$");
            out.push(String::new());
            continue;
        }
        if fence {
            out.push(String::new());
            continue;
        }
        let mut text = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                text.push_str(part);
            } else {
                text.push(' ');
            }
        }
        let mut text = strip_delimited(&text, "$", "$");
        text = strip_delimited(&text, "{{#", "}}");
        text = strip_delimited(&text, "](", ")");
        text = strip_delimited(&text, "<", ">");
        let text = text.trim_start();
        let text = text.trim_start_matches('>');
        out.push(text.to_string());
    }
    out.join("\n")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Word,
    /// `C.` or `C.-J.`
    Initial,
    Number,
    Punct,
    /// A blank line: the end of a paragraph.
    Break,
}

#[derive(Clone, Debug)]
struct Tok {
    kind: Kind,
    text: String,
    /// Inside italics or quotation marks: part of a title.
    title: bool,
    /// Preceded by whitespace.
    spaced: bool,
    line: usize,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut toks = Vec::new();
    let (mut emph, mut quote) = (false, false);
    let mut line = 1;
    let mut spaced = true;
    let mut i = 0;
    let push = |toks: &mut Vec<Tok>, kind, text: String, title, spaced, line| {
        toks.push(Tok {
            kind,
            text,
            title,
            spaced,
            line,
        })
    };
    while i < n {
        let c = chars[i];
        if c == '\n' {
            let mut newlines = 0;
            while i < n && chars[i].is_whitespace() {
                if chars[i] == '\n' {
                    newlines += 1;
                    line += 1;
                }
                i += 1;
            }
            if newlines >= 2 {
                push(&mut toks, Kind::Break, String::new(), false, true, line);
                emph = false;
                quote = false;
            }
            spaced = true;
            continue;
        }
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let title = emph || quote;
        if c.is_alphabetic() {
            let start = i;
            while i < n
                && (chars[i].is_alphabetic()
                    || (matches!(chars[i], '\'' | '’' | '-')
                        && i + 1 < n
                        && chars[i + 1].is_alphabetic()))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word.chars().count() == 1 && c.is_uppercase() && i < n && chars[i] == '.' {
                // An initial, perhaps hyphenated: `C.` or `C.-J.`.
                let mut initial = format!("{c}.");
                i += 1;
                if i + 2 < n
                    && chars[i] == '-'
                    && chars[i + 1].is_uppercase()
                    && chars[i + 2] == '.'
                {
                    initial.push('-');
                    initial.push(chars[i + 1]);
                    initial.push('.');
                    i += 3;
                }
                push(&mut toks, Kind::Initial, initial, title, spaced, line);
            } else if let Some(stem) = word
                .strip_suffix("'s")
                .or_else(|| word.strip_suffix("’s"))
                .filter(|s| !s.is_empty())
            {
                push(&mut toks, Kind::Word, stem.to_string(), title, spaced, line);
                push(&mut toks, Kind::Punct, "'s".to_string(), title, false, line);
            } else {
                push(&mut toks, Kind::Word, word, title, spaced, line);
            }
        } else if c.is_ascii_digit() {
            let start = i;
            while i < n && chars[i].is_ascii_digit() {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            push(&mut toks, Kind::Number, number, title, spaced, line);
        } else {
            match c {
                '*' => emph = !emph,
                '"' => quote = !quote,
                '“' => quote = true,
                '”' => quote = false,
                _ => {}
            }
            push(&mut toks, Kind::Punct, c.to_string(), title, spaced, line);
            i += 1;
        }
        spaced = false;
    }
    toks
}

fn is_cap(t: &Tok) -> bool {
    t.kind == Kind::Word
        && !t.title
        && t.text.chars().next().is_some_and(char::is_uppercase)
        && t.text.chars().any(char::is_lowercase)
}

fn is_particle(t: &Tok) -> bool {
    t.kind == Kind::Word
        && !t.title
        && matches!(
            t.text.as_str(),
            "van" | "von" | "der" | "de" | "den" | "du" | "le"
        )
}

fn is_word(t: Option<&Tok>, w: &str) -> bool {
    t.is_some_and(|t| t.kind == Kind::Word && t.text == w)
}

fn is_punct(t: Option<&Tok>, p: &str) -> bool {
    t.is_some_and(|t| t.kind == Kind::Punct && t.text == p)
}

/// Whether token `k` is a year (1800 to 2039) rather than part of a page range, an identifier
/// or a number with a thousands separator.
fn is_year(toks: &[Tok], k: usize) -> bool {
    let t = &toks[k];
    if t.kind != Kind::Number || t.text.len() != 4 {
        return false;
    }
    let value: u32 = t.text.parse().unwrap();
    if !(1800..=2039).contains(&value) {
        return false;
    }
    if k > 0 && !t.spaced {
        let prev = &toks[k - 1];
        if prev.kind == Kind::Punct && matches!(prev.text.as_str(), ":" | "–" | "-" | "/" | ".") {
            return false;
        }
        if prev.kind == Kind::Punct
            && prev.text == ","
            && k > 1
            && toks[k - 2].kind == Kind::Number
            && !prev.spaced
        {
            return false;
        }
    }
    // Not the start of `2,874` or `2000.5`.
    let continues = |t: Option<&Tok>, kind: Kind| t.is_some_and(|t| t.kind == kind && !t.spaced);
    let next = toks.get(k + 1);
    !(continues(next, Kind::Punct)
        && matches!(next.unwrap().text.as_str(), "," | ".")
        && continues(toks.get(k + 2), Kind::Number))
}

/// The first year among the tokens from `from`, looking at most `limit` tokens ahead and never
/// past the end of the paragraph.
fn year_after(toks: &[Tok], from: usize, limit: usize) -> Option<String> {
    (from..toks.len().min(from + limit))
        .take_while(|&k| toks[k].kind != Kind::Break)
        .find(|&k| is_year(toks, k))
        .map(|k| toks[k].text.clone())
}

/// A name starting at `k`: initials, given names and particles ending in a surname. Returns the
/// surname, the index after the name and the number of tokens it took.
fn name_at(toks: &[Tok], k: usize) -> Option<(String, usize, usize)> {
    let mut j = k;
    let mut surname = None;
    while j < toks.len() {
        let t = &toks[j];
        if t.kind == Kind::Initial && !t.title {
            surname = None;
        } else if is_cap(t) {
            surname = Some(t.text.clone());
        } else if is_particle(t) && toks.get(j + 1).is_some_and(|u| is_cap(u) || is_particle(u)) {
            surname = None;
        } else {
            break;
        }
        j += 1;
    }
    surname.map(|s| (s, j, j - k))
}

/// A citation found in the prose: the first author's surname and the year, if one was given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Citation {
    surname: String,
    year: Option<String>,
    line: usize,
}

fn citations(text: &str) -> Vec<Citation> {
    let toks = tokenize(&prose(text));
    let mut found = Vec::new();
    let cite = |found: &mut Vec<Citation>, t: &Tok, year| {
        found.push(Citation {
            surname: t.text.clone(),
            year,
            line: t.line,
        })
    };
    for k in 0..toks.len() {
        // Surname et al. (year)
        if is_word(toks.get(k), "et") && is_word(toks.get(k + 1), "al") && k > 0 {
            let j = if is_punct(toks.get(k - 1), "'s") {
                k - 1
            } else {
                k
            };
            if j > 0 && is_cap(&toks[j - 1]) {
                cite(&mut found, &toks[j - 1], year_after(&toks, k + 2, 5));
            }
        }
        // Surname and Surname, year / Surname and Surname (year)
        if is_cap(&toks[k])
            && is_word(toks.get(k + 1), "and")
            && toks.get(k + 2).is_some_and(is_cap)
            && (is_punct(toks.get(k + 3), ",") || is_punct(toks.get(k + 3), "("))
            && toks.get(k + 4).is_some()
            && is_year(&toks, k + 4)
        {
            cite(&mut found, &toks[k], Some(toks[k + 4].text.clone()));
        }
    }
    // An author list followed by a title. The names inside a list are not lists of their own.
    let starts_name =
        |t: &Tok| (t.kind == Kind::Initial && !t.title) || is_cap(t) || is_particle(t);
    let mut skip_until = 0;
    for k in 0..toks.len() {
        if k < skip_until || !starts_name(&toks[k]) || (k > 0 && starts_name(&toks[k - 1])) {
            continue;
        }
        let Some((first, mut end, first_len)) = name_at(&toks, k) else {
            continue;
        };
        let mut names = 1;
        loop {
            if is_punct(toks.get(end), ",") && is_word(toks.get(end + 1), "and") {
                end += 1;
            }
            if is_punct(toks.get(end), ",") || is_word(toks.get(end), "and") {
                let last = is_word(toks.get(end), "and");
                match name_at(&toks, end + 1) {
                    Some((_, e, _)) => {
                        end = e;
                        names += 1;
                        if last {
                            break;
                        }
                    }
                    None => break,
                }
            } else {
                break;
            }
        }
        skip_until = end;
        if names < 2 && first_len < 2 {
            continue;
        }
        // The list ends with ", ", ". " or a possessive, and a title follows.
        let mut after = end;
        if is_punct(toks.get(after), "'s") {
            after += 1;
            if is_punct(toks.get(after), ",") || is_punct(toks.get(after), ".") {
                after += 1;
            }
        } else if is_punct(toks.get(after), ",") || is_punct(toks.get(after), ".") {
            after += 1;
        } else {
            continue;
        }
        let title_starts = toks.get(after).is_some_and(|t| {
            (t.kind == Kind::Punct && matches!(t.text.as_str(), "\"" | "“" | "*"))
                || (t.kind == Kind::Word && t.text.chars().next().is_some_and(char::is_uppercase))
        });
        if !title_starts {
            continue;
        }
        if let Some(year) = year_after(&toks, after, 80) {
            found.push(Citation {
                surname: first,
                year: Some(year),
                line: toks[k].line,
            });
        }
    }
    found
}

/// The entries of `references.md`: each list item that starts with an anchor, as one string.
fn reference_entries(references: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in references.lines() {
        if let Some(rest) = line.strip_prefix("- <a id=\"") {
            let id = rest.split('"').next().unwrap().to_string();
            entries.push((id, line.to_string()));
        } else if line.starts_with("  ") && !line.trim().is_empty() {
            if let Some(last) = entries.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some(last) = entries.last_mut() {
            // A blank line or a heading ends the entry.
            last.1.push('\n');
        }
    }
    entries
        .into_iter()
        .map(|(id, text)| (id, text.split('\n').next().unwrap().to_string()))
        .collect()
}

/// Whether `word` occurs in `text` with no letter or digit right before or after it.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The citations of `text` with no entry naming the surname and the year.
fn missing(text: &str, entries: &[(String, String)]) -> Vec<Citation> {
    citations(text)
        .into_iter()
        .filter(|c| {
            !entries.iter().any(|(_, entry)| {
                contains_word(entry, &c.surname)
                    && c.year.as_ref().is_none_or(|y| contains_word(entry, y))
            })
        })
        .collect()
}

fn found(text: &str) -> BTreeSet<(String, Option<String>)> {
    citations(text)
        .into_iter()
        .map(|c| (c.surname, c.year))
        .collect()
}

fn pair(s: &str, y: Option<&str>) -> (String, Option<String>) {
    (s.to_string(), y.map(str::to_string))
}

#[test]
fn the_scanner_recognises_every_form_of_citation() {
    let text = r#"He et al. (2015) derive it; see also (Srivastava et al., 2014, Table 2) and Vaswani
et al. Adam (Kingma and Ba, 2015) and MacKay and Peto (1995) smooth.

The method is due to Cortes and Vapnik (C. Cortes and V. Vapnik, "Support-vector networks",
*Machine Learning* 20(3), 273–297, 1995). CART (L. Breiman, J. Friedman, R. Olshen and
C. Stone, *Classification and Regression Trees*, Wadsworth, 1984).

- Ian Goodfellow, Yoshua Bengio and Aaron Courville, *Deep Learning*, MIT Press, 2016.
- Claude E. Shannon. A mathematical theory of communication. *Bell System Technical Journal*,
  27:379–423 and 623–656, 1948.

The passes owe much to S. Keshav's "How to Read a Paper" (*ACM SIGCOMM Computer
Communication Review*, 37(3):83-84, 2007). Extremely randomised trees (Geurts, Ernst and
Wehenkel, *Machine Learning* 63(1), 3–42, 2006) and t-SNE (L. van der Maaten and G. Hinton,
"Visualizing data using t-SNE", *JMLR* 9, 2579–2605, 2008); the tie to Hsieh et al. is
`Hinton et al. (1999)` in code, which does not count, nor does $Smith et al. (2001)$.

$$\frac{\partial L}{\partial S} = \begin{cases} Jones et al. (2002) \end{cases}
\qquad \text{a block closed mid-line} .$$

A schedule in the spirit of Pegasos (S. Shalev-Shwartz, Y. Singer, N. Srebro and A. Cotter,
"Pegasos: primal estimated sub-gradient solver for SVM", *Mathematical Programming* 127(1),
3–30, 2011), after C.-J. Hsieh, K.-W. Chang and C.-J. Lin, "A dual coordinate descent method"
(ICML 2008).
"#;
    let expected: BTreeSet<_> = [
        pair("He", Some("2015")),
        pair("Srivastava", Some("2014")),
        pair("Vaswani", None),
        pair("Kingma", Some("2015")),
        pair("MacKay", Some("1995")),
        pair("Cortes", Some("1995")),
        pair("Breiman", Some("1984")),
        pair("Goodfellow", Some("2016")),
        pair("Shannon", Some("1948")),
        pair("Keshav", Some("2007")),
        pair("Geurts", Some("2006")),
        pair("Maaten", Some("2008")),
        pair("Hsieh", None),
        pair("Shalev-Shwartz", Some("2011")),
        pair("Hsieh", Some("2008")),
    ]
    .into_iter()
    .collect();
    assert_eq!(found(text), expected);
}

#[test]
fn the_scanner_ignores_titles_names_without_titles_and_numbers_that_are_not_years() {
    let text = r#"Rumelhart, Hinton and Williams answered with a procedure. *Information Theory,
Inference, and Learning Algorithms*, 2003, is a title, not an author list. "Attention and
Augmented Recurrent Neural Networks", 2016. With 1,078 training images and 2,000 test images
the Standard Error, 2012 is no author; pages 1929–1958 and arXiv:1207.0580 hold no year.
"#;
    assert_eq!(found(text), BTreeSet::new());
}

#[test]
fn a_citation_without_an_entry_is_reported() {
    let entries = reference_entries(
        "## Papers\n\n- <a id=\"he-2015\"></a>Kaiming He, Xiangyu Zhang, Shaoqing Ren and Jian\n  \
         Sun. \"Delving Deep into Rectifiers.\" ICCV, 2015.\n\n## Books\n",
    );
    assert_eq!(entries.len(), 1);
    assert!(missing("He et al. (2015) and more.", &entries).is_empty());
    // The right surname with the wrong year is still missing, and so is another paper.
    let gaps = missing("He et al. (2016) and Kingma and Ba, 2015.", &entries);
    let gaps: Vec<_> = gaps.into_iter().map(|c| (c.surname, c.year)).collect();
    assert_eq!(
        gaps,
        vec![pair("He", Some("2016")), pair("Kingma", Some("2015"))]
    );
}

#[test]
fn every_cited_work_is_in_the_references() {
    let chapters = root().join("chapters");
    let references_path = chapters.join("appendix/references.md");
    let references = std::fs::read_to_string(&references_path).unwrap();
    let entries = reference_entries(&references);
    assert!(entries.len() > 40, "references.md has its entries");
    let mut files = Vec::new();
    markdown_files(&chapters, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in files.iter().filter(|f| **f != references_path) {
        let text = std::fs::read_to_string(file).unwrap();
        checked += citations(&text).len();
        for c in missing(&text, &entries) {
            let year = c.year.as_deref().unwrap_or("no year");
            problems.push(format!(
                "{}:{}: cites {} ({year}), but chapters/appendix/references.md has no entry \
                 with that surname and year",
                file.strip_prefix(root()).unwrap().display(),
                c.line,
                c.surname,
            ));
        }
    }
    assert!(
        checked > 30,
        "the scanner found only {checked} citations in the whole book"
    );
    assert!(
        problems.is_empty(),
        "add these works to the references:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_link_into_the_references_names_an_entry() {
    let chapters = root().join("chapters");
    let references = std::fs::read_to_string(chapters.join("appendix/references.md")).unwrap();
    let ids: BTreeSet<String> = reference_entries(&references)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut files = Vec::new();
    markdown_files(&chapters, &mut files);
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("references.md#") {
                let tail = &rest[at + "references.md#".len()..];
                let id: String = tail
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !ids.contains(&id) {
                    bad.push(format!("{}:{}: #{id}", file.display(), n + 1));
                }
                rest = tail;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "links to missing references:\n{}",
        bad.join("\n")
    );
}

/// The lowercase identifiers in inline code from the sentence that introduces the module list
/// to the end of its section.
fn modules_named_in_introduction() -> BTreeSet<String> {
    let intro = std::fs::read_to_string(root().join("chapters/introduction.md")).unwrap();
    let start = intro
        .find("The crate's modules follow the reading order")
        .expect("the introduction introduces its module list with this sentence");
    let section = &intro[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut names = BTreeSet::new();
    for (i, part) in section.split('`').enumerate() {
        if i % 2 == 1
            && !part.is_empty()
            && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            names.insert(part.to_string());
        }
    }
    names
}

fn modules_of_the_crate() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').trim().to_string())
        .collect()
}

#[test]
fn the_introduction_names_exactly_the_modules_the_crate_has() {
    let named = modules_named_in_introduction();
    assert!(named.len() > 10, "the module list was found: {named:?}");
    for module in &named {
        let src = root().join("src");
        assert!(
            src.join(format!("{module}.rs")).is_file() || src.join(module).join("mod.rs").is_file(),
            "the introduction names the module `{module}`, but src/ has neither {module}.rs nor \
             {module}/mod.rs"
        );
    }
    let declared = modules_of_the_crate();
    let not_declared: Vec<_> = named.difference(&declared).collect();
    assert!(
        not_declared.is_empty(),
        "the introduction names modules that src/lib.rs does not declare: {not_declared:?}"
    );
    let not_named: Vec<_> = declared.difference(&named).collect();
    assert!(
        not_named.is_empty(),
        "src/lib.rs declares modules the introduction's module list does not name (add them to \
         the list in chapters/introduction.md, section \"How the book and the code fit \
         together\"): {not_named:?}"
    );
}
