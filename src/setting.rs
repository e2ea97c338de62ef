//! One definition per setting: its flag, TOML key, type, default, help text and what changing it
//! does to a run's numbers.
//!
//! A group of settings (data, model, optimizer, …) is written once, with `settings!`, as a
//! table of lines like
//!
//! ```text
//! /// Learning rate.
//! numbers lr: f32 = 0.01;
//! ```
//!
//! From that one line come: the field of the resolved settings struct (`lr: f32`, serialised
//! under the key `lr` in `config.toml` and checkpoints), the optional command-line flag `--lr`
//! with its help text and `[default: 0.01]`, the TOML key `lr` of `--config FILE.toml`, and the
//! resume rule (`numbers`: must match when a run is resumed). A line without `= default` is an
//! optional setting (`Option<T>`, unset by default).
//!
//! The effects ([`Effect`]) are `numbers` (changes the weights: must match on resume), `grows`
//! (may grow on resume: the epoch budget), `speed` (threads, prefetch: never changes a number),
//! `record` (what is written or reported, not what is computed) and `input` (a path whose
//! contents are checked by fingerprint, not by name; relative paths in a config file are resolved
//! against the file's directory).

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// What changing a setting between a run and its resume does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes the numbers: a resumed run must keep it.
    Numbers,
    /// May grow on resume (the epoch budget), never shrink.
    Grows,
    /// Changes speed only (threads, prefetch depth).
    Speed,
    /// Changes what is recorded or reported, never the weights.
    Record,
    /// A file or directory: its contents are fingerprinted; its name may change.
    Input,
}

/// One setting of a group, as tests and tools see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingInfo {
    /// The field name (`shard_size`); the flag and the key are its kebab-case spelling.
    pub field: &'static str,
    /// What changing it does.
    pub effect: Effect,
}

impl SettingInfo {
    /// The TOML key, which is also the long flag without `--` (`shard-size`).
    pub fn key(&self) -> String {
        key_of(self.field)
    }
}

/// A result-affecting setting that differs between a saved run and the one resuming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The TOML key (`lr`).
    pub key: String,
    /// The saved value, as the user would write it.
    pub was: String,
    /// The value now.
    pub now: String,
    /// The rule broken: `Effect::Numbers` (must stay) or `Effect::Grows` (may only grow).
    pub rule: Effect,
}

impl Difference {
    /// A difference of `field` from `was` to `now`.
    pub fn new<T: Serialize>(field: &str, was: &T, now: &T, rule: Effect) -> Self {
        Difference {
            key: key_of(field),
            was: show(was),
            now: show(now),
            rule,
        }
    }
}

/// A group of optional flags that a config file's keys can fill.
pub trait FlagGroup {
    /// Sets `key` from a TOML value: `None` when the key is not this group's, else whether the
    /// value fitted (with the reason it did not).
    fn set_key(&mut self, key: &str, value: toml::Value)
    -> Option<std::result::Result<(), String>>;

    /// Resolves the group's relative `input` paths against `dir` (a config file's directory).
    fn rebase_paths(&mut self, dir: &Path);
}

/// `shard_size` → `shard-size`.
pub fn key_of(field: &str) -> String {
    field.replace('_', "-")
}

/// A value as a user writes it on the command line: `0.01`, `relu`, `512,256`, `full`, `unset`.
pub fn show<T: Serialize + ?Sized>(value: &T) -> String {
    fn plain(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Null => "unset".into(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => {
                items.iter().map(plain).collect::<Vec<_>>().join(",")
            }
            other => other.to_string(),
        }
    }
    // serde_json writes an f32 through its own shortest form (0.01, not 0.009999999776…).
    match serde_json::to_string(value) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .map(|v| match &v {
                serde_json::Value::Number(_) => text.clone(),
                _ => plain(&v),
            })
            .unwrap_or(text),
        Err(_) => "?".into(),
    }
}

/// The help text of a flag: its doc comment on one line, then `[default: …]` when it has one.
pub fn help(doc: &[&str], default: Option<String>) -> String {
    let text = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    // clap's style: a short help has no closing full stop.
    let text = text.trim().trim_end_matches('.');
    match default {
        Some(d) if !d.is_empty() => format!("{text} [default: {d}]"),
        _ => text.to_string(),
    }
}

