//! Content lines (RFC 5545 §3.1): bytes → unfolded `NAME;PARAM=v:value` lines,
//! each remembering the physical line it started on, and the reverse (folding).
//!
//! Owns the lexical layer only: it knows nothing of components or value types
//! beyond TEXT escaping. Must not touch domain types, files or the clock.

use crate::error::IcsError;

/// The longest unfolded content line accepted, in bytes. Real calendars stay
/// far below this (a long DESCRIPTION is a few KiB); only embedded binary
/// attachments come close, and a file made of one huge line is not a calendar.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// Quoted input in messages is cut to this many characters, so that an error
/// about a huge line stays readable.
const QUOTE_CHARS: usize = 60;

/// Folded lines are at most this many octets, CRLF excluded (RFC 5545 §3.1).
const FOLD_OCTETS: usize = 75;

/// One parameter: `NAME=v1,v2` with quotes removed and RFC 6868 `^` escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) values: Vec<String>,
}

/// One unfolded content line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentLine {
    /// Upper-cased: names are case-insensitive.
    pub(crate) name: String,
    pub(crate) params: Vec<Param>,
    /// The value as written (still TEXT-escaped).
    pub(crate) value: String,
    /// 1-based physical line the content line starts on.
    pub(crate) line: usize,
    /// The whole unfolded line as written, re-folded when a component is kept raw.
    pub(crate) text: String,
}

impl ContentLine {
    /// The first value of a parameter (names compare case-insensitively).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.values.first())
            .map(String::as_str)
    }

    /// The value with TEXT escapes undone.
    pub(crate) fn text_value(&self) -> String {
        unescape_text(&self.value)
    }
}

/// Cuts `s` for quoting in a message: `'abc…'`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("'");
    let mut chars = s.chars();
    out.extend(chars.by_ref().take(QUOTE_CHARS));
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('\'');
    out
}

/// Splits a file into unfolded content lines. Also returns the number of the
/// last physical line, which truncation errors point at.
pub(crate) fn content_lines(bytes: &[u8]) -> Result<(Vec<ContentLine>, usize), IcsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(bytes, e.valid_up_to()))?;

    // Old Mac files end lines with a lone CR; everything else has LF.
    let separator = if !text.contains('\n') && text.contains('\r') {
        '\r'
    } else {
        '\n'
    };

    let mut lines = Vec::new();
    // (first physical line, unfolded text)
    let mut current: Option<(usize, String)> = None;
    let mut last_line = 0;
    for (index, physical) in text.split(separator).enumerate() {
        let number = index + 1;
        let physical = physical.trim_end_matches('\r');
        if physical.is_empty() {
            // A trailing newline yields one empty piece; blank lines inside are
            // tolerated (some exporters add them) and end nothing.
            continue;
        }
        last_line = number;
        check_characters(physical, number)?;
        if let Some(rest) = physical
            .strip_prefix(' ')
            .or_else(|| physical.strip_prefix('\t'))
        {
            match current.as_mut() {
                Some((_, unfolded)) => unfolded.push_str(rest),
                None => {
                    return Err(IcsError::new(
                        number,
                        format!(
                            "{} starts with a space or tab, which continues a folded line, but no line precedes it; remove the indentation",
                            quote(physical)
                        ),
                    ));
                }
            }
        } else {
            if let Some((first, unfolded)) = current.take() {
                lines.push(parse_line(first, unfolded)?);
            }
            current = Some((number, physical.to_owned()));
        }
    }
    if let Some((first, unfolded)) = current.take() {
        lines.push(parse_line(first, unfolded)?);
    }
    Ok((lines, last_line.max(1)))
}

fn not_utf8(bytes: &[u8], valid_up_to: usize) -> IcsError {
    let before = &bytes[..valid_up_to];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = valid_up_to
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    let byte = bytes.get(valid_up_to).copied().unwrap_or_default();
    IcsError::new(
        line,
        format!(
            "not valid UTF-8 text (byte 0x{byte:02X} at column {column}); iCalendar files are UTF-8: export the calendar again, or convert it (iconv -f LATIN1 -t UTF-8)"
        ),
    )
}

