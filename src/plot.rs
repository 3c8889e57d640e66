//! Figures: line charts as SVG (plotters) and grids of small images as SVG with the pixels
//! embedded as one PNG.
//!
//! Charts are SVG so their text is drawn by the reader's browser (no font files needed to build
//! them) and stays sharp at any zoom. Colours follow the Okabe-Ito palette, which stays
//! distinguishable under the common forms of colour blindness; lines also differ in dash style,
//! so nothing depends on colour alone.

use base64::Engine;
use plotters::coord::CoordTranslate;
use plotters::prelude::*;
use std::fmt::Write as _;

/// The Okabe-Ito palette (blue, vermillion, bluish green, orange, reddish purple, sky blue).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
];

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }

    /// The means of `values` (one per step, the first at step 1) over consecutive windows of
    /// `window` steps, each drawn at its window's last step: a noisy per-step curve made
    /// readable. A window holding a non-finite value has a non-finite mean, which is not drawn.
    pub fn window_means(name: impl Into<String>, values: &[f64], window: usize) -> Self {
        let w = window.max(1);
        Series::new(
            name,
            values
                .chunks(w)
                .enumerate()
                .map(|(i, c)| {
                    (
                        (i * w + c.len()) as f64,
                        c.iter().sum::<f64>() / c.len() as f64,
                    )
                })
                .collect(),
        )
    }

    /// A series whose x values are 1, 2, 3, ... (such as one value per epoch).
    pub fn per_epoch(name: impl Into<String>, values: &[f64]) -> Self {
        Series::new(
            name,
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect(),
        )
    }
}

/// Text of a chart: title and axis labels.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    /// Drawn above the chart.
    pub title: &'a str,
    /// Under the x axis.
    pub x: &'a str,
    /// Beside the y axis.
    pub y: &'a str,
}

fn bounds(series: &[Series], pick: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(pick)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad, hi + pad)
}

/// Draws the series as a line chart, 720x420, and returns the SVG text.
pub fn line_chart(labels: Labels<'_>, series: &[Series]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let (x0, x1) = bounds(series, |p| p.0);
        let (y0, y1) = bounds(series, |p| p.1);
        let (legend, y1) = legend_layout(series, (x0, x1), (y0, y1));
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&|x| tidy(*x))
            .y_label_formatter(&|y| tidy(*y))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        draw_lines(&mut chart, series, |p| p.1.is_finite(), legend)?;
        root.present()?;
    }
    Ok(svg)
}

/// How a line is drawn, besides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    /// A solid line.
    Solid,
    /// Long dashes (8 on, 5 off).
    Dashed,
    /// Short dots (2 on, 4 off).
    Dotted,
}

impl Dash {
    /// The (on, off) lengths of the pattern in pixels; `None` for a solid line.
    fn pattern(self) -> Option<(u32, u32)> {
        match self {
            Dash::Solid => None,
            Dash::Dashed => Some((8, 5)),
            Dash::Dotted => Some((2, 4)),
        }
    }
}

// ANCHOR: series_style
/// The colour and dash of the `i`-th series of a chart. The first six alternate solid and
/// dashed over the six colours; the next six swap the dashes, and the six after that bring in
/// dots, so eighteen series all differ in their colour-and-dash pair (a chart with more than
/// that is too crowded to read anyway, and panics).
pub fn series_style(i: usize) -> (RGBColor, Dash) {
    assert!(i < 18, "a chart has at most 18 series, this one has more");
    let colour = PALETTE[i % PALETTE.len()];
    let dash = match ((i % PALETTE.len()) % 2 + i / PALETTE.len()) % 3 {
        0 => Dash::Solid,
        1 => Dash::Dashed,
        _ => Dash::Dotted,
    };
    (colour, dash)
}
// ANCHOR_END: series_style

