//! The study's plots, as SVG files: steps to target (log-log, with the slope −1 of perfect
//! scaling, the fitted model and `B_crit`/`B_simple` marked), wall time to target, throughput,
//! and the learning curves.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::sweep::study::SweepReport;

const SIZE: (u32, u32) = (800, 520);
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Tick labels without float noise: `0.2`, `1500`, not `0.20000000000000001`.
fn tick(v: &f64) -> String {
    if *v >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("cannot draw the plot: {e}")),
    )
}

/// A log-log chart with its caption, axis descriptions and tick labels drawn.
type LogChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, LogCoord<f64>>>;

/// The axes every plot of the study shares: log-log, captioned, labelled.
fn log_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    path: &Path,
    title: &str,
    (xr, x_desc): (std::ops::Range<f64>, &str),
    (yr, y_desc): (std::ops::Range<f64>, &str),
) -> Result<LogChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xr.log_scale(), yr.log_scale())
        .map_err(|e| io(path, e))?;
    chart
        .configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| io(path, e))?;
    Ok(chart)
}

/// Padded bounds for a log axis.
fn log_range(values: impl Iterator<Item = f64>) -> Option<std::ops::Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    // Out to whole decades, so every log axis carries labelled ticks at both ends.
    (lo <= hi).then(|| {
        let lo = 10f64.powf((lo / 1.2).log10().floor());
        let hi = 10f64.powf((hi * 1.2).log10().ceil());
        lo..hi
    })
}

/// `(batch, value)` pairs of the rows where `f` gives a value.
fn series(r: &SweepReport, f: impl Fn(&crate::sweep::BatchRow) -> Option<f64>) -> Vec<(f64, f64)> {
    r.rows
        .iter()
        .filter_map(|row| Some((row.batch as f64, f(row)?)))
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .collect()
}

/// Draws the steps to target; `false` (nothing written) when no batch size reached it.
fn steps_plot(r: &SweepReport, path: &Path) -> Result<bool> {
    let pts = series(r, |row| row.steps_to_target);
    // The y range holds the measured points and the fit's asymptote S_min.
    let (Some(xr), Some(yr)) = (
        log_range(r.rows.iter().map(|row| row.batch as f64)),
        log_range(pts.iter().map(|p| p.1).chain(r.fit.map(|f| f.s_min))),
    ) else {
        return Ok(false);
    };
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io(path, e))?;
    let mut chart = log_chart(
        &root,
        path,
        "Steps to target vs batch size",
        (xr.clone(), "batch size B"),
        (yr.clone(), "steps to target S(B)"),
    )?;
    // Perfect scaling: slope −1 through the smallest batch size's point.
    if let Some(&(b0, s0)) = pts.first() {
        // Ends where it leaves the plot: plotters does not clip lines to a log axis.
        let end = xr.end.min(b0 * s0 / yr.start);
        let guide = [(b0, s0), (end, s0 * b0 / end)];
        chart
            .draw_series(LineSeries::new(
                guide,
                ShapeStyle::from(&BLACK.mix(0.4)).stroke_width(1),
            ))
            .map_err(|e| io(path, e))?
            .label("slope −1 (perfect scaling)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    }
    if let Some(f) = r.fit {
        let n = 64;
        let curve = (0..=n).map(|i| {
            let b = xr.start * (xr.end / xr.start).powf(i as f64 / n as f64);
            (b, f.s_min * (1.0 + f.b_crit / b))
        });
        chart
            .draw_series(LineSeries::new(curve, &COLORS[1]))
            .map_err(|e| io(path, e))?
            .label(format!("fit: S_min {:.0}, B_crit {:.0}", f.s_min, f.b_crit))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], COLORS[1]));
        if xr.contains(&f.b_crit) {
            chart
                .draw_series(LineSeries::new(
                    [(f.b_crit, yr.start), (f.b_crit, yr.end)],
                    ShapeStyle::from(&COLORS[1]).stroke_width(1),
                ))
                .map_err(|e| io(path, e))?;
        }
    }
    if let Some(bs) = r.b_simple.filter(|b| xr.contains(b)) {
        chart
            .draw_series(LineSeries::new(
                [(bs, yr.start), (bs, yr.end)],
                ShapeStyle::from(&COLORS[2]).stroke_width(2),
            ))
            .map_err(|e| io(path, e))?
            .label(format!("measured B_simple {bs:.0}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], COLORS[2]));
    }
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 5, COLORS[0].filled())))
        .map_err(|e| io(path, e))?
        .label("measured S(B)")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, COLORS[0].filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| io(path, e))?;
    root.present().map_err(|e| io(path, e))?;
    Ok(true)
}

