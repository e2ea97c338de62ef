//! The study's plots, as SVG: steps to target (log-log, with the slope −1 of perfect scaling,
//! the fitted model, `B_crit` with its interval and `B_simple` at the target), wall time to
//! target, throughput, the best learning rate against the batch size (with the linear and
//! square-root scaling rules), `B_simple` against the loss, and the learning curves.
//!
//! Axes are fitted to the data (padded a little, not rounded out to whole decades) and carry
//! their own tick labels in short form (`500`, `1k`, `10k`, `1M`, `0.02`).

use std::ops::Range;
use std::path::Path;

use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::optim::OptimizerKind;
use crate::sweep::{RunRecord, SweepReport, optimizer_name};

const SIZE: (u32, u32) = (760, 470);
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
const GREY: RGBColor = RGBColor(110, 110, 110);

/// A number as a tick label: `0.002`, `0.5`, `12`, `500`, `1k`, `2.5k`, `10k`, `1M`.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let sa = scaled.abs();
    let digits = if sa == 0.0 || sa >= 100.0 {
        0
    } else if sa >= 10.0 {
        1
    } else if sa >= 1.0 {
        2
    } else {
        (-sa.log10().floor()) as usize + 2
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

/// Tick positions for a log axis over `r`: 1-2-5 steps per decade, thinned to decades when
/// there are too many, filled in with 1–9 when too few.
pub fn ticks(r: &Range<f64>) -> Vec<f64> {
    let (lo, hi) = (r.start, r.end);
    let within = |mults: &[f64]| -> Vec<f64> {
        let mut out = Vec::new();
        let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        for d in d0..=d1 {
            for m in mults {
                let v = m * 10f64.powi(d);
                if v >= lo * 0.999_999 && v <= hi * 1.000_001 {
                    out.push(v);
                }
            }
        }
        out
    };
    let mut t = within(&[1.0, 2.0, 5.0]);
    if t.len() > 9 {
        t = within(&[1.0]);
        while t.len() > 9 {
            t = t.into_iter().step_by(2).collect();
        }
    } else if t.len() < 3 {
        t = within(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        if t.len() > 8 {
            t = within(&[1.0, 2.0, 3.0, 5.0, 7.0]);
        }
    }
    t
}

/// Bounds of a log axis holding `values`: padded by a quarter on each side (half when they
/// are all one value).
pub fn log_range(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    (lo <= hi).then(|| {
        let pad = if hi / lo < 1.01 { 2.0 } else { 1.25 };
        lo / pad..hi * pad
    })
}

type Axis = WithKeyPoints<LogCoord<f64>>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, plotters::coord::Shift>;

fn err(name: &str, e: impl std::fmt::Display) -> Error {
    Error::io(
        Path::new(name),
        std::io::Error::other(format!("cannot draw the plot: {e}")),
    )
}

/// A log-log chart with caption, axis descriptions and short tick labels.
fn chart<'a, 'b>(
    root: &'a Area<'b>,
    name: &str,
    title: &str,
    (xr, x_desc): (Range<f64>, &str),
    (yr, y_desc): (Range<f64>, &str),
) -> Result<Chart<'a, 'b>> {
    let (xt, yt) = (ticks(&xr), ticks(&yr));
    let mut c = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            xr.log_scale().with_key_points(xt),
            yr.log_scale().with_key_points(yt),
        )
        .map_err(|e| err(name, e))?;
    c.configure_mesh()
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| err(name, e))?;
    Ok(c)
}

/// The parts of the polyline `pts` inside the chart's ranges (plotters does not clip).
fn clipped(pts: &[(f64, f64)], xr: &Range<f64>, yr: &Range<f64>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in pts {
        if xr.contains(&x) && yr.contains(&y) {
            out.last_mut().expect("non-empty").push((x, y));
        } else if !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|s| s.len() > 1);
    out
}

/// `f` sampled along the log x range.
fn sampled(xr: &Range<f64>, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let n = 96;
    (0..=n)
        .map(|i| {
            let x = xr.start * (xr.end / xr.start).powf(i as f64 / n as f64);
            (x, f(x))
        })
        .collect()
}

