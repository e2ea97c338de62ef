//! Agreement at start: the processes of a shared run must train the same run on the same
//! data with the same kernels, or their shards would not add up to one process's batch.

use crate::error::{Error, Result};
use crate::train::{Progress, Trainer};

/// What one process says about the run it is about to train: `(what, value)` pairs.
fn facts(trainer: &Trainer, resumed: Option<&Progress>) -> Result<Vec<(String, String)>> {
    let mut facts = vec![(
        "the number of processes".to_string(),
        trainer.collective().world_size().to_string(),
    )];
    // The matrix kernels of one instruction set, or one depth block (from the L1d size), give
    // bits another does not (AVX2, AVX-512; 48 or 32 KiB L1d).
    facts.push((
        "the matrix kernels".into(),
        crate::model::matmul::kernel_isa().into(),
    ));
    // Every setting, as config.toml writes it (paths aside: the files are compared by content).
    let toml = trainer.config().to_toml()?;
    for line in toml.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once(" = ").unwrap_or((line, ""));
        if key != "data" && key != "init" {
            facts.push((format!("--{key}"), value.to_string()));
        }
    }
    for f in trainer.identity()?.data {
        facts.push((
            format!("data file {}", f.file),
            format!("{} bytes, sampled hash {:016x}", f.len, f.sample_hash),
        ));
    }
    facts.push((
        "the checkpoint resumed from".into(),
        match resumed {
            Some(p) => format!("step {}", p.global_step),
            None => "none (a new run)".into(),
        },
    ));
    Ok(facts)
}

fn encode(facts: &[(String, String)]) -> Vec<u8> {
    let mut text = String::new();
    for (k, v) in facts {
        text.push_str(k);
        text.push('\t');
        text.push_str(v);
        text.push('\n');
    }
    text.into_bytes()
}

fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The first of `mine` that differs from rank 0's `theirs`, said in words.
fn difference(theirs: &[(String, String)], mine: &[(String, String)]) -> Option<String> {
    for (k, v) in mine {
        match theirs.iter().find(|(t, _)| t == k) {
            Some((_, t)) if t == v => {}
            Some((_, t)) => return Some(format!("{k} is {v} here but {t} on rank 0")),
            None => return Some(format!("{k} is {v} here but rank 0 has none")),
        }
    }
    theirs
        .iter()
        .find(|(k, _)| !mine.iter().any(|(m, _)| m == k))
        .map(|(k, v)| format!("{k} is {v} on rank 0 but this rank has none"))
}

/// Every process of the trainer's run compares what it is about to train with rank 0's; with
/// one process, nothing to do. Every process returns the same answer.
///
/// # Errors
/// [`Error::World`] naming, for each rank that differs, the first thing that does.
pub fn agree(trainer: &Trainer, resumed: Option<&Progress>) -> Result<()> {
    let c = trainer.collective();
    let (rank, world) = (c.rank(), c.world_size());
    if world == 1 {
        return Ok(());
    }
    let mine = facts(trainer, resumed)?;
    let mut zero = encode(&mine);
    c.broadcast_bytes(0, &mut zero);
    let verdict = difference(&decode(&zero), &mine);
    let mut differs = Vec::new();
    for r in 0..world {
        let mut said = if r == rank {
            verdict.clone().unwrap_or_default().into_bytes()
        } else {
            Vec::new()
        };
        c.broadcast_bytes(r, &mut said);
        if !said.is_empty() {
            differs.push(format!("rank {r}: {}", String::from_utf8_lossy(&said)));
        }
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::World {
        message: format!(
            "the {world} processes of this run disagree, so their shards would not add up to \
             one batch: {}",
            differs.join("; ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_first_difference_is_named_with_both_values() {
        let zero = f(&[("--lr", "0.01"), ("data file x.npy", "80 bytes")]);
        assert_eq!(difference(&zero, &zero), None);
        let mine = f(&[("--lr", "0.02"), ("data file x.npy", "80 bytes")]);
        assert_eq!(
            difference(&zero, &mine).unwrap(),
            "--lr is 0.02 here but 0.01 on rank 0"
        );
        let fewer = f(&[("--lr", "0.01")]);
        assert_eq!(
            difference(&zero, &fewer).unwrap(),
            "data file x.npy is 80 bytes on rank 0 but this rank has none"
        );
        assert_eq!(decode(&encode(&zero)), zero);
    }
}
