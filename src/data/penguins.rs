//! The Palmer penguins table: 344 penguins, three species, with missing values.
//!
//! The file is the CSV of the `palmerpenguins` package, with the header
//! `species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year` and `NA`
//! for a value nobody recorded. The loader keeps a missing value missing (`None`): deciding what
//! to put in its place is part of the model, fitted on training data only, not of reading the
//! file.

use super::DataError;
use std::path::Path;

/// The largest file the loader reads (16 MiB; the shipped table is 15 KB).
pub const MAX_BYTES: u64 = 16 << 20;

/// The header the file must start with.
pub const HEADER: &str =
    "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year";

/// The three species, in label order.
pub const SPECIES: [&str; 3] = ["Adelie", "Chinstrap", "Gentoo"];
/// The three islands, in the order of their one-hot columns.
pub const ISLANDS: [&str; 3] = ["Biscoe", "Dream", "Torgersen"];
/// The two recorded sexes, in label order.
pub const SEXES: [&str; 2] = ["female", "male"];
/// The names of the four measurements, in the order of [`Penguin::measurements`].
pub const MEASUREMENTS: [&str; 4] = [
    "bill length (mm)",
    "bill depth (mm)",
    "flipper length (mm)",
    "body mass (g)",
];

// ANCHOR: penguin
/// One row of the table. `None` is a value the file marks `NA`.
#[derive(Clone, Debug, PartialEq)]
pub struct Penguin {
    /// Index into [`SPECIES`].
    pub species: usize,
    /// Index into [`ISLANDS`].
    pub island: usize,
    /// Bill length, bill depth, flipper length (mm) and body mass (g).
    pub measurements: [Option<f64>; 4],
    /// Index into [`SEXES`].
    pub sex: Option<usize>,
    /// The year of the observation.
    pub year: u16,
}
// ANCHOR_END: penguin

/// Reads the penguins CSV at `path`.
pub fn load(path: &Path) -> Result<Vec<Penguin>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let text = super::read_capped(
        std::io::BufReader::new(file),
        path,
        MAX_BYTES,
        "the penguins table",
    )?;
    parse(path, &text)
}

/// The copy shipped with the book, `data/penguins/penguins.csv`.
pub fn shipped() -> Result<Vec<Penguin>, DataError> {
    load(&super::shipped_dir().join("penguins/penguins.csv"))
}

fn category(
    path: &Path,
    line: usize,
    what: &str,
    names: &[&str],
    field: &str,
) -> Result<usize, DataError> {
    names.iter().position(|&n| n == field).ok_or_else(|| {
        DataError::format(
            path,
            format!(
                "line {line}: {what} `{field}` is not one of {}",
                names.join(", ")
            ),
        )
    })
}

/// Parses the CSV text; `path` only names the source in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Penguin>, DataError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.trim() == HEADER => {}
        Some((_, header)) => {
            return Err(DataError::format(
                path,
                format!(
                    "line 1: the header is `{}`, expected `{HEADER}`",
                    header.trim()
                ),
            ));
        }
        None => return Err(DataError::format(path, "the file is empty")),
    }
    let mut rows = Vec::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 8 {
            return Err(DataError::format(
                path,
                format!("line {line_no}: {} fields, expected 8", fields.len()),
            ));
        }
        let mut measurements = [None; 4];
        for (k, m) in measurements.iter_mut().enumerate() {
            let f = fields[2 + k];
            if f == "NA" {
                continue;
            }
            let v: f64 = f.parse().map_err(|_| {
                DataError::format(
                    path,
                    format!(
                        "line {line_no}: {} `{f}` is not a number or NA",
                        MEASUREMENTS[k]
                    ),
                )
            })?;
            if !v.is_finite() || v <= 0.0 {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {line_no}: {} {v} is not a positive number",
                        MEASUREMENTS[k]
                    ),
                ));
            }
            *m = Some(v);
        }
        let sex = match fields[6] {
            "NA" => None,
            f => Some(category(path, line_no, "sex", &SEXES, f)?),
        };
        let year = fields[7].parse().map_err(|_| {
            DataError::format(
                path,
                format!("line {line_no}: year `{}` is not a year", fields[7]),
            )
        })?;
        rows.push(Penguin {
            species: category(path, line_no, "species", &SPECIES, fields[0])?,
            island: category(path, line_no, "island", &ISLANDS, fields[1])?,
            measurements,
            sex,
            year,
        });
    }
    if rows.is_empty() {
        return Err(DataError::format(path, "no penguins after the header"));
    }
    Ok(rows)
}
