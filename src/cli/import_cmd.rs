//! `dptrain import csv`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use dptrain::data::{CsvImport, Task, import_csv, read_labels, split_targets};
use dptrain::{Error, Result};

/// Flags of `dptrain import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum Format {
    /// Import a CSV file (streamed: files larger than memory import).
    ///
    /// Every column but the targets is a feature. Numeric targets are regression unless
    /// --task classification; a text target is classification, with class ids in sorted order
    /// of the names, saved as DIR/labels.json.
    Csv(CsvArgs),
}

/// Flags of `dptrain import csv`.
#[derive(Debug, Args)]
pub struct CsvArgs {
    /// The CSV file.
    file: PathBuf,
    /// Target column(s): header names or 0-based indices, comma-separated or the flag repeated;
    /// a name holding a comma goes in double quotes, as in the file: --target '"a, b"'.
    #[arg(long, value_name = "COL[,COL…]", required = true)]
    target: Vec<String>,
    /// Directory to write x.npy, y.npy (and labels.json) into; created if missing.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Regression or classification [default: from the target: numbers → regression, text →
    /// classification].
    #[arg(long, value_enum)]
    task: Option<TaskArg>,
    /// Field separator: one character, or "tab" [default: ,].
    #[arg(long, value_name = "C", default_value = ",")]
    delimiter: String,
    /// Class names by id to use (e.g. the training split's labels.json), so that a separately
    /// imported test split gets the same ids; implies classification.
    #[arg(long, value_name = "FILE.json")]
    labels: Option<PathBuf>,
    /// The first line is data, not column names (targets are then indices).
    #[arg(long)]
    no_header: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TaskArg {
    Regression,
    Classification,
}

pub fn run(a: ImportArgs) -> Result<()> {
    let Format::Csv(a) = a.format;
    let delimiter = match a.delimiter.as_str() {
        "tab" | "\\t" | "\t" => b'\t',
        d if d.len() == 1 => d.as_bytes()[0],
        d if d.chars().count() == 1 => {
            return Err(Error::config(
                "--delimiter",
                format!(
                    "{d:?} is one character but {} bytes in UTF-8, and the CSV reader splits \
                     fields on one byte; use an ASCII character such as ',' ';' '|' or tab",
                    d.len()
                ),
            ));
        }
        d => {
            return Err(Error::config(
                "--delimiter",
                format!("{d:?} is not one character; use e.g. ',' ';' '|' or tab"),
            ));
        }
    };
    let mut targets = Vec::new();
    for value in &a.target {
        targets.extend(split_targets(value)?);
    }
    let spec = CsvImport {
        targets,
        task: a.task.map(|t| match t {
            TaskArg::Regression => Task::Regression,
            TaskArg::Classification => Task::Classification,
        }),
        delimiter,
        has_header: !a.no_header,
        labels: a.labels.as_deref().map(read_labels).transpose()?,
    };
    dptrain::fsutil::check_out("--out", &a.out, dptrain::fsutil::OutKind::Dir)?;
    let s = import_csv(&a.file, &spec, &a.out)?;
    let task = match (&s.labels, &s.class_counts) {
        (Some(names), Some(counts)) => {
            let shown: Vec<String> = names
                .iter()
                .zip(counts)
                .take(10)
                .map(|(n, c)| format!("{n} ({c})"))
                .collect();
            let more = if names.len() > 10 { ", …" } else { "" };
            format!(
                "classification, {} classes: {}{more}",
                names.len(),
                shown.join(", ")
            )
        }
        _ => format!("regression, {} target(s)", s.targets.len()),
    };
    say!(
        "imported {} row{} × {} features from {} into {} ({task})",
        s.rows,
        if s.rows == 1 { "" } else { "s" },
        s.features.len(),
        a.file.display(),
        a.out.display()
    );
    Ok(())
}
