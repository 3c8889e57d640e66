//! The chapter kit: the pieces every chapter program shares behave as documented, and refuse bad
//! input with a clear error.

use dlfs::checkpoint::{load, save};
use dlfs::data::digits::Digits;
use dlfs::data::mnist::MnistSplits;
use dlfs::linear::Linear;
use dlfs::mlp::Mlp;
use dlfs::optim::{OptimizerArgs, OptimizerConfig, OptimizerKind};
use dlfs::param::{Param1, count, grads_finite, names, shapes};
use dlfs::runner::{CommonArgs, Table, pct, train_step};
use ndarray::{Array1, Array2, ShapeBuilder, array};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn a_table_is_markdown_with_one_cell_per_column() {
    let mut t = Table::new(&["model", "params", "error"], "lrr");
    t.row(["MLP", "269,322", &pct(0.0215)]);
    t.row(["", "", "n/a"]);
    assert_eq!(
        t.to_string(),
        "| model | params | error |\n|---|---:|---:|\n| MLP | 269,322 | 2.15% |\n| | | n/a |\n"
    );
    assert_eq!(t.len(), 2);
    let short_row = std::panic::catch_unwind(|| {
        Table::new(&["a", "b"], "ll").row(["only one"]);
    });
    assert!(short_row.is_err(), "a row with a missing cell is refused");
}

#[test]
fn optimiser_flags_override_the_chapters_default_and_are_checked() {
    let default = OptimizerConfig::adam(1e-3);
    let none = OptimizerArgs::default();
    assert_eq!(none.resolve(default).unwrap(), default);
    let sgd = OptimizerArgs {
        optimizer: Some(OptimizerKind::Sgd),
        lr: Some(0.1),
        momentum: None,
    };
    let c = sgd.resolve(default).unwrap();
    assert_eq!(c, OptimizerConfig::sgd(0.1, 0.9));
    assert_eq!(c.describe(), "SGD (lr 0.1, momentum 0.9)");
    for (lr, momentum, flag) in [
        (-1.0, 0.9, "--lr"),
        (f32::NAN, 0.9, "--lr"),
        (0.1, 1.0, "--momentum"),
    ] {
        let bad = OptimizerArgs {
            optimizer: None,
            lr: Some(lr),
            momentum: Some(momentum),
        };
        let err = bad.resolve(default).unwrap_err().to_string();
        assert!(err.contains(flag) && !err.contains('\n'), "{err}");
    }
}

#[test]
fn the_optimiser_choice_steps_like_the_optimiser_it_names() {
    let mut a = Linear::<f64>::from_weights(array![[1.0, -2.0]], array![0.5, 0.0]);
    let mut b = a.clone();
    a.w.grad.fill(0.25);
    b.w.grad.fill(0.25);
    // The configuration stores f32 settings (what the programs train with); in f64 the
    // optimiser gets exactly those f32 values.
    let mut sgd = dlfs::optim::Sgd::new(f64::from(0.1_f32), f64::from(0.9_f32));
    sgd.step(&mut a);
    OptimizerConfig::sgd(0.1, 0.9).build::<f64>().step(&mut b);
    assert_eq!(a.w.value, b.w.value);
}

#[test]
fn train_step_clears_gradients_steps_and_stops_on_nan() {
    let mut layer = Linear::<f64>::from_weights(array![[1.0], [2.0]], array![0.0]);
    layer.w.grad.fill(100.0); // stale gradient from an earlier step: must be cleared
    let mut opt = OptimizerConfig::sgd(0.5, 0.0).build::<f64>();
    let x = array![[1.0, 1.0]];
    // loss = sum(y), so dL/dW = x^T 1 = [1, 1]^T and dL/db = 1.
    let loss = train_step(1, &mut layer, &mut opt, |m| {
        let (y, c) = m.forward(&x);
        m.backward_params(&c, &Array2::ones(y.raw_dim()));
        y.sum()
    })
    .unwrap();
    assert_eq!(loss, 3.0);
    assert_eq!(layer.w.value, array![[0.5], [1.5]]);
    assert_eq!(layer.b.value, array![-0.5]);
    let err = train_step(7, &mut layer, &mut opt, |_| f64::NAN).unwrap_err();
    assert_eq!(err.step, 7);
    assert!(err.to_string().contains("training loss"));
    let before = layer.w.value.clone();
    let err = train_step(8, &mut layer, &mut opt, |m| {
        m.w.grad[[0, 0]] = f64::INFINITY;
        1.0
    })
    .unwrap_err();
    assert!(err.to_string().contains("gradient norm"));
    assert_eq!(layer.w.value, before, "no step is taken on a bad gradient");
}

