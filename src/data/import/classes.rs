//! Class names found in a classification target, and the ids they map to.

use std::collections::{BTreeMap, HashMap};

/// Class names seen in the target column, and how they map to ids.
#[derive(Debug)]
pub(super) enum Classes {
    /// Integer labels: ids follow numeric order.
    Numeric(BTreeMap<i64, usize>),
    /// Text labels: ids follow byte order of the names.
    Text(BTreeMap<String, usize>),
    /// Names given by the caller, in id order.
    Given {
        names: Vec<String>,
        ids: HashMap<String, usize>,
    },
}

impl Classes {
    pub(super) fn len(&self) -> usize {
        match self {
            Classes::Numeric(m) => m.len(),
            Classes::Text(m) => m.len(),
            Classes::Given { names, .. } => names.len(),
        }
    }

    pub(super) fn names(&self) -> Vec<String> {
        match self {
            Classes::Numeric(m) => m.keys().map(i64::to_string).collect(),
            Classes::Text(m) => m.keys().cloned().collect(),
            Classes::Given { names, .. } => names.clone(),
        }
    }

    pub(super) fn assign_ids(&mut self) {
        match self {
            Classes::Numeric(m) => m.values_mut().enumerate().for_each(|(i, v)| *v = i),
            Classes::Text(m) => m.values_mut().enumerate().for_each(|(i, v)| *v = i),
            Classes::Given { .. } => {}
        }
    }

    /// The id of the class named by `cell`, once the ids are assigned; `None` for a name the
    /// first pass did not see.
    pub(super) fn id_of(&self, cell: &str) -> Option<usize> {
        match self {
            Classes::Numeric(m) => integer_of(cell).and_then(|v| m.get(&v).copied()),
            Classes::Text(m) => m.get(cell).copied(),
            Classes::Given { ids, .. } => ids.get(cell).copied(),
        }
    }
}

/// A numeric class label: an integer, written as `3` or `3.0`.
pub(super) fn integer_of(cell: &str) -> Option<i64> {
    let v: f64 = cell.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}
