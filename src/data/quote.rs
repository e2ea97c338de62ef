//! What an error may quote from a file. A file can hold anything (a 100 KB cell, a header
//! nested a hundred thousand levels deep), and an error is one line on stderr: so a message
//! quotes a short, one-line excerpt of what it read, never the whole of it.

/// The most characters an error quotes of one value read from a file.
pub(crate) const QUOTE_CHARS: usize = 60;

/// `text` quoted as a Rust string literal (`"…"`, newlines escaped, so always one line), cut
/// to [`QUOTE_CHARS`] characters; a cut value says how long it was.
pub(crate) fn quoted(text: &str) -> String {
    let n = text.chars().count();
    if n <= QUOTE_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(QUOTE_CHARS).collect();
        format!("{head:?}… ({n} characters)")
    }
}

/// `text` folded onto one line (every run of whitespace, newlines included, becomes one space)
/// and cut to `max` characters, with `…` where it was cut.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        for c in (!out.is_empty())
            .then_some(' ')
            .into_iter()
            .chain(word.chars())
        {
            if count == max {
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// A shape as `[a, b, …]`, its first eight dimensions at most (a header may claim thousands).
pub(crate) fn shape_text(shape: &[usize]) -> String {
    const SHOWN: usize = 8;
    if shape.len() <= SHOWN {
        format!("{shape:?}")
    } else {
        let head: Vec<String> = shape[..SHOWN].iter().map(usize::to_string).collect();
        format!("[{}, … ({} dimensions)]", head.join(", "), shape.len())
    }
}

/// Names joined by `, `, as many as fit in about 200 characters, then how many more there are
/// (a header may have ten thousand columns).
pub(crate) fn list_text(names: &[String]) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        let item = if n.chars().count() > QUOTE_CHARS || n.contains([',', '\n', '"']) {
            quoted(n)
        } else {
            n.clone()
        };
        if i > 0 && out.len() + item.len() > 200 {
            out.push_str(&format!(", … ({} more)", names.len() - i));
            return out;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        let long = "z".repeat(1000);
        let q = quoted(&long);
        assert!(
            q.starts_with(&format!("\"{}\"…", "z".repeat(QUOTE_CHARS))),
            "{q}"
        );
        assert!(q.ends_with("(1000 characters)"), "{q}");
        // Cut on characters, never inside one.
        assert!(quoted(&"§".repeat(100)).contains(&"§".repeat(QUOTE_CHARS)));
    }

    #[test]
    fn text_is_folded_onto_one_line_and_cut() {
        assert_eq!(one_line("a\n  b\t c ", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ab cd", 5), "ab cd");
    }

    #[test]
    fn shapes_and_lists_show_their_head_and_count_the_rest() {
        assert_eq!(shape_text(&[3, 4]), "[3, 4]");
        assert_eq!(
            shape_text(&[1; 30000]),
            "[1, 1, 1, 1, 1, 1, 1, 1, … (30000 dimensions)]"
        );
        let names: Vec<String> = (0..1000).map(|i| format!("col{i}")).collect();
        let t = list_text(&names);
        assert!(t.len() < 250 && t.ends_with("more)"), "{t}");
        assert_eq!(
            list_text(&["a".into(), "b, c".into()]),
            "a, \"b, c\"".to_string()
        );
    }
}
