//! The text corpus (loading, vocabulary, the held-out split), the character n-gram model's
//! defining properties, and the NLP chapter's program on its `--quick` path and with bad input.

mod common;

use dlfs::data::text::{Corpus, TextError, Vocab, split_points};
use dlfs::ngram::experiment::{Cli, Config, experiment, results_table, run};
use dlfs::ngram::{NGram, Smoothing};
use dlfs::runner::parse;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

const TINY: &str = "the cat sat on the mat. the hat sat on the cat.";

/// A vocabulary with characters the training text never shows, and the training ids.
fn tiny() -> (Vocab, Vec<usize>) {
    let vocab = Vocab::of(&format!("{TINY}xyQ!"));
    let ids = vocab.encode(TINY).unwrap();
    (vocab, ids)
}

fn smoothings() -> Vec<Smoothing> {
    vec![
        Smoothing::AddK(0.001),
        Smoothing::AddK(0.5),
        Smoothing::AddK(1.0),
        Smoothing::Interpolated(0.01),
        Smoothing::Interpolated(1.0),
        Smoothing::Interpolated(50.0),
    ]
}

/// Every history of `len` characters over `v` characters.
fn all_histories(v: usize, len: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for _ in 0..len {
        out = out
            .into_iter()
            .flat_map(|h| {
                (0..v).map(move |c| {
                    let mut h = h.clone();
                    h.push(c);
                    h
                })
            })
            .collect();
    }
    out
}

#[test]
fn probabilities_sum_to_one_and_are_never_zero_for_every_context() {
    let (vocab, ids) = tiny();
    let v = vocab.len();
    let unseen = vocab.id('Q').unwrap();
    for order in 1..=3 {
        let model = NGram::count(order, v, &ids);
        for smoothing in smoothings() {
            // Every context of every length the model can use: seen ones, unseen ones, ones made
            // of characters absent from training, and the short ones at the start of a text.
            for len in 0..order {
                for h in all_histories(v, len) {
                    let p = model.distribution(smoothing, &h);
                    let sum: f64 = p.iter().sum();
                    assert!(
                        (sum - 1.0).abs() < 1e-12,
                        "order {order}, {smoothing:?}, context {h:?}: the probabilities sum to {sum}"
                    );
                    assert!(
                        p.iter().all(|&x| x > 0.0 && x.is_finite()),
                        "order {order}, {smoothing:?}, context {h:?}: a zero probability"
                    );
                    assert!(model.prob(smoothing, &h, unseen) > 0.0);
                }
            }
        }
    }
    // A long history uses only its last n - 1 characters.
    let model = NGram::count(3, v, &ids);
    let s = Smoothing::Interpolated(1.0);
    let long = vocab.encode("on the ma").unwrap();
    let short = vocab.encode("ma").unwrap();
    assert_eq!(
        model.distribution(s, &long),
        model.distribution(s, &short),
        "the context is the last two characters"
    );
}

#[test]
fn counts_are_the_pairs_of_the_training_text() {
    let (vocab, ids) = tiny();
    let id = |s: &str| vocab.encode(s).unwrap();
    let model = NGram::count(3, vocab.len(), &ids);
    assert_eq!(model.context_count(&[]), TINY.len() as u64);
    assert_eq!(
        model.count_of(&[], id("t")[0]),
        TINY.matches('t').count() as u64
    );
    // "th" occurs four times, always followed by "e".
    assert_eq!(model.context_count(&id("th")), 4);
    assert_eq!(model.count_of(&id("th"), id("e")[0]), 4);
    // "at" occurs six times: followed by "." in "mat." and "cat.", by " " otherwise.
    assert_eq!(model.context_count(&id("at")), 6);
    assert_eq!(model.count_of(&id("at"), id(".")[0]), 2);
    assert_eq!(model.count_of(&id("at"), id(" ")[0]), 4);
    assert_eq!(model.context_count(&id("xy")), 0);
    assert_eq!(model.contexts(0), 1);
    // The maximum-likelihood estimate is what smoothing with a vanishing k approaches.
    let p = model.prob(Smoothing::AddK(1e-12), &id("th"), id("e")[0]);
    assert!((p - 1.0).abs() < 1e-9, "{p}");
}