/// Draws `line` clipped, with a legend entry when `label` is given.
fn line(
    c: &mut Chart<'_, '_>,
    name: &str,
    pts: &[(f64, f64)],
    style: ShapeStyle,
    label: Option<String>,
) -> Result<()> {
    let (xr, yr) = (c.x_range(), c.y_range());
    let mut first = true;
    for seg in clipped(pts, &xr, &yr) {
        let s = c
            .draw_series(LineSeries::new(seg, style))
            .map_err(|e| err(name, e))?;
        if first && let Some(l) = &label {
            s.label(l.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        first = false;
    }
    Ok(())
}

fn vertical(c: &mut Chart<'_, '_>, name: &str, x: f64, style: ShapeStyle) -> Result<()> {
    let yr = c.y_range();
    if c.x_range().contains(&x) {
        c.draw_series(LineSeries::new([(x, yr.start), (x, yr.end)], style))
            .map_err(|e| err(name, e))?;
    }
    Ok(())
}

fn legend<'a, 'b: 'a>(c: &mut Chart<'a, 'b>, name: &str, pos: SeriesLabelPosition) -> Result<()> {
    c.configure_series_labels()
        .position(pos)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .draw()
        .map_err(|e| err(name, e))
}

/// Draws into a fresh SVG string.
fn svg(name: &str, draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(name, e))?;
        draw(&root)?;
        root.present().map_err(|e| err(name, e))?;
    }
    Ok(buf)
}

