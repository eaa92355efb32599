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

/// Text for a terminal: every control character but line breaks and tabs, and the characters
/// that reorder text (bidirectional overrides), shown as an escape (`\u{1b}`), so that an event
/// name, args or a file name from the input cannot move the cursor, retitle the window, clear
/// the screen or hide text. The colour sequences rehearse's own styles write (SGR with the
/// bold, dim, colour and reset parameters) are kept.
pub fn for_terminal(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}'
            && let Some(len) = own_style(rest)
        {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

/// The length of the SGR sequence at the start of `s` when it is one rehearse's styles write:
/// `ESC [ n ; n … m` with reset, bold, dim, normal intensity and the 16 colours only.
fn own_style(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\u{1b}[")?;
    let end = body.find('m')?;
    let params = &body[..end];
    let allowed = |p: &str| {
        matches!(p.parse::<u8>(), Ok(0 | 1 | 2 | 22 | 30..=37 | 39 | 90..=97)) || p.is_empty()
    };
    (params.len() <= 16 && params.split(';').all(allowed)).then_some(2 + end + 1)
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

    #[test]
    fn terminal_text_keeps_own_colours_and_escapes_the_rest() {
        assert_eq!(for_terminal("plain\nline\t"), "plain\nline\t");
        assert_eq!(
            for_terminal("\u{1b}[1m\u{1b}[31mFAIL\u{1b}[0m"),
            "\u{1b}[1m\u{1b}[31mFAIL\u{1b}[0m"
        );
        assert_eq!(
            for_terminal("v1.\u{1b}]0;pwned\u{7}X\u{1b}[2J\u{1b}[8mhidden\r"),
            "v1.\\u{1b}]0;pwned\\u{7}X\\u{1b}[2J\\u{1b}[8mhidden\\u{d}"
        );
        assert_eq!(for_terminal("a\u{202e}b\u{9b}c"), "a\\u{202e}b\\u{9b}c");
    }
}