/// Draws the series of a chart and its legend, each in its [`series_style`], only the points
/// `keep` accepts; the legend shows each line's dash too, so no series depends on colour alone.
fn draw_lines<'a, DB: DrawingBackend + 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series],
    keep: impl Fn(&(f64, f64)) -> bool,
    legend: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    for (i, s) in series.iter().enumerate() {
        let (colour, dash) = series_style(i);
        let style = colour.stroke_width(2);
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| keep(p)).collect();
        match dash.pattern() {
            None => chart.draw_series(LineSeries::new(points, style))?,
            Some((on, off)) => chart.draw_series(DashedLineSeries::new(points, on, off, style))?,
        }
        .label(s.name.clone())
        .legend(move |(x, y)| {
            // The legend's sample: 24 pixels of the line's own pattern (solid: one dash of 24).
            let (on, off) = dash.pattern().unwrap_or((24, 1));
            plotters::element::DashedPathElement::new(vec![(x, y), (x + 24, y)], on, off, style)
        });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .position(legend)
        .draw()?;
    Ok(())
}

/// One tile of an image grid: grey pixels in `[0, 1]` (0 white, 1 black: ink on paper),
/// row-major, and a caption drawn under it.
#[derive(Clone, Debug)]
pub struct Tile<'a> {
    /// `rows * cols` intensities.
    pub pixels: &'a [f32],
    /// A short caption, such as `"7 (true 2)"`.
    pub caption: String,
}

/// Lays tiles of `rows x cols` pixels out in a grid `columns` wide, each pixel drawn as a
/// `scale x scale` square, and returns an SVG with the pixels as one embedded PNG and the
/// captions as text.
pub fn image_grid(
    tiles: &[Tile<'_>],
    rows: usize,
    cols: usize,
    columns: usize,
    scale: usize,
) -> anyhow::Result<String> {
    anyhow::ensure!(columns > 0 && scale > 0, "image_grid: empty layout");
    let gap = 2;
    // Each cell of the PNG is the image with a white band under it for the caption.
    let band = 20usize.div_ceil(scale);
    let grid_rows = tiles.len().div_ceil(columns).max(1);
    let (cell_w, cell_h) = (cols + gap, rows + band + gap);
    let (w, h) = (columns * cell_w + gap, grid_rows * cell_h + gap);
    let mut png_pixels = vec![255u8; w * h];
    for (t, tile) in tiles.iter().enumerate() {
        anyhow::ensure!(
            tile.pixels.len() == rows * cols,
            "image_grid: tile {t} has {} pixels, expected {rows}x{cols}",
            tile.pixels.len()
        );
        let (y0, x0) = (gap + (t / columns) * cell_h, gap + (t % columns) * cell_w);
        for r in 0..rows {
            for c in 0..cols {
                let v = tile.pixels[r * cols + c].clamp(0.0, 1.0);
                png_pixels[(y0 + r) * w + x0 + c] = (255.0 * (1.0 - v)).round() as u8;
            }
        }
    }
    let png = encode_grey_png(&png_pixels, w, h)?;
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let (svg_w, svg_h) = (w * scale, h * scale);
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{svg_w}" height="{svg_h}" viewBox="0 0 {svg_w} {svg_h}">"#
    )?;
    writeln!(
        svg,
        r#"<image width="{svg_w}" height="{svg_h}" style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>"#
    )?;
    for (t, tile) in tiles.iter().enumerate() {
        let x = (gap + (t % columns) * cell_w) * scale + cols * scale / 2;
        let y = (gap + (t / columns) * cell_h + rows) * scale + 15;
        writeln!(
            svg,
            r#"<text x="{x}" y="{y}" font-family="sans-serif" font-size="13" text-anchor="middle" fill="black">{}</text>"#,
            escape(&tile.caption)
        )?;
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Places the legend where it hides no curve. The legend box is about a third of the plot wide
/// and `(20 n + 26)` of its ~320 pixels high (with a margin) for `n` series; a corner is free when no point along
/// the curves (the data points and ten samples along every segment) falls in a box that size.
/// The first free corner wins, in the order upper right, lower right, upper left, lower left;
/// when none is free, the y axis is extended upwards by the legend's height and the legend goes
/// in the empty band at the upper right. Returns the position and the (maybe raised) top of the
/// y axis.
fn legend_layout(
    series: &[Series],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> (SeriesLabelPosition, f64) {
    let (w, h) = (x1 - x0, y1 - y0);
    let height = ((20 * series.len() + 26) as f64 / 320.0).min(0.9);
    let width = 0.38;
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let mut crowded = [false; 4];
    for s in series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let samples = pts.windows(2).flat_map(|seg| {
            (0..10).map(move |k| {
                let t = k as f64 / 10.0;
                (
                    seg[0].0 + t * (seg[1].0 - seg[0].0),
                    seg[0].1 + t * (seg[1].1 - seg[0].1),
                )
            })
        });
        for (x, y) in samples.chain(pts.last().copied()) {
            let (fx, fy) = ((x - x0) / w, (y - y0) / h);
            for (i, &(_, right, upper)) in corners.iter().enumerate() {
                let in_x = if right { fx > 1.0 - width } else { fx < width };
                let in_y = if upper {
                    fy > 1.0 - height
                } else {
                    fy < height
                };
                crowded[i] |= in_x && in_y;
            }
        }
    }
    match (0..4).find(|&i| !crowded[i]) {
        Some(i) => (corners[i].0.clone(), y1),
        None => (
            SeriesLabelPosition::UpperRight,
            y1 + h * height / (1.0 - height),
        ),
    }
}

/// A tick label without float noise: `2` rather than `2.0`, `0.3` rather than `0.30000000000000004`.
fn tidy(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    if r == 0.0 {
        "0".to_string()
    } else {
        format!("{r}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Encodes 8-bit grey pixels (row-major, `w * h`) as a PNG.
pub fn encode_grey_png(pixels: &[u8], w: usize, h: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, u32::try_from(w)?, u32::try_from(h)?);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(pixels)?;
    }
    Ok(out)
}

/// Draws the series on logarithmic x and y axes, 720x420, and returns the SVG text.
///
/// Points whose coordinates are not finite and positive are skipped (a logarithmic axis has no
/// place for them). Series alternate solid and dashed lines, as in [`line_chart`]; the legend
/// sits at `legend`.
pub fn loglog_chart(
    labels: Labels<'_>,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> anyhow::Result<String> {
    let positive = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && p.0 > 0.0 && p.1 > 0.0;
    let log_bounds = |pick: fn(&(f64, f64)) -> f64| {
        let (lo, hi) = series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(positive)
            .map(pick)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo.is_finite() {
            (lo / 1.6, hi * 1.6)
        } else {
            (0.1, 10.0)
        }
    };
    let (x0, x1) = log_bounds(|p| p.0);
    let (y0, y1) = log_bounds(|p| p.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        let power_of_ten = |v: &f64| format!("{:.0e}", v);
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&power_of_ten)
            .y_label_formatter(&power_of_ten)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        draw_lines(&mut chart, series, |p| positive(&p), legend)?;
        root.present()?;
    }
    Ok(svg)
}

/// Ten colours for ten classes: the eight of Okabe and Ito (with black and yellow, darkened to
/// stay readable on white) and two more; scatter plots also draw each point as its class's
/// label, so no class depends on colour alone.
pub const CLASS_COLOURS: [RGBColor; 10] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xC7, 0x8A, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x88, 0x88, 0x88),
    RGBColor(0x88, 0x22, 0x55),
    RGBColor(0x44, 0x77, 0x33),
];

