//! Checkpoints: a model's parameters saved to and loaded from a safetensors file.
//!
//! [safetensors](https://huggingface.co/docs/safetensors) stores named tensors behind a small
//! JSON header, so a checkpoint written here opens in the Python tools readers already use
//! (`safetensors.numpy.load_file`, `safetensors.torch.load_file`). Tensors are named by the
//! [`Params`] visitor (`layers.0.w`, ...); the header's metadata records which program wrote the
//! file (`"model": "mlp"`) and a description of its shape, so loading a checkpoint into the wrong
//! model is an error that says so, not a silent mix-up.
//!
//! Saving is atomic (a temporary file, then a rename), so an interrupted save never destroys the
//! previous checkpoint.

use crate::param::Params;
use crate::runner::write_atomic;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The largest checkpoint [`load`] reads (4 GiB).
pub const MAX_BYTES: u64 = 4 << 30;

/// What can go wrong while loading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file, or does not fit the model.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

// ANCHOR: args
/// `--save FILE` and `--load FILE`, the checkpoint flags of every program that trains a network:
/// flatten them into the program's `Cli` with `#[command(flatten)]`. A chapter flag that cannot
/// go with a loaded model (a tuning sweep, say) declares `conflicts_with = "load"` itself.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CheckpointArgs {
    /// After training, save the trained parameters (of every network the program trains) to
    /// this safetensors file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Load parameters saved with --save instead of training, and score them on the test split;
    /// tables and figures are written only into an explicit --out folder.
    #[arg(long, value_name = "FILE", conflicts_with = "save")]
    pub load: Option<PathBuf>,
}

impl CheckpointArgs {
    /// Saves `model` if `--save` was given (see [`save`]).
    pub fn save_if_asked(
        &self,
        model: &impl Params<f32>,
        kind: &str,
        description: &str,
    ) -> anyhow::Result<()> {
        match &self.save {
            Some(path) => save(model, kind, description, path),
            None => Ok(()),
        }
    }
}
// ANCHOR_END: args

// ANCHOR: save
/// Saves every parameter of `model` to `path`, tagged with the model's `kind` (such as `"mlp"`)
/// and a free-form `description` (such as its layer sizes), atomically.
pub fn save(
    model: &impl Params<f32>,
    kind: &str,
    description: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut non_finite = None;
    model.visit_ref("", &mut |name, p| {
        if non_finite.is_none() && p.value.iter().any(|v| !v.is_finite()) {
            non_finite = Some(name.to_string());
        }
        let bytes = p.value.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name.to_string(), p.value.shape().to_vec(), bytes));
    });
    if let Some(name) = non_finite {
        anyhow::bail!(
            "not saving {}: parameter `{name}` holds a value that is not a finite number",
            path.display()
        );
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let metadata = HashMap::from([
        ("model".to_string(), kind.to_string()),
        ("description".to_string(), description.to_string()),
        ("format".to_string(), "dlfs".to_string()),
    ]);
    let bytes = safetensors::serialize(views, Some(metadata))?;
    write_atomic(path, &bytes)
}
// ANCHOR_END: save

/// Loads the parameters of `model` from `path`, which must have been saved from a model of the
/// same `kind` and `description`, with exactly the same parameter names and shapes.
pub fn load(
    model: &mut impl Params<f32>,
    kind: &str,
    description: &str,
    path: &Path,
) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_BYTES {
        return Err(invalid(
            path,
            format!("{size} bytes, more than the {MAX_BYTES}-byte limit"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| invalid(path, format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let found = meta.get("model").map_or("an unknown model", String::as_str);
    if found != kind {
        return Err(invalid(
            path,
            format!("a checkpoint of {found}, not of {kind}"),
        ));
    }
    let found = meta.get("description").map_or("", String::as_str);
    if found != description {
        return Err(invalid(
            path,
            format!("a {kind} checkpoint of {found}, but this model is {description}"),
        ));
    }
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| invalid(path, format!("not a safetensors file ({e})")))?;
    // Check every tensor before touching the model, so a bad file leaves it as it was.
    let wanted = crate::param::shapes(model);
    for (name, shape) in &wanted {
        let t = file
            .tensor(name)
            .map_err(|_| invalid(path, format!("no tensor `{name}`")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
            return Err(invalid(
                path,
                format!(
                    "`{name}` is {:?} {:?}, the model needs F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        let bad = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4-byte chunks")))
            .position(|v| !v.is_finite());
        if let Some(i) = bad {
            return Err(invalid(
                path,
                format!("`{name}` holds a value that is not a finite number (element {i})"),
            ));
        }
    }
    if wanted.len() != file.len() {
        return Err(invalid(
            path,
            format!(
                "{} tensors, but the model has {} parameters",
                file.len(),
                wanted.len()
            ),
        ));
    }
    model.visit("", &mut |name, mut p| {
        let t = file.tensor(name).expect("checked above");
        for (v, chunk) in p.value.iter_mut().zip(t.data().chunks_exact(4)) {
            *v = f32::from_le_bytes(chunk.try_into().expect("4-byte chunks"));
        }
    });
    Ok(())
}