#[test]
fn the_finite_check_sees_every_gradient_element() {
    // Long enough for the vector loop and its remainder.
    let mut mlp = Mlp::<f32>::new(&[37, 19, 3], &mut rng(0));
    assert!(grads_finite(&mlp));
    let len = mlp.layers[0].w.grad.len();
    for (at, bad) in [
        (0, f32::NAN),
        (len / 2, f32::INFINITY),
        (len - 1, f32::NEG_INFINITY),
    ] {
        mlp.layers[0].w.grad.as_slice_mut().unwrap()[at] = bad;
        assert!(!grads_finite(&mlp), "{bad} at {at} of {len}");
        mlp.layers[0].w.grad.as_slice_mut().unwrap()[at] = 0.0;
        assert!(grads_finite(&mlp));
    }
    mlp.layers[1].b.grad[2] = f32::NAN;
    assert!(!grads_finite(&mlp), "NaN in the last parameter");
    mlp.layers[1].b.grad[2] = 0.0;
    mlp.layers[0].w.grad = Array2::zeros((37, 19).f());
    assert!(mlp.layers[0].w.grad.as_slice().is_none(), "column-major");
    mlp.layers[0].w.grad[[3, 5]] = f32::NAN;
    assert!(!grads_finite(&mlp), "NaN in a gradient stored column-major");
}

#[test]
fn read_only_visitors_count_and_name_without_a_clone() {
    let mlp = Mlp::<f32>::new(&[4, 3, 2], &mut rng(0));
    assert_eq!(count(&mlp), 4 * 3 + 3 + 3 * 2 + 2);
    assert_eq!(
        names(&mlp),
        ["layers.0.w", "layers.0.b", "layers.1.w", "layers.1.b"]
    );
    assert_eq!(shapes(&mlp)[2], ("layers.1.w".to_string(), vec![3, 2]));
    // Vec and Option parts: present options are visited, absent ones are not.
    struct WithOption {
        extra: Option<Param1<f32>>,
        list: Vec<Param1<f32>>,
    }
    impl dlfs::param::Params<f32> for WithOption {
        fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, dlfs::param::ParamMut<'_, f32>)) {
            self.extra.visit(&dlfs::param::join(prefix, "extra"), f);
            self.list.visit(&dlfs::param::join(prefix, "list"), f);
        }
        fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, dlfs::param::ParamRef<'_, f32>)) {
            self.extra.visit_ref(&dlfs::param::join(prefix, "extra"), f);
            self.list.visit_ref(&dlfs::param::join(prefix, "list"), f);
        }
    }
    use dlfs::param::Params as _;
    let mut m = WithOption {
        extra: None,
        list: vec![Param1::new(Array1::zeros(2)), Param1::new(Array1::zeros(3))],
    };
    assert_eq!(names(&m), ["list.0", "list.1"]);
    m.extra = Some(Param1::new(Array1::zeros(1)));
    assert_eq!(names(&m), ["extra", "list.0", "list.1"]);
    let mut mutable = Vec::new();
    m.visit("", &mut |n, _| mutable.push(n.to_string()));
    assert_eq!(
        mutable,
        names(&m),
        "visit and visit_ref walk the same names"
    );
}

#[test]
fn linear_takes_views_and_can_skip_the_input_gradient() {
    let mut a = Linear::<f64>::new(3, 2, &mut rng(1));
    let mut b = a.clone();
    let x = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f64 / 7.0 - 0.5);
    let view = x.slice(ndarray::s![1..3, ..]);
    assert_eq!(
        a.infer(&view),
        a.infer(&x.slice(ndarray::s![1..3, ..]).to_owned())
    );
    let (y, ca) = a.forward(&x);
    let (_, cb) = b.forward_owned(x.clone());
    let dy = y.mapv(|v| v * 2.0);
    let _ = a.backward(&ca, &dy);
    b.backward_params(&cb, &dy);
    assert_eq!(a.w.grad, b.w.grad);
    assert_eq!(a.b.grad, b.b.grad);
}

