//! The study's outputs as text and data: the terminal table, `sweep.csv` and `sweep.json`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sweep::{OptimizerFit, SweepReport, optimizer_name};

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.prec$}"))
}

/// The fit of one optimizer, in a line or two: the model with the `B_crit` interval, or the
/// failure with what to run next.
pub fn fit_lines(f: &OptimizerFit, several: bool) -> Vec<String> {
    let who = if several {
        format!(" ({})", optimizer_name(f.optimizer))
    } else {
        String::new()
    };
    let mut out = Vec::new();
    match (&f.fit, &f.failure) {
        (Some(m), _) => {
            let interval = f.b_crit_interval.map_or(String::new(), |[lo, hi]| {
                format!(" (90% bootstrap interval {lo:.0}–{hi:.0})")
            });
            out.push(format!(
                "fit{who} S(B) = S_min (1 + B_crit/B): S_min {:.1} steps, E_min {:.0} samples, \
                 B_crit {:.1}{interval}",
                m.s_min, m.e_min, m.b_crit
            ));
        }
        (None, Some(why)) => {
            out.push(format!(
                "fit{who} S(B): no fit of B_crit: {}",
                why.message()
            ));
            out.push(format!("  next: {}", why.next()));
        }
        (None, None) => out.push(format!("fit{who} S(B): no fit of B_crit")),
    }
    out.extend(f.notes.iter().map(|n| format!("  note: {n}")));
    out
}

/// The table printed at the end of a sweep.
pub fn table(r: &SweepReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "target validation loss {:.5}{}; step budget {}",
        r.target,
        if r.target_auto { " (auto)" } else { "" },
        r.step_budget.map_or("-".into(), |b| b.to_string())
    );
    let _ = writeln!(
        s,
        "{:>13} {:>10} {:>7} {:>11} {:>9} {:>11} {:>11} {:>9} {:>10} {:>10} {:>10} {:>7} {:>8}",
        "batch",
        "best lr",
        "factor",
        "samples/s",
        "step ms",
        "S(B)",
        "E(B)",
        "wall s",
        "B_simple@T",
        "best@ep",
        "best@steps",
        "pruned",
        "diverged"
    );
    for row in &r.rows {
        let factor = match row.best_lr_factor {
            Some(f) if row.lr_on_grid_edge => format!("{f}!"),
            Some(f) => f.to_string(),
            None => "-".into(),
        };
        let _ = writeln!(
            s,
            "{:>13} {:>10} {:>7} {:>11.0} {:>9.3} {:>11} {:>11} {:>9} {:>10} {:>10} {:>10} {:>7} {:>8}",
            r.row_name(row),
            row.best_lr.map_or("-".into(), |v| format!("{v:.3e}")),
            factor,
            row.samples_per_s,
            row.step_ms,
            row.steps_to_target
                .map_or("not reached".into(), |v| format!("{v:.1}")),
            opt(row.samples_to_target, 0),
            opt(row.wall_to_target_s, 3),
            opt(row.b_simple_at_target, 1),
            opt(row.best_val_epoch_budget, 5),
            opt(row.best_val_step_budget, 5),
            format!("{}/{}", row.pruned_runs, row.runs),
            format!("{}/{}", row.diverged_runs, row.runs),
        );
    }
    if r.rows.iter().any(|row| row.lr_on_grid_edge) {
        let _ = writeln!(
            s,
            "(factor!: best rate on the grid's edge: widen --lr-grid)"
        );
    }
    for f in &r.fits {
        for line in fit_lines(f, r.several_optimizers()) {
            let _ = writeln!(s, "{line}");
        }
    }
    let _ = writeln!(
        s,
        "B_simple (gradient noise scale) at the target: {} (median over batch sizes; {} at the \
         runs' ends)",
        opt(r.b_simple_at_target, 1),
        opt(r.b_simple, 1)
    );
    let _ = writeln!(
        s,
        "shortest wall time to target here: batch {}",
        r.fastest.as_deref().unwrap_or("-")
    );
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// Writes `dir/sweep.csv` (one row per batch size) and `dir/sweep.json` (everything, curves
/// included), each atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write(r: &SweepReport, dir: &Path) -> Result<()> {
    let csv_path = dir.join("sweep.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::io(&csv_path, std::io::Error::other(e.to_string()));
    w.write_record([
        "optimizer",
        "batch",
        "label",
        "best_lr",
        "best_lr_factor",
        "best_momentum",
        "lr_on_grid_edge",
        "samples_per_s",
        "step_ms",
        "steps_to_target",
        "samples_to_target",
        "wall_to_target_s",
        "run_time_to_target_s",
        "b_simple_at_target",
        "b_simple",
        "best_val_epoch_budget",
        "best_val_step_budget",
        "pruned_runs",
        "diverged_runs",
        "noisy_runs",
        "runs",
    ])
    .map_err(csv_err)?;
    let o = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for row in &r.rows {
        w.write_record([
            optimizer_name(row.optimizer).to_string(),
            row.batch.to_string(),
            row.label.clone(),
            o(row.best_lr.map(f64::from)),
            o(row.best_lr_factor.map(f64::from)),
            o(row.best_momentum.map(f64::from)),
            row.lr_on_grid_edge.to_string(),
            row.samples_per_s.to_string(),
            row.step_ms.to_string(),
            o(row.steps_to_target),
            o(row.samples_to_target),
            o(row.wall_to_target_s),
            o(row.run_time_to_target_s),
            o(row.b_simple_at_target),
            o(row.b_simple),
            o(row.best_val_epoch_budget),
            o(row.best_val_step_budget),
            row.pruned_runs.to_string(),
            row.diverged_runs.to_string(),
            row.noisy_runs.to_string(),
            row.runs.to_string(),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io(&csv_path, std::io::Error::other(e.to_string())))?;
    crate::fsutil::write_atomic(&csv_path, |f| std::io::Write::write_all(f, &bytes))?;
    let json = serde_json::to_vec_pretty(r).expect("report serialises");
    crate::fsutil::write_atomic(&dir.join("sweep.json"), |f| {
        std::io::Write::write_all(f, &json)
    })
}
