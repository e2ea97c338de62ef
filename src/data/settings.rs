//! The data settings of a run: which dataset, the validation split, the classes, standardisation.

use std::path::PathBuf;

use crate::error::Result;
use crate::setting::{check, settings};

settings! {
    /// Which data a run trains on, and how it is split and prepared.
    pub struct DataSettings, flags DataFlags, heading "Data" {
        /// Dataset directory with x.npy and y.npy [default: the seed's generated 1000 × 20 set].
        #[arg(value_name = "DIR")]
        input data: PathBuf;
        /// Fraction of rows held out for validation; 0 disables validation.
        #[arg(value_name = "F")]
        numbers val_fraction: f64 = 0.0;
        /// Number of classes, when the labels do not show them all [default: largest label + 1].
        #[arg(value_name = "K")]
        numbers classes: usize;
        /// Standardise features with the training split's mean and deviation (stored with the model).
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        numbers standardize: bool = false;
    }
}

impl DataSettings {
    /// Checks each value on its own, naming the flag of the first bad one.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
        check(
            (0.0..1.0).contains(&self.val_fraction),
            "--val-fraction",
            || format!("must be in [0, 1), got {}", self.val_fraction),
        )?;
        check(self.classes.is_none_or(|c| c >= 2), "--classes", || {
            "must be at least 2".into()
        })
    }
}