/// RFC 5545 forbids control characters other than HTAB in content lines. NUL,
/// ESC, DEL and their kin mean binary data, not a damaged calendar; the few
/// that word processors paste into descriptions (vertical tab, form feed, a
/// stray CR) are let through and kept as written.
fn check_characters(physical: &str, number: usize) -> Result<(), IcsError> {
    let binary = |c: char| c.is_ascii_control() && !matches!(c, '\t' | '\u{0B}' | '\u{0C}' | '\r');
    match physical.chars().find(|&c| binary(c)) {
        Some(c) => Err(IcsError::new(
            number,
            format!(
                "contains the control character U+{:04X}; this looks like binary data, not an iCalendar text file",
                c as u32
            ),
        )),
        None => Ok(()),
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn parse_line(line: usize, text: String) -> Result<ContentLine, IcsError> {
    if text.len() > MAX_LINE_BYTES {
        return Err(IcsError::new(
            line,
            format!(
                "line is {} bytes long, over the {MAX_LINE_BYTES} limit (is a large attachment embedded? remove it and import again)",
                text.len()
            ),
        ));
    }
    if !text.contains(':') {
        return Err(IcsError::new(
            line,
            format!(
                "no ':' in {}; a content line is NAME:value (was a long line broken without folding?)",
                quote(&text)
            ),
        ));
    }
    let bytes = text.as_bytes();
    let name_end = bytes
        .iter()
        .position(|&b| !is_name_char(b))
        .unwrap_or(bytes.len());
    if name_end == 0 || !matches!(bytes.get(name_end), Some(b';' | b':')) {
        return Err(IcsError::new(
            line,
            format!(
                "{} is not a content line: expected NAME[;PARAM=value]:value, with a name of letters, digits and '-'",
                quote(&text)
            ),
        ));
    }
    let name = text[..name_end].to_ascii_uppercase();
    let mut params = Vec::new();
    let mut pos = name_end;
    // Invariant: bytes[pos] is ';' (another parameter) or ':' (the value).
    while bytes.get(pos) == Some(&b';') {
        let start = pos + 1;
        let pname_end = start
            + bytes[start..]
                .iter()
                .position(|&b| !is_name_char(b))
                .unwrap_or(bytes.len() - start);
        if pname_end == start || bytes.get(pname_end) != Some(&b'=') {
            return Err(IcsError::new(
                line,
                format!(
                    "a parameter of {name} is not PARAM=value near {}",
                    quote(&text[start..])
                ),
            ));
        }
        let pname = text[start..pname_end].to_ascii_uppercase();
        let mut values = Vec::new();
        pos = pname_end + 1;
        loop {
            if bytes.get(pos) == Some(&b'"') {
                let open = pos + 1;
                let close = bytes[open..]
                    .iter()
                    .position(|&b| b == b'"')
                    .map(|p| open + p)
                    .ok_or_else(|| {
                        IcsError::new(
                            line,
                            format!(
                                "the quoted value of parameter {pname} of {name} is never closed with '\"'"
                            ),
                        )
                    })?;
                values.push(decode_param(&text[open..close]));
                pos = close + 1;
            } else {
                let end = pos
                    + bytes[pos..]
                        .iter()
                        .position(|&b| matches!(b, b';' | b':' | b',' | b'"'))
                        .unwrap_or(bytes.len() - pos);
                values.push(decode_param(&text[pos..end]));
                pos = end;
            }
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b';' | b':') => break,
                _ => {
                    return Err(IcsError::new(
                        line,
                        format!(
                            "parameter {pname} of {name} is followed by {} where ';', ',' or ':' was expected",
                            quote(&text[pos.min(text.len())..])
                        ),
                    ));
                }
            }
        }
        params.push(Param {
            name: pname,
            values,
        });
    }
    // The loop above leaves pos on ':'.
    let value = text[pos + 1..].to_owned();
    Ok(ContentLine {
        name,
        params,
        value,
        line,
        text,
    })
}