#[test]
fn bits_per_char_matches_a_hand_computation() {
    // Vocabulary {a, b}; training text "aab"; a bigram model.
    // Counts: n() = 3, n(a) = 2, n(b) = 1; n("a") = 2 with n("a" a) = n("a" b) = 1; "b" unseen.
    let vocab = Vocab::of("ab");
    let model = NGram::count(2, 2, &vocab.encode("aab").unwrap());
    let test = vocab.encode("ba").unwrap();
    // Add-one: P(b | start) = (1 + 1) / (3 + 2) = 2/5 (the first character has the empty
    // context); P(a | "b") = (0 + 1) / (0 + 2) = 1/2.
    let by_hand = (-(2.0f64 / 5.0).log2() - (1.0f64 / 2.0).log2()) / 2.0;
    let bpc = model.bits_per_char(Smoothing::AddK(1.0), &test);
    assert!((bpc - by_hand).abs() < 1e-12, "{bpc} vs {by_hand}");
    assert!((bpc - 1.160_964_047_443_681).abs() < 1e-12, "{bpc}");
    // Interpolated, beta = 1: P(b | start) = (1 + 1/2) / (3 + 1) = 3/8;
    // P(a | "b") falls back to the empty context: (2 + 1/2) / (3 + 1) = 5/8.
    let by_hand = (-(3.0f64 / 8.0).log2() - (5.0f64 / 8.0).log2()) / 2.0;
    let bpc = model.bits_per_char(Smoothing::Interpolated(1.0), &test);
    assert!((bpc - by_hand).abs() < 1e-12, "{bpc} vs {by_hand}");
    // A seen context mixes its own counts with the shorter context's probability:
    // P(b | "a") = (1 + 1 * P(b)) / (2 + 1), with P(b) = 3/8 from above.
    let p = model.prob(Smoothing::Interpolated(1.0), &vocab.encode("a").unwrap(), 1);
    assert!((p - (1.0 + 3.0 / 8.0) / 3.0).abs() < 1e-12, "{p}");
    // The uniform model scores exactly log2 V.
    let uniform = NGram::count(1, 4, &[]);
    let bpc = uniform.bits_per_char(Smoothing::AddK(1.0), &[0, 1, 2, 3, 3]);
    assert!((bpc - 2.0).abs() < 1e-12, "{bpc}");
}

#[test]
fn samples_are_drawn_from_the_model_and_reproducible() {
    let (vocab, ids) = tiny();
    let model = NGram::count(3, vocab.len(), &ids);
    let s = Smoothing::Interpolated(0.01);
    let prompt = vocab.encode("th").unwrap();
    let draw = |seed| model.sample(s, &prompt, 200, &mut ChaCha8Rng::seed_from_u64(seed));
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
    let text = vocab.decode(&draw(1));
    assert_eq!(text.chars().count(), 200);
    // After "th" the training text always had "e": with weak smoothing that is what comes.
    assert!(text.starts_with('e'), "{text}");
    // Unigram samples follow the character frequencies: spaces are common, 'Q' is rare.
    let unigram = NGram::count(1, vocab.len(), &ids);
    let many = unigram.sample(
        Smoothing::AddK(0.01),
        &[],
        5000,
        &mut ChaCha8Rng::seed_from_u64(3),
    );
    let share = |c: char| {
        let id = vocab.id(c).unwrap();
        many.iter().filter(|&&x| x == id).count() as f64 / many.len() as f64
    };
    let expected = TINY.matches(' ').count() as f64 / TINY.len() as f64;
    assert!((share(' ') - expected).abs() < 0.03, "{}", share(' '));
    assert!(share('Q') < 0.01);
}

#[test]
fn vocabulary_encodes_and_decodes() {
    let vocab = Vocab::of("banana split");
    assert_eq!(vocab.len(), 9);
    assert_eq!(vocab.decode(&[0, 1, 2]), " ab", "ids follow code points");
    let ids = vocab.encode("plan").unwrap();
    assert_eq!(vocab.decode(&ids), "plan");
    assert_eq!(vocab.encode("plum"), Err('u'));
    assert_eq!(vocab.id('z'), None);
    let accents = Vocab::of("naïve café");
    assert_eq!(
        accents.decode(&accents.encode("café").unwrap()),
        "café",
        "characters, not bytes"
    );
}

