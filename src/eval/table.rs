//! The text form of an [`EvalReport`]: the summary lines, the per-class table and the confusion
//! matrix that `dptrain eval` prints (`--json` prints the report's serde form instead).

use std::fmt;

use super::report::EvalReport;
use crate::loss::Loss;

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loss_name = match self.loss_fn {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross-entropy",
        };
        writeln!(f, "model: {}", self.model.display())?;
        writeln!(f, "rows: {}", self.rows)?;
        writeln!(f, "loss ({loss_name}): {:.6}", self.loss)?;
        let Some(c) = &self.classification else {
            return Ok(());
        };
        writeln!(
            f,
            "accuracy: {:.4} ({}/{})",
            c.accuracy, c.correct, self.rows
        )?;
        let w = c
            .per_class
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let score = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        writeln!(f)?;
        writeln!(
            f,
            "{:<w$}  {:>9}  {:>9}  {:>9}  {:>7}",
            "class", "precision", "recall", "f1", "support"
        )?;
        for s in &c.per_class {
            writeln!(
                f,
                "{:<w$}  {:>9}  {:>9}  {:>9}  {:>7}",
                s.name,
                score(s.precision),
                score(s.recall),
                score(s.f1),
                s.support
            )?;
        }
        writeln!(f)?;
        writeln!(f, "confusion matrix (rows: true class, columns: predicted)")?;
        let cw = c
            .per_class
            .iter()
            .map(|s| s.name.chars().count())
            .chain(c.confusion.iter().flatten().map(|n| n.to_string().len()))
            .max()
            .unwrap_or(1);
        write!(f, "{:<w$}", "")?;
        for s in &c.per_class {
            write!(f, "  {:>cw$}", s.name)?;
        }
        writeln!(f)?;
        for (s, row) in c.per_class.iter().zip(&c.confusion) {
            write!(f, "{:<w$}", s.name)?;
            for n in row {
                write!(f, "  {n:>cw$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