/// RFC 6868: `^n` newline, `^'` double quote, `^^` caret.
fn decode_param(raw: &str) -> String {
    if !raw.contains('^') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '^' {
            match chars.peek() {
                Some('n') => {
                    out.push('\n');
                    chars.next();
                }
                Some('\'') => {
                    out.push('"');
                    chars.next();
                }
                Some('^') => {
                    out.push('^');
                    chars.next();
                }
                _ => out.push('^'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes TEXT escaping (RFC 5545 §3.3.11). Unknown escapes are kept as
/// written, and `\:` (which some producers emit) is read as `:`.
pub(crate) fn unescape_text(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(e @ ('\\' | ',' | ';' | ':')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Appends `line` folded at 75 octets (never inside a UTF-8 sequence) and CRLF.
pub(crate) fn fold_into(line: &str, out: &mut String) {
    let mut rest = line;
    let mut limit = FOLD_OCTETS;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        // The continuation's leading space counts towards its 75 octets.
        limit = FOLD_OCTETS - 1;
    }
}

/// Re-writes any component text as CRLF lines folded at 75 octets: unfolds
/// first, so text folded differently (or not at all) comes out the same.
pub(crate) fn normalize_folding(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + raw.len() / 64 * 3);
    let mut current = String::new();
    for physical in raw.split('\n') {
        let physical = physical.trim_end_matches('\r');
        if let Some(rest) = physical
            .strip_prefix(' ')
            .or_else(|| physical.strip_prefix('\t'))
        {
            current.push_str(rest);
            continue;
        }
        if !current.is_empty() {
            fold_into(&current, &mut out);
        }
        current.clear();
        current.push_str(physical);
    }
    if !current.is_empty() {
        fold_into(&current, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<ContentLine> {
        match content_lines(text.as_bytes()) {
            Ok((lines, _)) => lines,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn error(bytes: &[u8]) -> String {
        match content_lines(bytes) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn folded_lines_are_joined_and_remember_their_first_physical_line() {
        let text = "BEGIN:VEVENT\r\nSUMMARY:Long meet\r\n ing with\r\n\t Bob\r\nEND:VEVENT\r\n";
        let lines = lines(text);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].name, "SUMMARY");
        assert_eq!(lines[1].value, "Long meeting with Bob");
        assert_eq!(lines[1].line, 2);
        assert_eq!(lines[2].line, 5);
    }

    #[test]
    fn bare_lf_files_and_lf_folding_are_accepted() {
        let lines = lines("A:1\nB:2\n  x\nC:3");
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.line, l.value.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "1"), (2, "2 x"), (4, "3")]
        );
    }

    #[test]
    fn a_utf8_bom_is_skipped() {
        let lines = lines("\u{FEFF}BEGIN:VCALENDAR\r\n");
        assert_eq!(lines[0].name, "BEGIN");
    }

    #[test]
    fn an_error_in_a_folded_line_names_its_first_physical_line() {
        let e = error(b"A:1\r\nDTSTART;TZID=\"Europe/\r\n Berlin:20260101T000000\r\n");
        assert!(e.starts_with("line 2: "), "{e}");
    }

    #[test]
    fn quoted_parameter_values_may_hold_colons_semicolons_and_commas() {
        let lines = lines(
            "ATTENDEE;CN=\"Doe, John; Jr.\";DELEGATED-TO=\"mailto:a@x\",\"mailto:b@x\":mailto:j@x",
        );
        let l = &lines[0];
        assert_eq!(l.param("cn"), Some("Doe, John; Jr."));
        assert_eq!(l.params[1].values, vec!["mailto:a@x", "mailto:b@x"]);
        assert_eq!(l.value, "mailto:j@x");
    }

    #[test]
    fn names_are_case_insensitive_and_rfc6868_escapes_are_decoded() {
        let lines = lines("summary;x-note=a^'b^^c^n:v");
        assert_eq!(lines[0].name, "SUMMARY");
        assert_eq!(lines[0].param("X-NOTE"), Some("a\"b^c\n"));
    }

    #[test]
    fn text_unescaping_handles_every_rfc5545_escape() {
        assert_eq!(
            unescape_text(r"a\nb\Nc\,d\;e\\f\:g\x"),
            "a\nb\nc,d;e\\f:g\\x"
        );
        assert_eq!(unescape_text(r"\\n"), "\\n");
    }

    #[test]
    fn a_line_without_colon_is_rejected_with_its_line() {
        let e = error(b"BEGIN:VCALENDAR\r\nTHIS IS NOT A PROPERTY\r\n");
        assert!(
            e.starts_with("line 2: no ':' in 'THIS IS NOT A PROPERTY'"),
            "{e}"
        );
    }

    #[test]
    fn a_one_megabyte_line_is_rejected_without_echoing_it() {
        let mut data = b"BEGIN:VCALENDAR\r\n".to_vec();
        let mut big = b"X-BIG:".to_vec();
        big.resize(1_048_576, b'a');
        data.extend_from_slice(&big);
        data.extend_from_slice(b"\r\n");
        let e = error(&data);
        assert!(
            e.starts_with("line 2: line is 1048576 bytes long, over the 262144 limit"),
            "{e}"
        );
        assert!(e.len() < 300);
    }

    #[test]
    fn invalid_utf8_is_rejected_with_its_line() {
        let e = error(b"BEGIN:VCALENDAR\r\nSUMMARY:caf\xE9\r\n");
        assert!(e.starts_with("line 2: not valid UTF-8"), "{e}");
    }

    #[test]
    fn binary_garbage_is_rejected_with_its_line() {
        let e = error(b"BEGIN:VCALENDAR\r\nX:\x00\x01\x02\r\n");
        assert!(
            e.starts_with("line 2: contains the control character U+0000"),
            "{e}"
        );
    }

    #[test]
    fn a_vertical_tab_pasted_from_a_word_processor_is_kept() {
        assert_eq!(lines("DESCRIPTION:a\u{0B}b")[0].value, "a\u{0B}b");
    }

    #[test]
    fn folding_keeps_lines_within_75_octets_and_never_splits_a_character() {
        let line = format!("SUMMARY:{}", "é".repeat(100));
        let mut out = String::new();
        fold_into(&line, &mut out);
        for physical in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(physical.len() <= 75, "{physical:?}");
        }
        assert_eq!(normalize_folding(&out), out);
        assert_eq!(lines(&out)[0].text, line);
    }

    #[test]
    fn quoting_cuts_long_input() {
        let q = quote(&"x".repeat(1000));
        assert_eq!(q.chars().count(), 63);
    }
}
