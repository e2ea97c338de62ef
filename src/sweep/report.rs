//! The study's outputs: the terminal table, `sweep.csv` and `sweep.json`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sweep::study::SweepReport;

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.prec$}"))
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
        "{:>7} {:>10} {:>11} {:>9} {:>10} {:>11} {:>9} {:>10} {:>10} {:>9} {:>8}",
        "batch",
        "lr",
        "samples/s",
        "step ms",
        "S(B)",
        "E(B)",
        "wall s",
        "best@ep",
        "best@steps",
        "B_simple",
        "diverged"
    );
    for row in &r.rows {
        let _ = writeln!(
            s,
            "{:>7} {:>10} {:>11.0} {:>9.3} {:>10} {:>11} {:>9} {:>10} {:>10} {:>9} {:>8}",
            row.label,
            row.best_lr.map_or("-".into(), |v| format!("{v:.4e}")),
            row.samples_per_s,
            row.step_ms,
            row.steps_to_target
                .map_or("not reached".into(), |v| format!("{v:.1}")),
            opt(row.samples_to_target, 0),
            opt(row.wall_to_target_s, 3),
            opt(row.best_val_epoch_budget, 5),
            opt(row.best_val_step_budget, 5),
            opt(row.b_simple, 1),
            format!("{}/{}", row.diverged_runs, row.runs),
        );
    }
    match r.fit {
        Some(f) => {
            let _ = writeln!(
                s,
                "fit S(B) = S_min (1 + B_crit/B): S_min {:.1} steps, E_min {:.0} samples, \
                 B_crit {:.1}",
                f.s_min, f.e_min, f.b_crit
            );
        }
        None => {
            let _ = writeln!(s, "fit S(B): not enough batch sizes reached the target");
        }
    }
    let _ = writeln!(
        s,
        "measured B_simple (gradient noise scale): {}",
        opt(r.b_simple, 1)
    );
    let _ = writeln!(
        s,
        "shortest wall time to target here: batch {}",
        r.fastest.as_deref().unwrap_or("-")
    );
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
    for row in &r.rows {
        w.serialize(row)
            .map_err(|e| Error::io(&csv_path, std::io::Error::other(e.to_string())))?;
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
