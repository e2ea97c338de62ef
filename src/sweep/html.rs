//! `SWEEP/report.html`: the study on one self-contained page (no network, no scripts): the
//! headline answer, the table, the fits with their intervals or failures, the notes and the
//! plots inline as SVG.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::sweep::plot::short;
use crate::sweep::report::fit_lines;
use crate::sweep::{SweepReport, optimizer_name};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cell(v: Option<f64>) -> String {
    v.map_or("–".into(), short)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1600px;margin:1.5em auto;padding:0 1em;\
color:#222}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.4em}table{border-collapse:collapse;\
font-size:.9em}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}.edge{color:#b00;font-weight:bold}\
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(760px,1fr));gap:1em}\
.plots figure{margin:0}.plots figcaption{font-size:.85em;color:#555}ul{line-height:1.4}\
.fail{color:#b00}";

/// The page for `r`; `title` heads it (e.g. the study directory), `settings` is a line of the
/// settings that shaped it.
///
/// # Errors
/// [`crate::Error::Io`] when a plot cannot be drawn.
pub fn page(r: &SweepReport, title: &str, settings: &str) -> Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Batch-size study \
         {t}</title><style>{STYLE}</style></head><body><h1>Batch-size study: {t}</h1>",
        t = esc(title)
    );
    let _ = write!(h, "<p>{}</p>", esc(settings));
    let _ = write!(
        h,
        "<p><b>Target validation loss {:.5}</b>{}. Shortest wall time to the target here: \
         <b>batch {}</b>. B_simple at the target: <b>{}</b> (median over batch sizes).</p>",
        r.target,
        if r.target_auto {
            " (auto: 2% above the worst batch size's best loss)"
        } else {
            ""
        },
        esc(r.fastest.as_deref().unwrap_or("–")),
        cell(r.b_simple_at_target)
    );
    h.push_str("<h2>Fit S(B) = S<sub>min</sub> (1 + B<sub>crit</sub>/B)</h2><ul>");
    for f in &r.fits {
        for (i, line) in fit_lines(f, r.several_optimizers()).iter().enumerate() {
            let class = if i == 0 && f.fit.is_none() {
                " class=\"fail\""
            } else {
                ""
            };
            let _ = write!(h, "<li{class}>{}</li>", esc(line.trim()));
        }
    }
    h.push_str("</ul><h2>Per batch size</h2><table><tr>");
    for (head, left) in [
        ("batch", true),
        ("best lr", false),
        ("factor", false),
        ("step ms", false),
        ("samples/s", false),
        ("S(B) steps", false),
        ("E(B) samples", false),
        ("wall s = S × step", false),
        ("in-run s", false),
        ("B_simple at target", false),
        ("best loss", false),
        ("pruned", false),
        ("diverged", false),
        ("noisy", false),
    ] {
        let c = if left { " class=\"l\"" } else { "" };
        let _ = write!(h, "<th{c}>{}</th>", esc(head));
    }
    h.push_str("</tr>");
    for row in &r.rows {
        let factor = match row.best_lr_factor {
            Some(f) if row.lr_on_grid_edge => {
                format!("<span class=\"edge\">{f} (edge: widen --lr-grid)</span>")
            }
            Some(f) => f.to_string(),
            None => "–".into(),
        };
        let momentum = row
            .best_momentum
            .map_or(String::new(), |m| format!(", m {m}"));
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}/{}</td>\
             <td>{}/{}</td></tr>",
            esc(&r.row_name(row)),
            row.best_lr.map_or("–".into(), |v| format!("{v:.3e}")),
            momentum,
            factor,
            cell(Some(row.step_ms)),
            cell(Some(row.samples_per_s)),
            row.steps_to_target
                .map_or("not reached".into(), |v| format!("{v:.1}")),
            cell(row.samples_to_target),
            cell(row.wall_to_target_s),
            cell(row.run_time_to_target_s),
            cell(row.b_simple_at_target),
            row.best_val_epoch_budget
                .map_or("–".into(), |v| format!("{v:.5}")),
            row.pruned_runs,
            row.runs,
            row.diverged_runs,
            row.runs,
            row.noisy_runs,
            row.runs
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<p>Cost: {} runs, {} pruned; {} samples trained of {} without pruning ({:.0}%).</p>",
        r.cost.runs,
        r.cost.pruned_runs,
        short(r.cost.samples as f64),
        short(r.cost.samples_unpruned as f64),
        100.0 * r.cost.samples as f64 / r.cost.samples_unpruned.max(1) as f64
    );
    if !r.notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>Plots</h2><div class=\"plots\">");
    for (name, drawn) in crate::sweep::plot::plots(r)? {
        match drawn {
            Ok(svg) => {
                // The SVG's own XML declaration is not allowed inside HTML.
                let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
                let _ = write!(
                    h,
                    "<figure>{body}<figcaption>{}</figcaption></figure>",
                    esc(name)
                );
            }
            Err(why) => {
                let _ = write!(
                    h,
                    "<figure><figcaption>{}: {}</figcaption></figure>",
                    esc(name),
                    esc(&why)
                );
            }
        }
    }
    h.push_str("</div>");
    let optimizers: Vec<&str> = r.fits.iter().map(|f| optimizer_name(f.optimizer)).collect();
    let _ = write!(
        h,
        "<p style=\"font-size:.8em;color:#666\">Optimizers: {}. Wall time to target is steps to \
         target × the step time measured apart (warm, evaluations excluded); \"in-run s\" is \
         the runs' own training time to the target, for comparison. Everything is in \
         sweep.json.</p></body></html>",
        esc(&optimizers.join(", "))
    );
    h.push('\n');
    Ok(h)
}

/// Writes `dir/report.html` atomically.
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn write(r: &SweepReport, dir: &Path, title: &str, settings: &str) -> Result<()> {
    let text = page(r, title, settings)?;
    crate::fsutil::write_atomic(&dir.join("report.html"), |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })
}