/// Draws points `(x, y, class)` as a scatter, 720x560, each point written as its class's name
/// (`names[class]`, such as the digit itself) in the class's colour, and returns the SVG text.
pub fn label_scatter(
    labels: Labels<'_>,
    points: &[(f64, f64, usize)],
    names: &[String],
) -> anyhow::Result<String> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    anyhow::ensure!(
        points.iter().all(|p| p.2 < names.len()),
        "label_scatter: a class has no name"
    );
    let as_series = [Series::new(
        "",
        points.iter().map(|&(x, y, _)| (x, y)).collect(),
    )];
    let (x0, x1) = bounds(&as_series, |p| p.0);
    let (y0, y1) = bounds(&as_series, |p| p.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (class, name) in names.iter().enumerate() {
            let colour = CLASS_COLOURS[class % CLASS_COLOURS.len()];
            let style = ("sans-serif", 13)
                .into_font()
                .color(&colour)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == class)
                        .map(|&(x, y, _)| Text::new(name.clone(), (x, y), style.clone())),
                )?
                .label(name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// The values of a real function on a regular grid over a rectangle of the plane.
#[derive(Clone, Debug)]
pub struct GridValues {
    /// The x range covered.
    pub x: (f64, f64),
    /// The y range covered.
    pub y: (f64, f64),
    /// Cells along x.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
    /// The function at each cell's centre, `values[j * nx + i]` for column `i`, row `j`.
    pub values: Vec<f64>,
}

impl GridValues {
    /// Evaluates `f` at the centres of an `nx x ny` grid over the rectangle.
    pub fn sample(
        x: (f64, f64),
        y: (f64, f64),
        nx: usize,
        ny: usize,
        f: impl Fn(&[(f64, f64)]) -> Vec<f64>,
    ) -> Self {
        let centres: Vec<(f64, f64)> = (0..ny)
            .flat_map(|j| {
                (0..nx).map(move |i| {
                    (
                        x.0 + (i as f64 + 0.5) * (x.1 - x.0) / nx as f64,
                        y.0 + (j as f64 + 0.5) * (y.1 - y.0) / ny as f64,
                    )
                })
            })
            .collect();
        let values = f(&centres);
        GridValues {
            x,
            y,
            nx,
            ny,
            values,
        }
    }
}

/// Draws a binary classifier's decision function `f` (720x560): cells where `f >= 0` in light
/// blue, `f < 0` in light orange, the margin band `|f| < 1` a shade darker; the points
/// `(x, y, positive)` as blue circles (positive) and orange triangles (negative); and a black
/// ring around each of the `highlighted` points (such as the support vectors).
pub fn decision_map(
    labels: Labels<'_>,
    grid: &GridValues,
    points: &[(f64, f64, bool)],
    highlighted: &[(f64, f64)],
) -> anyhow::Result<String> {
    anyhow::ensure!(
        grid.values.len() == grid.nx * grid.ny && grid.nx > 0 && grid.ny > 0,
        "decision_map: the grid has {} values, expected {}x{}",
        grid.values.len(),
        grid.nx,
        grid.ny
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(grid.x.0..grid.x.1, grid.y.0..grid.y.1)?;
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .disable_mesh()
            .draw()?;
        let (dx, dy) = (
            (grid.x.1 - grid.x.0) / grid.nx as f64,
            (grid.y.1 - grid.y.0) / grid.ny as f64,
        );
        let colour_of = |v: f64| match (v >= 0.0, v.abs() < 1.0) {
            (true, false) => RGBColor(0xDE, 0xEE, 0xF8),
            (true, true) => RGBColor(0xB4, 0xD6, 0xEE),
            (false, false) => RGBColor(0xFC, 0xE8, 0xD6),
            (false, true) => RGBColor(0xF6, 0xC9, 0xA4),
        };
        // One rectangle per run of equally coloured cells in a row keeps the SVG small.
        let mut cells = Vec::new();
        for j in 0..grid.ny {
            let mut start = 0;
            for i in 1..=grid.nx {
                let here = colour_of(grid.values[j * grid.nx + start]);
                if i == grid.nx || colour_of(grid.values[j * grid.nx + i]) != here {
                    let (x0, y0) = (grid.x.0 + start as f64 * dx, grid.y.0 + j as f64 * dy);
                    let x1 = grid.x.0 + i as f64 * dx;
                    cells.push(Rectangle::new([(x0, y0), (x1, y0 + dy)], here.filled()));
                    start = i;
                }
            }
        }
        chart.draw_series(cells)?;
        let (blue, orange) = (PALETTE[0], PALETTE[1]);
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|&(x, y, _)| Circle::new((x, y), 3, blue.filled())),
            )?
            .label("class +1")
            .legend(move |(x, y)| Circle::new((x + 7, y), 3, blue.filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|&(x, y, _)| TriangleMarker::new((x, y), 4, orange.filled())),
            )?
            .label("class -1")
            .legend(move |(x, y)| TriangleMarker::new((x + 7, y), 4, orange.filled()));
        chart
            .draw_series(
                highlighted
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 6, BLACK.stroke_width(1))),
            )?
            .label("support vector")
            .legend(|(x, y)| Circle::new((x + 7, y), 6, BLACK.stroke_width(1)));
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// One panel of [`heatmaps`]: a `rows x cols` matrix of values in `[0, 1]` (such as attention
/// weights), `values[i * cols + j]` for row `i`, column `j`, with a label per row and column.
#[derive(Clone, Debug)]
pub struct Heatmap {
    /// Drawn above the panel.
    pub title: String,
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// The values, row by row.
    pub values: Vec<f64>,
    /// One label per row, drawn on the left.
    pub row_labels: Vec<String>,
    /// One label per column, drawn above.
    pub col_labels: Vec<String>,
}

