//! The batching settings of a run: rows per step, order, the last partial batch.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::setting::settings;

/// Rows per optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// A fixed number of rows (1 = single-sample SGD).
    Rows(usize),
    /// The whole training split per step (full-batch gradient descent).
    Full,
}

impl std::str::FromStr for BatchSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("full") {
            return Ok(BatchSize::Full);
        }
        match s.parse::<usize>() {
            Ok(0) => Err("must be at least 1 (or \"full\")".into()),
            Ok(n) => Ok(BatchSize::Rows(n)),
            Err(_) => Err(format!(
                "expected a positive integer or \"full\", got {s:?}"
            )),
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Rows(n) => write!(f, "{n}"),
            BatchSize::Full => f.write_str("full"),
        }
    }
}

impl Serialize for BatchSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchSize::Rows(n) => s.serialize_u64(*n as u64),
            BatchSize::Full => s.serialize_str("full"),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = BatchSize;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a positive integer or \"full\"")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<BatchSize, E> {
                match usize::try_from(n) {
                    Ok(0) | Err(_) => Err(E::custom(format!(
                        "expected a positive integer or \"full\", got {n}"
                    ))),
                    Ok(n) => Ok(BatchSize::Rows(n)),
                }
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<BatchSize, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!(
                        "expected a positive integer or \"full\", got {n}"
                    ))),
                }
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<BatchSize, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The order in which an epoch presents the training rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shuffle {
    /// A fresh permutation of the rows every epoch (PyTorch's `shuffle=True`).
    #[default]
    Rows,
    /// A permutation of contiguous blocks of rows (about 1 MiB each), rows shuffled within a
    /// window of blocks: storage is read in large sequential pieces (data larger than memory).
    Blocks,
    /// File order every epoch.
    None,
}

impl std::str::FromStr for Shuffle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rows" | "true" => Ok(Shuffle::Rows),
            "blocks" => Ok(Shuffle::Blocks),
            "none" | "false" => Ok(Shuffle::None),
            _ => Err(format!("expected rows, blocks or none, got {s:?}")),
        }
    }
}

impl std::fmt::Display for Shuffle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shuffle::Rows => "rows",
            Shuffle::Blocks => "blocks",
            Shuffle::None => "none",
        })
    }
}

impl Serialize for Shuffle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Shuffle {
    /// `"rows"`, `"blocks"`, `"none"`, or the booleans of earlier versions (`true` = rows).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Flag(bool),
            Name(String),
        }
        match Form::deserialize(d)? {
            Form::Flag(true) => Ok(Shuffle::Rows),
            Form::Flag(false) => Ok(Shuffle::None),
            Form::Name(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

settings! {
    /// How the training rows are cut into steps.
    pub struct BatchSettings, flags BatchFlags, heading "Batching" {
        /// Rows per step: N (1 = single-sample SGD) or "full" (whole training split).
        #[arg(value_name = "N|full")]
        numbers batch_size: BatchSize = BatchSize::Rows(32);
        /// Row order per epoch: rows (a permutation of the rows), blocks (of contiguous rows, shuffled within a window: for data larger than memory) or none (file order; also --no-shuffle).
        #[arg(num_args = 0..=1, default_missing_value = "rows", value_name = "rows|blocks|none")]
        numbers shuffle: Shuffle = Shuffle::Rows;
        /// Rows per block of --shuffle blocks [default: about 1 MiB of rows].
        #[arg(value_name = "N")]
        numbers block_rows: usize;
        /// Drop the last partial batch of each epoch.
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        numbers drop_last: bool = false;
    }
}

impl BatchSettings {
    /// The rows per step for a training split of `rows` rows.
    ///
    /// # Errors
    /// [`Error::Config`] on `--batch-size` when `--drop-last` would leave no step.
    pub fn batch_rows(&self, rows: usize) -> Result<usize> {
        match self.batch_size {
            BatchSize::Full => Ok(rows),
            BatchSize::Rows(b) if self.drop_last && b > rows => Err(Error::config(
                "--batch-size",
                format!(
                    "{b} is larger than the {rows} training rows, and --drop-last would drop \
                     every batch"
                ),
            )),
            BatchSize::Rows(b) => Ok(b.min(rows)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_parses_integers_and_full() {
        assert_eq!("32".parse::<BatchSize>(), Ok(BatchSize::Rows(32)));
        assert_eq!("full".parse::<BatchSize>(), Ok(BatchSize::Full));
        assert!("0".parse::<BatchSize>().is_err());
        assert!("x".parse::<BatchSize>().is_err());
    }

    #[test]
    fn batch_size_in_toml_says_what_it_expected() {
        let v: BatchSize = toml::Value::Integer(64).try_into().unwrap();
        assert_eq!(v, BatchSize::Rows(64));
        let v: BatchSize = toml::Value::String("full".into()).try_into().unwrap();
        assert_eq!(v, BatchSize::Full);
        let bad = toml::Value::String("half".into()).try_into::<BatchSize>();
        let msg = bad.unwrap_err().message().to_string();
        assert!(msg.contains("positive integer or \"full\""), "{msg}");
        assert!(!msg.contains("untagged"), "{msg}");
    }
}