#[test]
fn checkpoints_refuse_non_finite_values_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut model = Mlp::<f32>::new(&[3, 2], &mut rng(0));
    model.layers[0].w.value[[1, 1]] = f32::NAN;
    let err = save(&model, "mlp", "d", &path).unwrap_err().to_string();
    assert!(
        err.contains("layers.0.w") && err.contains("finite"),
        "{err}"
    );
    assert!(!path.exists(), "nothing is written");
    // A file with a NaN in it (written by hand: the saver refuses to) is refused by the loader.
    let good = Mlp::<f32>::new(&[3, 2], &mut rng(1));
    save(&good, "mlp", "d", &path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let nan = f32::NAN.to_le_bytes();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&nan);
    std::fs::write(&path, &bytes).unwrap();
    let mut target = Mlp::<f32>::new(&[3, 2], &mut rng(2));
    let before = names(&target);
    let w_before = target.layers[0].w.value.clone();
    let err = load(&mut target, "mlp", "d", &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("finite"), "{err}");
    assert_eq!(
        target.layers[0].w.value, w_before,
        "a refused file changes nothing"
    );
    assert_eq!(names(&target), before);
}

#[test]
fn a_multi_member_gzip_file_reads_as_one_stream() {
    use flate2::{Compression, write::GzEncoder};
    let row = |label: usize| {
        let mut cells: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
        cells.push(label.to_string());
        cells.join(",") + "\n"
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits.csv.gz");
    let mut file = std::fs::File::create(&path).unwrap();
    for label in [3, 7] {
        let mut member = GzEncoder::new(Vec::new(), Compression::default());
        member.write_all(row(label).as_bytes()).unwrap();
        file.write_all(&member.finish().unwrap()).unwrap();
    }
    drop(file);
    let digits = Digits::load(&path).unwrap();
    assert_eq!(digits.y, [3, 7], "both members are read");
}

#[test]
fn data_dir_is_one_convention_and_mnist_splits_are_the_books() {
    let shipped = CommonArgs {
        seed: 1,
        epochs: None,
        data: None,
        out: None,
        quick: true,
    };
    assert!(shipped.data_dir("mnist").ends_with("data/mnist"));
    let other = CommonArgs {
        data: Some("/somewhere".into()),
        ..shipped.clone()
    };
    assert_eq!(
        other.data_dir("text"),
        std::path::Path::new("/somewhere/text")
    );
    let s = MnistSplits::load(&shipped.data_dir("mnist"), true).unwrap();
    assert_eq!(s.sizes(), (1000, 200, 500));
    let full = MnistSplits::load(&shipped.data_dir("mnist"), false).unwrap();
    assert_eq!(full.sizes(), (7000, 1000, 2000));
    // The validation split is the end of the training file, not a sample of it.
    let b = s.binarised(0.5);
    assert!(b.train.images.iter().all(|&p| p == 0.0 || p == 1.0));
    assert_eq!(b.train.labels, s.train.labels);
    let some_grey = s.train.images.iter().any(|&p| p > 0.0 && p < 1.0);
    assert!(some_grey, "the shipped digits have grey pixels to binarise");
    let err = MnistSplits::load(std::path::Path::new("/no/such/dir"), true).unwrap_err();
    assert!(format!("{err:#}").contains("/no/such/dir"));
}

#[test]
fn every_series_of_a_chart_has_its_own_colour_and_dash() {
    use dlfs::plot::{Dash, series_style};
    let styles: Vec<_> = (0..18)
        .map(|i| {
            let (c, d) = series_style(i);
            ((c.0, c.1, c.2), d)
        })
        .collect();
    for i in 0..styles.len() {
        for j in 0..i {
            assert_ne!(styles[i], styles[j], "series {j} and {i} look alike");
        }
    }
    // The first six keep the book's old look: solid, dashed, solid, ...
    assert_eq!(series_style(0).1, Dash::Solid);
    assert_eq!(series_style(1).1, Dash::Dashed);
    assert_eq!(
        series_style(6).1,
        Dash::Dashed,
        "the seventh is not the first again"
    );
}