/// Draws `pts` against the batch size; `false` (nothing written) when there are none.
fn simple_plot(
    r: &SweepReport,
    path: &Path,
    title: &str,
    y_desc: &str,
    pts: Vec<(f64, f64)>,
) -> Result<bool> {
    let (Some(xr), Some(yr)) = (
        log_range(r.rows.iter().map(|row| row.batch as f64)),
        log_range(pts.iter().map(|p| p.1)),
    ) else {
        return Ok(false);
    };
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io(path, e))?;
    let mut chart = log_chart(&root, path, title, (xr, "batch size B"), (yr, y_desc))?;
    chart
        .draw_series(LineSeries::new(pts.clone(), &COLORS[0]))
        .map_err(|e| io(path, e))?;
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 5, COLORS[0].filled())))
        .map_err(|e| io(path, e))?;
    root.present().map_err(|e| io(path, e))?;
    Ok(true)
}

/// Draws the learning curves; `false` (nothing written) when no run has one.
fn curves_plot(r: &SweepReport, path: &Path) -> Result<bool> {
    // The best-lr, first-seed run of each batch size.
    let chosen: Vec<&crate::sweep::RunRecord> = r
        .rows
        .iter()
        .filter_map(|row| {
            r.runs
                .iter()
                .find(|run| run.batch == row.batch && Some(run.lr) == row.best_lr)
        })
        .collect();
    let xr = log_range(
        chosen
            .iter()
            .flat_map(|c| c.curve.iter().map(|p| p.samples as f64)),
    );
    let yr = log_range(
        chosen
            .iter()
            .flat_map(|c| c.curve.iter().map(|p| p.val_loss)),
    );
    let (Some(xr), Some(yr)) = (xr, yr) else {
        return Ok(false);
    };
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io(path, e))?;
    let mut chart = log_chart(
        &root,
        path,
        "Validation loss vs samples, per batch size",
        (xr.clone(), "training samples"),
        (yr.clone(), "validation loss"),
    )?;
    for (i, run) in chosen.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = run
            .curve
            .iter()
            .filter(|p| p.samples > 0 && p.val_loss > 0.0)
            .map(|p| (p.samples as f64, p.val_loss))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, &color))
            .map_err(|e| io(path, e))?
            .label(format!("B = {}", run.label))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    if yr.contains(&r.target) {
        chart
            .draw_series(LineSeries::new(
                [(xr.start, r.target), (xr.end, r.target)],
                ShapeStyle::from(&BLACK.mix(0.4)).stroke_width(1),
            ))
            .map_err(|e| io(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| io(path, e))?;
    root.present().map_err(|e| io(path, e))?;
    Ok(true)
}

/// Writes `steps_to_target.svg`, `wall_to_target.svg`, `throughput.svg` and
/// `loss_curves.svg` into `dir`; a plot with nothing to show is not written (an older one of
/// that name is removed, so the plots never disagree with `sweep.json`). Returns a line per plot
/// left out, saying why.
///
/// # Errors
/// [`Error::Io`] naming the plot that could not be written.
pub fn write_plots(r: &SweepReport, dir: &Path) -> Result<Vec<String>> {
    let target = format!(
        "no batch size reached the target validation loss {:.5}",
        r.target
    );
    let all_diverged = "no run trained without diverging".to_string();
    let plots: [(&str, Result<bool>, &String); 4] = [
        (
            "steps_to_target.svg",
            steps_plot(r, &dir.join("steps_to_target.svg")),
            &target,
        ),
        (
            "wall_to_target.svg",
            simple_plot(
                r,
                &dir.join("wall_to_target.svg"),
                "Wall time to target vs batch size",
                // Milliseconds: plotters labels no ticks on a log axis below 0.1.
                "training milliseconds to target",
                series(r, |row| row.wall_to_target_s.map(|s| s * 1e3)),
            ),
            &target,
        ),
        (
            "throughput.svg",
            simple_plot(
                r,
                &dir.join("throughput.svg"),
                "Throughput vs batch size",
                "samples / s",
                series(r, |row| Some(row.samples_per_s)),
            ),
            &all_diverged,
        ),
        (
            "loss_curves.svg",
            curves_plot(r, &dir.join("loss_curves.svg")),
            &all_diverged,
        ),
    ];
    let mut skipped = Vec::new();
    for (name, drawn, why) in plots {
        if !drawn? {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(path, e));
                }
                _ => {}
            }
            skipped.push(format!("{name} not written: {why}"));
        }
    }
    Ok(skipped)
}