/// Fills `groups` (flags not yet given) from the TOML file at `path`: each key goes to the group
/// that owns it, and relative `input` paths are resolved against the file's directory. The caller
/// merges the result under the command line's flags (flags win).
///
/// # Errors
/// [`Error::Config`] on `--config`, naming the file, the line and the key: a file that cannot
/// be read or parsed, an unknown key, or a value of the wrong type.
pub fn read_config_file(path: &Path, groups: &mut [&mut dyn FlagGroup]) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config("--config", format!("cannot read {}: {e}", path.display())))?;
    read_config_text(&text, path, groups)
}

/// [`read_config_file`] on the `text` of the file at `path` (which names it in errors and
/// anchors its relative paths).
///
/// # Errors
/// As [`read_config_file`].
pub fn read_config_text(text: &str, path: &Path, groups: &mut [&mut dyn FlagGroup]) -> Result<()> {
    let at = |span: Option<std::ops::Range<usize>>| match span {
        Some(s) => format!(
            "{} line {}",
            path.display(),
            text[..s.start.min(text.len())].matches('\n').count() + 1
        ),
        None => path.display().to_string(),
    };
    type Table = std::collections::BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>;
    let table: Table = toml::from_str(text).map_err(|e| {
        // toml says "duplicate key" without the key: it is the text the error points at.
        let key = e
            .span()
            .and_then(|s| text.get(s))
            .map(|k| k.trim().trim_matches('"'))
            .filter(|k| !k.is_empty() && k.len() <= 100 && !k.contains('\n'));
        let message = match key {
            Some(k) if e.message().contains("duplicate key") => {
                format!("duplicate key `{k}` (each key may appear once)")
            }
            _ => one_line(e.message()),
        };
        Error::config("--config", format!("{}: {message}", at(e.span())))
    })?;
    // In file order, so the first problem reported is the first in the file.
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let span = Some(key.span());
        let key = key.into_inner();
        let value = value.into_inner();
        let mut found = false;
        for g in groups.iter_mut() {
            match g.set_key(&key, value.clone()) {
                None => continue,
                Some(Ok(())) => {
                    found = true;
                    break;
                }
                Some(Err(why)) => {
                    return Err(Error::config(
                        "--config",
                        format!("{}: `{key}`: {}", at(span), one_line(&why)),
                    ));
                }
            }
        }
        if !found {
            return Err(Error::config(
                "--config",
                format!(
                    "{}: unknown key `{key}` (the keys are the long flags without --, see \
                     --help)",
                    at(span)
                ),
            ));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    for g in groups.iter_mut() {
        g.rebase_paths(dir);
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Defines a group of settings once; see the [module docs](crate::setting).
///
/// ```text
/// settings! {
///     /// Doc of the resolved struct.
///     pub struct OptimSettings, flags OptimFlags, heading "Optimizer" {
///         /// Help text (also the field's doc).
///         #[arg(value_name = "LR")]          // optional: more clap attributes for the flag
///         numbers lr: f32 = 0.01;            // effect, field, type, default
///         /// An optional setting.
///         numbers patience: usize;           // no default: Option<usize>, unset
///     }
/// }
/// ```
macro_rules! settings {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $Settings:ident, flags $Flags:ident, heading $heading:literal {
            $(
                $(#[doc = $doc:literal])+
                $(#[arg($($arg:tt)*)])?
                $effect:ident $field:ident : $ty:ty $(= $default:expr)?;
            )+
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case", default)]
        pub struct $Settings {
            $(
                $(#[doc = $doc])+
                pub $field: $crate::setting::settings!(@ty $ty $(, $default)?),
            )+
        }

        impl Default for $Settings {
            fn default() -> Self {
                $Settings {
                    $( $field: $crate::setting::settings!(@default $($default)?), )+
                }
            }
        }

        impl $Settings {
            /// Every setting of the group, with its effect on a run's numbers.
            pub const SETTINGS: &'static [$crate::setting::SettingInfo] = &[
                $( $crate::setting::SettingInfo {
                    field: stringify!($field),
                    effect: $crate::setting::settings!(@effect $effect),
                }, )+
            ];

            /// Appends to `out` each setting whose resume rule `saved` → `self` breaks.
            #[allow(
                unused_variables,
                clippy::ptr_arg,
                reason = "a group without result-affecting settings compares nothing"
            )]
            pub fn differences(&self, saved: &Self, out: &mut Vec<$crate::setting::Difference>) {
                $( $crate::setting::settings!(
                    @diff $effect, stringify!($field), &saved.$field, &self.$field, out
                ); )+
            }
        }

        #[doc = concat!(
            "The command-line flags of [`", stringify!($Settings), "`], each optional: what is \
             not given comes from the config file, then the default."
        )]
        #[derive(Debug, Clone, Default, clap::Args)]
        #[command(next_help_heading = $heading)]
        pub struct $Flags {
            $(
                #[arg(
                    long,
                    help = $crate::setting::help(
                        &[$($doc),+],
                        $crate::setting::settings!(@show $($default)?),
                    )
                    $(, $($arg)*)?
                )]
                $field: Option<$ty>,
            )+
        }

        impl $Flags {
            /// Each flag given here, else the one given in `other` (flags win over a file).
            pub fn or(self, other: Self) -> Self {
                $Flags { $( $field: self.$field.or(other.$field), )+ }
            }

            /// The settings: the flags given, the rest from `defaults`.
            pub fn resolve(self, defaults: $Settings) -> $Settings {
                $Settings {
                    $( $field: $crate::setting::settings!(
                        @resolve self.$field, defaults.$field $(, $default)?
                    ), )+
                }
            }

            /// The first flag given, among those named in `fields`.
            pub fn first_given(&self, fields: &[&str]) -> Option<String> {
                $( if self.$field.is_some() && fields.contains(&stringify!($field)) {
                    return Some(format!("--{}", $crate::setting::key_of(stringify!($field))));
                } )+
                None
            }
        }

        impl $crate::setting::FlagGroup for $Flags {
            fn set_key(
                &mut self,
                key: &str,
                value: toml::Value,
            ) -> Option<std::result::Result<(), String>> {
                $(
                    if key == $crate::setting::key_of(stringify!($field)) {
                        return Some(
                            value
                                .try_into::<$ty>()
                                .map(|v| self.$field = Some(v))
                                .map_err(|e| e.message().to_string()),
                        );
                    }
                )+
                None
            }

            fn rebase_paths(&mut self, _dir: &std::path::Path) {
                $( $crate::setting::settings!(@rebase $effect, self.$field, _dir); )+
            }
        }
    };

    (@ty $ty:ty) => { Option<$ty> };
    (@ty $ty:ty, $default:expr) => { $ty };
    (@default) => { None };
    (@default $default:expr) => { $default };
    (@show) => { None };
    (@show $default:expr) => { Some($crate::setting::show(&$default)) };
    (@resolve $flag:expr, $fallback:expr) => { $flag.or($fallback) };
    (@resolve $flag:expr, $fallback:expr, $default:expr) => { $flag.unwrap_or($fallback) };
    (@effect numbers) => { $crate::setting::Effect::Numbers };
    (@effect grows) => { $crate::setting::Effect::Grows };
    (@effect speed) => { $crate::setting::Effect::Speed };
    (@effect record) => { $crate::setting::Effect::Record };
    (@effect input) => { $crate::setting::Effect::Input };
    (@diff numbers, $name:expr, $was:expr, $now:expr, $out:expr) => {
        if $was != $now {
            $out.push($crate::setting::Difference::new(
                $name, $was, $now, $crate::setting::Effect::Numbers,
            ));
        }
    };
    (@diff grows, $name:expr, $was:expr, $now:expr, $out:expr) => {
        if $now < $was {
            $out.push($crate::setting::Difference::new(
                $name, $was, $now, $crate::setting::Effect::Grows,
            ));
        }
    };
    (@diff $other:ident, $name:expr, $was:expr, $now:expr, $out:expr) => {};
    (@rebase input, $field:expr, $dir:expr) => {
        if let Some(p) = &mut $field
            && p.is_relative()
        {
            *p = $dir.join(&*p);
        }
    };
    (@rebase $other:ident, $field:expr, $dir:expr) => {};
}