/// A `--data` folder whose `text/pride-and-prejudice.txt` holds `bytes`.
fn novel_dir(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("text")).unwrap();
    write(&dir.path().join("text"), "pride-and-prejudice.txt", bytes);
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn loading_text_files_good_and_bad() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.txt", "héllo\nworld".as_bytes());
    let corpus = Corpus::load(&good).unwrap();
    assert_eq!(corpus.len(), 11);
    assert_eq!(corpus.vocab.decode(&corpus.ids), "héllo\nworld");

    let missing = dir.path().join("missing.txt");
    let err = Corpus::load(&missing).unwrap_err();
    assert!(matches!(err, TextError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.txt"), "{err}");

    let err = Corpus::load(dir.path()).unwrap_err();
    assert!(matches!(err, TextError::Io { .. }), "a folder: {err:?}");

    let latin1 = write(dir.path(), "latin1.txt", b"caf\xe9 au lait");
    let err = Corpus::load(&latin1).unwrap_err();
    assert!(
        matches!(err, TextError::NotUtf8 { offset: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("latin1.txt") && err.to_string().contains("UTF-8"));

    let empty = write(dir.path(), "empty.txt", b"");
    let err = Corpus::load(&empty).unwrap_err();
    assert!(matches!(err, TextError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn the_shipped_novel_and_its_split() {
    let corpus = Corpus::shipped().unwrap();
    assert_eq!(corpus.len(), 684_768);
    assert_eq!(corpus.vocab.len(), 75);
    let (train, validation, test) = corpus.split();
    assert_eq!(
        (train.len(), validation.len(), test.len()),
        (582_054, 34_238, 68_476)
    );
    // Contiguous and in order: the three splits are the text, cut twice.
    assert_eq!([train, validation, test].concat(), corpus.ids);
    let tail = corpus.vocab.decode(test);
    assert!(
        tail.ends_with("the means of uniting them.\n"),
        "the test split is the end"
    );
    assert!(
        corpus
            .vocab
            .decode(train)
            .starts_with("PRIDE AND PREJUDICE")
    );
    assert_eq!(split_points(corpus.len()), (582_054, 616_292));
}

#[test]
fn the_book_shows_the_table_the_code_produces() {
    // The first three orders of the chapter's table, recomputed on the full splits (the whole
    // table takes half a minute in a release build; these rows take a second or two).
    let corpus = Corpus::shipped().unwrap();
    let config = Config {
        max_order: 3,
        sample_len: 0,
        ..Config::default()
    };
    let report = experiment(
        &config,
        &corpus,
        corpus.split(),
        &mut ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap();
    let fresh = results_table(&report);
    let book = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters/nlp/results.md"),
    )
    .unwrap();
    let rows = |t: &str| t.lines().take(5).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        rows(&fresh),
        rows(&book),
        "rerun `cargo run --release --example ngram`"
    );
}

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("ngram", out, seed, run);
}

#[test]
fn quick_run_writes_well_formed_outputs_and_longer_contexts_help() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in [
        "results.md",
        "samples.md",
        "bpc.svg",
        "provenance.md",
        "results.json",
    ] {
        let bytes =
            std::fs::read(dir.path().join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert!(bytes.len() > 100, "{name} is nearly empty");
    }
    let svg = std::fs::read_to_string(dir.path().join("bpc.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let orders = json["report"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 3, "orders 1 to 3 in a quick run");
    let v = json["report"]["vocab_size"].as_f64().unwrap();
    let bpc = |o: &serde_json::Value| o["interpolated"]["validation"].as_f64().unwrap();
    let scores: Vec<f64> = orders.iter().map(bpc).collect();
    assert!(
        scores.iter().all(|s| s.is_finite() && *s < v.log2()),
        "{scores:?}"
    );
    assert!(
        scores[1] < scores[0] - 0.5 && scores[2] < scores[1] - 0.3,
        "longer contexts must predict better: {scores:?}"
    );
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert_eq!(table.lines().filter(|l| l.starts_with("| ")).count(), 4);
    assert!(
        table.contains("60000 training, 5000 validation and 10000 test"),
        "{table}"
    );
    let samples = std::fs::read_to_string(dir.path().join("samples.md")).unwrap();
    assert_eq!(
        samples.matches("```text\nElizabeth").count(),
        3,
        "{samples}"
    );
    assert_eq!(json["provenance"]["seed"], 3);
}

#[test]
fn the_same_seed_reproduces_every_output_exactly() {
    let [a, b, c] = common::three_quick_runs(quick, "5", "6");
    let read = |d: &tempfile::TempDir, name: &str| std::fs::read(d.path().join(name)).unwrap();
    for name in ["results.md", "samples.md", "bpc.svg"] {
        assert!(read(&a, name) == read(&b, name), "{name} differs");
    }
    // Counting draws nothing: the table is the same for every seed; only the samples change.
    assert!(read(&a, "results.md") == read(&c, "results.md"));
    assert!(read(&a, "samples.md") != read(&c, "samples.md"));
}

#[test]
fn bad_flags_and_inputs_are_errors() {
    for args in [
        vec!["ngram", "--bogus"],
        vec!["ngram", "--max-order", "0"],
        vec!["ngram", "--max-order", "9"],
        vec!["ngram", "--sample-len", "-1"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    let short = novel_dir(b"tiny");
    let fails = |args: &[&str]| {
        let mut all = vec!["ngram", "--quick"];
        all.extend_from_slice(args);
        run(parse::<Cli>(all).unwrap()).unwrap_err().to_string()
    };
    assert!(fails(&["--epochs", "3"]).contains("--epochs"));
    assert!(fails(&["--prompt", "Élise"]).contains("prompt"));
    assert!(fails(&["--data", short.path().to_str().unwrap()]).contains("too few"));
}

#[test]
fn the_program_fails_in_one_line_without_a_panic() {
    let latin1 = novel_dir(b"caf\xe9");
    let empty = novel_dir(b"");
    let folder_without_novel = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--bogus".into()], 2, "--bogus"),
        (vec!["--max-order".into(), "12".into()], 2, "--max-order"),
        (
            vec!["--quick".into(), "--data".into(), "/no/such/dir".into()],
            1,
            "/no/such/dir/text/pride-and-prejudice.txt",
        ),
        (
            vec![
                "--quick".into(),
                "--data".into(),
                latin1.path().display().to_string(),
            ],
            1,
            "not UTF-8",
        ),
        (
            vec![
                "--quick".into(),
                "--data".into(),
                empty.path().display().to_string(),
            ],
            1,
            "empty",
        ),
        (
            vec![
                "--quick".into(),
                "--data".into(),
                folder_without_novel.path().display().to_string(),
            ],
            1,
            "pride-and-prejudice.txt",
        ),
    ];
    for (args, code, needle) in cases {
        common::assert_fails_in_one_line("ngram", &args, code, needle);
    }
}