/// The colour of a value in `[0, 1]` on a white-to-dark-blue ramp (one hue, so it reads the
/// same under every form of colour blindness and in grey).
pub fn ramp(v: f64) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let mix = |lo: f64, hi: f64| (lo + (hi - lo) * v).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

// ANCHOR: heatmaps
/// Draws the panels side by side, `per_row` to a row, each cell `cell` pixels square, values
/// on [`ramp`] (white 0, dark blue 1), and returns the SVG text.
pub fn heatmaps(
    title: &str,
    panels: &[Heatmap],
    per_row: usize,
    cell: u32,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        !panels.is_empty() && per_row > 0,
        "heatmaps: nothing to draw"
    );
    for p in panels {
        anyhow::ensure!(
            p.values.len() == p.rows * p.cols
                && p.row_labels.len() == p.rows
                && p.col_labels.len() == p.cols,
            "heatmaps: panel `{}` has {} values, {} row and {} column labels for {}x{}",
            p.title,
            p.values.len(),
            p.row_labels.len(),
            p.col_labels.len(),
            p.rows,
            p.cols
        );
    }
    let label_w = |labels: &[String]| {
        labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as u32 * 8 + 10
    };
    let left = panels
        .iter()
        .map(|p| label_w(&p.row_labels))
        .max()
        .unwrap_or(20);
    let (max_r, max_c) = panels
        .iter()
        .fold((0, 0), |(r, c), p| (r.max(p.rows), c.max(p.cols)));
    let (top, gap, caption) = (40u32, 24u32, 44u32);
    let panel_w = left + max_c as u32 * cell + gap;
    let panel_h = top + max_r as u32 * cell + gap;
    let cols = per_row.min(panels.len()) as u32;
    let rows = panels.len().div_ceil(per_row) as u32;
    let size = (cols * panel_w + gap, caption + rows * panel_h + 28);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let font = |px: u32| ("sans-serif", px).into_font().color(&BLACK);
        root.draw(&Text::new(title.to_string(), (gap as i32, 10), font(20)))?;
        for (k, p) in panels.iter().enumerate() {
            let x0 = gap + (k % per_row) as u32 * panel_w;
            let y0 = caption + (k / per_row) as u32 * panel_h;
            root.draw(&Text::new(
                p.title.clone(),
                (x0 as i32, y0 as i32),
                font(15),
            ))?;
            let (gx, gy) = ((x0 + left) as i32, (y0 + top) as i32);
            let c = cell as i32;
            for i in 0..p.rows {
                for j in 0..p.cols {
                    let (x, y) = (gx + j as i32 * c, gy + i as i32 * c);
                    root.draw(&Rectangle::new(
                        [(x, y), (x + c, y + c)],
                        ramp(p.values[i * p.cols + j]).filled(),
                    ))?;
                }
                root.draw(&Text::new(
                    p.row_labels[i].clone(),
                    (x0 as i32, gy + i as i32 * c + c / 2 - 6),
                    font(12),
                ))?;
            }
            for (j, label) in p.col_labels.iter().enumerate() {
                root.draw(&Text::new(
                    label.clone(),
                    (gx + j as i32 * c + 1, gy - 16),
                    font(12),
                ))?;
            }
            root.draw(&Rectangle::new(
                [(gx, gy), (gx + p.cols as i32 * c, gy + p.rows as i32 * c)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))?;
        }
        root.draw(&Text::new(
            "white: weight 0, dark blue: weight 1".to_string(),
            (gap as i32, size.1 as i32 - 22),
            font(13),
        ))?;
        root.present()?;
    }
    Ok(svg)
}
// ANCHOR_END: heatmaps
