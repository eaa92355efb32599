//! Small pieces of wording shared by every message rehearse writes, so that a value is shortened
//! and a count is worded the same way everywhere.

/// Shortens a value for a message, on a character boundary.
pub fn truncate(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}… ({} chars)", s.chars().count())
    }
}

/// `noun` in the number `n` takes: `event` for one, `events`, `corpora` or `entries` for
/// others.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        return noun.to_string();
    }
    if let Some(stem) = noun.strip_suffix("us") {
        // corpus → corpora: the one Latin noun rehearse counts.
        return format!("{stem}ora");
    }
    if let Some(stem) = noun.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if noun.ends_with(['s', 'x']) || noun.ends_with("sh") || noun.ends_with("ch") {
        return format!("{noun}es");
    }
    format!("{noun}s")
}

/// `n` and its noun: `1 event`, `2 events`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {}", plural(n, noun))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_worded_in_their_number() {
        assert_eq!(count(1, "event"), "1 event");
        assert_eq!(count(0, "event"), "0 events");
        assert_eq!(count(2, "corpus"), "2 corpora");
        assert_eq!(count(1, "corpus"), "1 corpus");
        assert_eq!(count(3, "entry"), "3 entries");
        assert_eq!(count(3, "key"), "3 keys");
        assert_eq!(count(2, "schema"), "2 schemas");
        assert_eq!(count(2, "match"), "2 matches");
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(200);
        let cut = truncate(&long);
        assert!(cut.starts_with(&"é".repeat(120)));
        assert!(cut.ends_with("… (200 chars)"));
        assert_eq!(truncate("short"), "short");
    }
}