fn color(r: &SweepReport, o: OptimizerKind) -> RGBColor {
    let i = r.fits.iter().position(|f| f.optimizer == o).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

fn series_name(r: &SweepReport, o: OptimizerKind, what: &str) -> String {
    if r.several_optimizers() {
        format!("{what} ({})", optimizer_name(o))
    } else {
        what.to_string()
    }
}

/// `(batch, value)` of each row of optimizer `o` where `f` gives a positive value.
fn points(
    r: &SweepReport,
    o: OptimizerKind,
    f: impl Fn(&crate::sweep::BatchRow) -> Option<f64>,
) -> Vec<(f64, f64)> {
    r.rows
        .iter()
        .filter(|row| row.optimizer == o)
        .filter_map(|row| Some((row.batch as f64, f(row)?)))
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .collect()
}

/// Steps to target; `None` when no batch size reached it.
pub fn steps_plot(r: &SweepReport) -> Result<Option<String>> {
    let name = "steps_to_target.svg";
    let all: Vec<(f64, f64)> = r
        .fits
        .iter()
        .flat_map(|f| points(r, f.optimizer, |row| row.steps_to_target))
        .collect();
    if all.is_empty() {
        return Ok(None);
    }
    let xs = r.rows.iter().map(|row| row.batch as f64);
    let marks = r.fits.iter().filter_map(|f| f.fit.map(|m| m.b_crit));
    let Some(xr) = log_range(xs.chain(marks.filter(|b| *b < 1e9))) else {
        return Ok(None);
    };
    let mins = r.fits.iter().filter_map(|f| f.fit.map(|m| m.s_min));
    let Some(yr) = log_range(all.iter().map(|p| p.1).chain(mins)) else {
        return Ok(None);
    };
    svg(name, |root| {
        let mut c = chart(
            root,
            name,
            &format!("Steps to the target loss {} vs batch size", short(r.target)),
            (xr.clone(), "batch size B"),
            (yr.clone(), "steps to target S(B)"),
        )?;
        for f in &r.fits {
            let col = color(r, f.optimizer);
            let pts = points(r, f.optimizer, |row| row.steps_to_target);
            if let Some(&(b0, s0)) = pts.first() {
                let guide = sampled(&xr, |b| s0 * b0 / b);
                let style = ShapeStyle::from(&GREY.mix(0.7)).stroke_width(1);
                let label = (f.optimizer == r.fits[0].optimizer)
                    .then(|| "slope −1 (perfect scaling)".to_string());
                line(&mut c, name, &guide, style, label)?;
            }
            if let Some(m) = f.fit {
                if let Some([lo, hi]) = f.b_crit_interval {
                    let (a, b) = (lo.max(xr.start), hi.min(xr.end));
                    if a < b {
                        c.draw_series([Rectangle::new(
                            [(a, yr.start), (b, yr.end)],
                            col.mix(0.12).filled(),
                        )])
                        .map_err(|e| err(name, e))?;
                    }
                }
                let curve = sampled(&xr, |b| m.steps(b));
                let interval = f.b_crit_interval.map_or(String::new(), |[lo, hi]| {
                    format!(" [{}–{}]", short(lo), short(hi))
                });
                line(
                    &mut c,
                    name,
                    &curve,
                    ShapeStyle::from(&col).stroke_width(2),
                    Some(series_name(
                        r,
                        f.optimizer,
                        &format!(
                            "fit: S_min {}, B_crit {}{interval}",
                            short(m.s_min),
                            short(m.b_crit)
                        ),
                    )),
                )?;
                vertical(
                    &mut c,
                    name,
                    m.b_crit,
                    ShapeStyle::from(&col).stroke_width(1),
                )?;
            }
            if let Some(bs) = f.b_simple_at_target {
                let style = ShapeStyle::from(&COLORS[2]).stroke_width(2);
                if xr.contains(&bs) {
                    vertical(&mut c, name, bs, style)?;
                    c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                        .map_err(|e| err(name, e))?
                        .label(series_name(
                            r,
                            f.optimizer,
                            &format!("B_simple at target {}", short(bs)),
                        ))
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
                }
            }
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 5, col.filled())))
                .map_err(|e| err(name, e))?
                .label(series_name(r, f.optimizer, "measured S(B)"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
        }
        legend(&mut c, name, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

/// One value per batch size and optimizer, as lines with points; `None` when there is none.
fn per_batch_plot(
    r: &SweepReport,
    name: &str,
    title: &str,
    y_desc: &str,
    f: impl Fn(&crate::sweep::BatchRow) -> Option<f64>,
) -> Result<Option<String>> {
    let all: Vec<(OptimizerKind, Vec<(f64, f64)>)> = r
        .fits
        .iter()
        .map(|o| (o.optimizer, points(r, o.optimizer, &f)))
        .collect();
    let (Some(xr), Some(yr)) = (
        log_range(r.rows.iter().map(|row| row.batch as f64)),
        log_range(all.iter().flat_map(|(_, p)| p.iter().map(|q| q.1))),
    ) else {
        return Ok(None);
    };
    svg(name, |root| {
        let mut c = chart(root, name, title, (xr, "batch size B"), (yr, y_desc))?;
        for (o, pts) in &all {
            let col = color(r, *o);
            line(
                &mut c,
                name,
                pts,
                ShapeStyle::from(&col).stroke_width(2),
                r.several_optimizers()
                    .then(|| optimizer_name(*o).to_string()),
            )?;
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 5, col.filled())))
                .map_err(|e| err(name, e))?;
        }
        if r.several_optimizers() {
            legend(&mut c, name, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
    .map(Some)
}

/// The best learning rate per batch size, with the linear (`∝ B`) and square-root (`∝ √B`)
/// scaling rules through the smallest batch size's; a best rate on the grid's edge is drawn
/// hollow. `None` without a best rate.
pub fn best_lr_plot(r: &SweepReport) -> Result<Option<String>> {
    let name = "best_lr.svg";
    let lr = |row: &crate::sweep::BatchRow| row.best_lr.map(f64::from);
    let all: Vec<f64> = r.rows.iter().filter_map(lr).collect();
    let (Some(xr), Some(yr)) = (
        log_range(r.rows.iter().map(|row| row.batch as f64)),
        log_range(all.iter().copied()),
    ) else {
        return Ok(None);
    };
    // Room for the scaling lines: they fan out from the smallest batch's point.
    let yr = yr.start / 2.0..yr.end * 2.0;
    svg(name, |root| {
        let mut c = chart(
            root,
            name,
            "Best learning rate vs batch size",
            (xr.clone(), "batch size B"),
            (yr, "best learning rate"),
        )?;
        for (i, f) in r.fits.iter().enumerate() {
            let col = color(r, f.optimizer);
            let rows: Vec<&crate::sweep::BatchRow> = r
                .rows
                .iter()
                .filter(|row| row.optimizer == f.optimizer && row.best_lr.is_some())
                .collect();
            let Some(first) = rows.first() else { continue };
            let (b0, l0) = (first.batch as f64, f64::from(first.best_lr.unwrap_or(0.0)));
            let dash = |c: RGBColor| ShapeStyle::from(&c.mix(0.6)).stroke_width(1);
            line(
                &mut c,
                name,
                &sampled(&xr, |b| l0 * b / b0),
                dash(COLORS[3]),
                (i == 0).then(|| "linear scaling (∝ B)".to_string()),
            )?;
            line(
                &mut c,
                name,
                &sampled(&xr, |b| l0 * (b / b0).sqrt()),
                dash(COLORS[4]),
                (i == 0).then(|| "square-root scaling (∝ √B)".to_string()),
            )?;
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|row| Some((row.batch as f64, f64::from(row.best_lr?))))
                .collect();
            line(
                &mut c,
                name,
                &pts,
                ShapeStyle::from(&col).stroke_width(2),
                Some(series_name(r, f.optimizer, "best learning rate")),
            )?;
            c.draw_series(rows.iter().filter_map(|row| {
                let p = (row.batch as f64, f64::from(row.best_lr?));
                let style = if row.lr_on_grid_edge {
                    col.stroke_width(2)
                } else {
                    col.filled()
                };
                Some(Circle::new(p, 5, style))
            }))
            .map_err(|e| err(name, e))?;
        }
        if r.rows.iter().any(|row| row.lr_on_grid_edge) {
            c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(|e| err(name, e))?
                .label("hollow: on the grid's edge (widen --lr-grid)")
                .legend(|(x, y)| Circle::new((x + 10, y), 4, GREY.stroke_width(2)));
        }
        legend(&mut c, name, SeriesLabelPosition::UpperLeft)
    })
    .map(Some)
}

/// The best cell's first-seed run of each row.
fn chosen_runs(r: &SweepReport) -> Vec<&RunRecord> {
    r.rows
        .iter()
        .filter_map(|row| {
            r.runs.iter().find(|run| {
                run.batch == row.batch
                    && run.optimizer == row.optimizer
                    && Some(run.lr) == row.best_lr
                    && run.momentum == row.best_momentum
            })
        })
        .collect()
}

fn run_name(r: &SweepReport, run: &RunRecord) -> String {
    if r.several_optimizers() {
        format!("B = {} ({})", run.label, optimizer_name(run.optimizer))
    } else {
        format!("B = {}", run.label)
    }
}

/// `B_simple` against the validation loss along the best runs; `None` when no run measured it.
pub fn noise_plot(r: &SweepReport) -> Result<Option<String>> {
    let name = "b_simple_vs_loss.svg";
    let runs: Vec<(&RunRecord, Vec<(f64, f64)>)> = chosen_runs(r)
        .into_iter()
        .map(|run| {
            let pts = run
                .curve
                .iter()
                .filter_map(|p| Some((p.val_loss, p.b_simple?)))
                .filter(|(l, b)| *l > 0.0 && *b > 0.0 && b.is_finite())
                .collect::<Vec<_>>();
            (run, pts)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let (Some(xr), Some(yr)) = (
        log_range(
            runs.iter()
                .flat_map(|(_, p)| p.iter().map(|q| q.0))
                .chain([r.target]),
        ),
        log_range(runs.iter().flat_map(|(_, p)| p.iter().map(|q| q.1))),
    ) else {
        return Ok(None);
    };
    svg(name, |root| {
        let mut c = chart(
            root,
            name,
            "Noise scale B_simple vs validation loss (loss falls to the left)",
            (xr.clone(), "validation loss"),
            (yr.clone(), "B_simple"),
        )?;
        for (i, (run, pts)) in runs.iter().enumerate() {
            let col = COLORS[i % COLORS.len()];
            line(
                &mut c,
                name,
                pts,
                ShapeStyle::from(&col).stroke_width(2),
                Some(run_name(r, run)),
            )?;
        }
        let t = ShapeStyle::from(&BLACK.mix(0.6)).stroke_width(1);
        vertical(&mut c, name, r.target, t)?;
        c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(|e| err(name, e))?
            .label(format!("target {}", short(r.target)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], t));
        for f in &r.fits {
            if let Some(m) = f.fit.filter(|m| yr.contains(&m.b_crit)) {
                let style = ShapeStyle::from(&GREY).stroke_width(2);
                line(
                    &mut c,
                    name,
                    &[(xr.start, m.b_crit), (xr.end, m.b_crit)],
                    style,
                    Some(series_name(
                        r,
                        f.optimizer,
                        &format!("fitted B_crit {}", short(m.b_crit)),
                    )),
                )?;
            }
        }
        legend(&mut c, name, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

/// Validation loss against samples along the best runs; `None` when no run has a curve.
pub fn curves_plot(r: &SweepReport) -> Result<Option<String>> {
    let name = "loss_curves.svg";
    let chosen = chosen_runs(r);
    let pts = |run: &RunRecord| -> Vec<(f64, f64)> {
        run.curve
            .iter()
            .filter(|p| p.samples > 0 && p.val_loss > 0.0)
            .map(|p| (p.samples as f64, p.val_loss))
            .collect()
    };
    let (Some(xr), Some(yr)) = (
        log_range(chosen.iter().flat_map(|c| pts(c).into_iter().map(|p| p.0))),
        log_range(
            chosen
                .iter()
                .flat_map(|c| pts(c).into_iter().map(|p| p.1))
                .chain([r.target]),
        ),
    ) else {
        return Ok(None);
    };
    svg(name, |root| {
        let mut c = chart(
            root,
            name,
            "Validation loss vs samples, best learning rate per batch size",
            (xr.clone(), "training samples"),
            (yr, "validation loss"),
        )?;
        for (i, run) in chosen.iter().enumerate() {
            let col = COLORS[i % COLORS.len()];
            line(
                &mut c,
                name,
                &pts(run),
                ShapeStyle::from(&col).stroke_width(2),
                Some(run_name(r, run)),
            )?;
        }
        let t = ShapeStyle::from(&BLACK.mix(0.6)).stroke_width(1);
        line(
            &mut c,
            name,
            &[(xr.start, r.target), (xr.end, r.target)],
            t,
            Some(format!("target {}", short(r.target))),
        )?;
        legend(&mut c, name, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

/// Every plot of the study as `(file name, SVG or why it is left out)`, in reading order.
///
/// # Errors
/// [`Error::Io`] naming the plot that could not be drawn.
pub fn plots(r: &SweepReport) -> Result<Vec<(&'static str, std::result::Result<String, String>)>> {
    let target = format!(
        "no batch size reached the target validation loss {:.5}",
        r.target
    );
    let all_diverged = "no run trained without diverging".to_string();
    let why = |p: Option<String>, w: &String| p.ok_or_else(|| w.clone());
    Ok(vec![
        ("steps_to_target.svg", why(steps_plot(r)?, &target)),
        (
            "wall_to_target.svg",
            why(
                per_batch_plot(
                    r,
                    "wall_to_target.svg",
                    "Wall time to target vs batch size (steps × step time)",
                    "seconds to target",
                    |row| row.wall_to_target_s,
                )?,
                &target,
            ),
        ),
        (
            "throughput.svg",
            why(
                per_batch_plot(
                    r,
                    "throughput.svg",
                    "Throughput vs batch size (measured apart, warm)",
                    "samples / s",
                    |row| Some(row.samples_per_s),
                )?,
                &all_diverged,
            ),
        ),
        ("best_lr.svg", why(best_lr_plot(r)?, &all_diverged)),
        (
            "b_simple_vs_loss.svg",
            why(
                noise_plot(r)?,
                &"no run measured B_simple (batches of two shards or more)".to_string(),
            ),
        ),
        ("loss_curves.svg", why(curves_plot(r)?, &all_diverged)),
    ])
}

/// Writes each plot of [`plots`] into `dir`; a plot with nothing to show is not written (an
/// older one of that name is removed, so the plots never disagree with `sweep.json`). Returns
/// a line per plot left out, saying why.
///
/// # Errors
/// [`Error::Io`] naming the plot that could not be written.
pub fn write_plots(r: &SweepReport, dir: &Path) -> Result<Vec<String>> {
    let mut skipped = Vec::new();
    for (name, drawn) in plots(r)? {
        let path = dir.join(name);
        match drawn {
            Ok(svg) => {
                crate::fsutil::write_atomic(&path, |f| {
                    std::io::Write::write_all(f, svg.as_bytes())
                })?;
            }
            Err(why) => {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(path, e));
                    }
                    _ => {}
                }
                skipped.push(format!("{name} not written: {why}"));
            }
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        let shown: Vec<String> = [
            0.002, 0.5, 12.0, 500.0, 1000.0, 2500.0, 10_000.0, 1e6, 1.5e7,
        ]
        .iter()
        .map(|&v| short(v))
        .collect();
        assert_eq!(
            shown,
            [
                "0.002", "0.5", "12", "500", "1k", "2.5k", "10k", "1M", "15M"
            ]
        );
    }

    #[test]
    fn log_axes_get_a_few_ticks_inside_the_data() {
        assert_eq!(
            ticks(&(6.0..3000.0)),
            [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]
        );
        // Less than a decade: filled in.
        let t = ticks(&(0.3..0.9));
        assert!(
            t.len() >= 3 && t.iter().all(|v| (0.3..=0.9).contains(v)),
            "{t:?}"
        );
        // Many decades: thinned.
        assert!(ticks(&(1.0..1e12)).len() <= 9);
    }
}
