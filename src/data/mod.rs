//! Datasets: memory-mapped `.npy` files validated at open, the train/validation split,
//! synthetic generation and inspection.

mod dataset;
mod features;
mod fingerprint;
mod import;
pub mod npy;
mod npy_writer;
mod quote;
mod settings;
mod split;
mod stage;
mod standardize;
mod stats;
mod synthetic;

pub use dataset::{Dataset, LabelBound, MAX_LABEL, TargetKind};
pub use features::FeatureMatrix;
pub use fingerprint::FileFingerprint;
pub use import::{CsvImport, ImportSummary, import_csv, read_labels, split_targets};
pub use settings::{DataFlags, DataSettings};
pub use split::Split;
pub use standardize::Standardizer;
pub use stats::{ArrayStats, ColumnStats, DatasetStats};
pub use synthetic::{SyntheticSpec, Task};