pub(crate) use settings;

/// A comma-separated list on the command line (`512,256`), a list, a number or a string in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List<T>(pub Vec<T>);

impl<T> std::ops::Deref for List<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(v: Vec<T>) -> Self {
        List(v)
    }
}

impl<T: std::str::FromStr> std::str::FromStr for List<T>
where
    T::Err: std::fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let items: Vec<&str> = s.split(',').map(str::trim).collect();
        if items.iter().all(|i| i.is_empty()) {
            return Err("is empty; give a comma-separated list".into());
        }
        items
            .iter()
            .map(|i| i.parse::<T>().map_err(|e| format!("item {i:?}: {e}")))
            .collect::<std::result::Result<Vec<T>, String>>()
            .map(List)
    }
}

impl<T: Serialize> Serialize for List<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T> serde::Deserialize<'de> for List<T>
where
    T: serde::Deserialize<'de> + std::str::FromStr,
    T::Err: std::fmt::Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form<T> {
            Many(Vec<T>),
            Text(String),
            One(T),
        }
        match Form::<T>::deserialize(d)? {
            Form::Many(v) => Ok(List(v)),
            Form::One(v) => Ok(List(vec![v])),
            Form::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A size in bytes, as a user writes it: `1000000`, `512M`, `8G`, `1.5T` (K, M, G, T are powers
/// of 1024, as in cgroup files; a trailing `B` or `iB` is accepted: `8GiB`, `8GB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let t = lower
            .strip_suffix("ib")
            .or_else(|| lower.strip_suffix('b'))
            .unwrap_or(&lower);
        let (number, unit) = match t.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
            _ => (t, ' '),
        };
        let shift = match unit {
            ' ' => 0,
            'k' => 10,
            'm' => 20,
            'g' => 30,
            't' => 40,
            _ => return Err(format!("unknown unit in {s:?}; use e.g. 512M, 8G or 1T")),
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("expected a size such as 512M, 8G or 1T, got {s:?}"))?;
        let bytes = value * (1u64 << shift) as f64;
        if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
            return Err(format!("{s:?} is not a positive size"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl std::fmt::Display for ByteSize {
    /// `512 B`, `3.2 MiB`, `88.0 GiB`: one decimal, binary units.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut v = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        write!(f, "{v:.1} {}", UNITS[unit])
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            Bytes(u64),
            Text(String),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size in bytes or a string such as \"8G\"")
        })? {
            Form::Bytes(0) => Err(serde::de::Error::custom("must be a positive size")),
            Form::Bytes(n) => Ok(ByteSize(n)),
            Form::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// `Ok` when `ok`, else [`Error::Config`] naming `flag` with the message.
///
/// # Errors
/// As described.
pub fn check(ok: bool, flag: &str, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::config(flag, message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_as_a_user_writes_them() {
        assert_eq!(show(&0.01f32), "0.01");
        assert_eq!(show(&0.02f32), "0.02");
        assert_eq!(show(&Some(3usize)), "3");
        assert_eq!(show(&None::<usize>), "unset");
        assert_eq!(show(&List(vec![512usize, 256])), "512,256");
        assert_eq!(show(&true), "true");
    }

    #[test]
    fn byte_sizes_parse_as_users_write_them_and_show_in_binary_units() {
        assert_eq!("1000".parse::<ByteSize>(), Ok(ByteSize(1000)));
        assert_eq!("512M".parse::<ByteSize>(), Ok(ByteSize(512 << 20)));
        assert_eq!("8GiB".parse::<ByteSize>(), Ok(ByteSize(8 << 30)));
        assert_eq!("8gb".parse::<ByteSize>(), Ok(ByteSize(8 << 30)));
        assert_eq!("1.5K".parse::<ByteSize>(), Ok(ByteSize(1536)));
        assert!("0".parse::<ByteSize>().is_err());
        assert!("8X".parse::<ByteSize>().unwrap_err().contains("unit"));
        assert!("lots".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(100).to_string(), "100 B");
        assert_eq!(ByteSize(3 << 29).to_string(), "1.5 GiB");
        let v: ByteSize = toml::Value::String("2G".into()).try_into().unwrap();
        assert_eq!(v, ByteSize(2 << 30));
        let v: ByteSize = toml::Value::Integer(4096).try_into().unwrap();
        assert_eq!(v, ByteSize(4096));
    }

    #[test]
    fn lists_parse_from_flags_and_toml() {
        assert_eq!("512, 256".parse::<List<usize>>(), Ok(List(vec![512, 256])));
        assert!("".parse::<List<usize>>().is_err());
        assert!("5x".parse::<List<usize>>().unwrap_err().contains("\"5x\""));
        let one: List<usize> = toml::Value::Integer(50).try_into().unwrap();
        assert_eq!(one, List(vec![50]));
        let text: List<usize> = toml::Value::String("8,4".into()).try_into().unwrap();
        assert_eq!(text, List(vec![8, 4]));
    }
}
