//! Detection and masking of card numbers and email addresses, in text and in
//! the values of a JSON document (rewritten token by token, so that its
//! formatting and key order are kept).

use weir_sdk::serde_json;
use weir_sdk::{Error, Result};

/// Shortest and longest card numbers (ISO/IEC 7812 PANs).
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;
/// Digits of a card number left visible.
const KEEP_LAST: usize = 4;

/// What to redact and with which character.
#[derive(Debug, Clone)]
pub struct Redactor {
    pub cards: bool,
    pub emails: bool,
    pub mask: char,
}

/// Luhn checksum of a digit sequence (ASCII digits).
pub fn luhn_valid(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_email_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// Marks the digits to mask of card numbers found in `text`.
fn mark_cards(text: &[u8], marks: &mut [bool]) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run of digit groups separated by single spaces or dashes.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < n && text[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j));
            if j + 1 < n && matches!(text[j], b' ' | b'-') && text[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        // The longest Luhn-valid span of whole groups, from each group on.
        let mut g = 0;
        while g < groups.len() {
            let mut matched = None;
            let mut digits = 0;
            let mut end = g;
            while end < groups.len() {
                digits += groups[end].1 - groups[end].0;
                if digits > *CARD_DIGITS.end() {
                    break;
                }
                if CARD_DIGITS.contains(&digits) {
                    let span = groups[g].0..groups[end].1;
                    if luhn_valid(text[span].iter().copied().filter(u8::is_ascii_digit)) {
                        matched = Some((end, digits));
                    }
                }
                end += 1;
            }
            match matched {
                Some((last, digits)) => {
                    let mut to_mask = digits - KEEP_LAST;
                    for p in groups[g].0..groups[last].1 {
                        if to_mask == 0 {
                            break;
                        }
                        if text[p].is_ascii_digit() {
                            marks[p] = true;
                            to_mask -= 1;
                        }
                    }
                    g = last + 1;
                }
                None => g += 1,
            }
        }
        i = j.max(i + 1);
    }
}

/// Marks every byte but `@` of the email addresses found in `text`.
fn mark_emails(text: &[u8], marks: &mut [bool]) {
    for (at, _) in text.iter().enumerate().filter(|(_, b)| **b == b'@') {
        let mut start = at;
        while start > 0 && is_email_local(text[start - 1]) {
            start -= 1;
        }
        while start < at && text[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < text.len() && is_email_domain(text[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(text[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || end == at + 1 {
            continue;
        }
        let domain = &text[at + 1..end];
        let mut labels = domain.split(|b| *b == b'.');
        let label_count = domain.iter().filter(|b| **b == b'.').count() + 1;
        let well_formed = label_count >= 2 && labels.all(|l| !l.is_empty());
        let tld = domain.rsplit(|b| *b == b'.').next().unwrap_or_default();
        if well_formed && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
            for (p, mark) in marks.iter_mut().enumerate().take(end).skip(start) {
                if p != at {
                    *mark = true;
                }
            }
        }
    }
}

impl Redactor {
    /// `text` with its card numbers and emails masked, or `None` if it has none.
    /// Only ASCII bytes are replaced, so valid UTF-8 stays valid UTF-8.
    pub fn redact(&self, text: &[u8]) -> Option<Vec<u8>> {
        let maybe_card = self.cards
            && text.iter().filter(|b| b.is_ascii_digit()).count() >= *CARD_DIGITS.start();
        let maybe_email = self.emails && text.contains(&b'@');
        if !maybe_card && !maybe_email {
            return None;
        }
        let mut marks = vec![false; text.len()];
        if maybe_card {
            mark_cards(text, &mut marks);
        }
        if maybe_email {
            mark_emails(text, &mut marks);
        }
        if !marks.contains(&true) {
            return None;
        }
        let mut mask = [0u8; 4];
        let mask = self.mask.encode_utf8(&mut mask).as_bytes();
        let mut out = Vec::with_capacity(text.len() + text.len() / 2);
        for (b, marked) in text.iter().zip(&marks) {
            if *marked {
                out.extend_from_slice(mask);
            } else {
                out.push(*b);
            }
        }
        Some(out)
    }

    /// A JSON number token that is a card number, as a masked JSON string.
    fn redact_number(&self, token: &[u8]) -> Option<Vec<u8>> {
        if !self.cards
            || !CARD_DIGITS.contains(&token.len())
            || !token.iter().all(u8::is_ascii_digit)
            || !luhn_valid(token.iter().copied())
        {
            return None;
        }
        let masked = self.redact(token)?;
        let mut out = Vec::with_capacity(masked.len() + 2);
        out.push(b'"');
        out.extend_from_slice(&masked);
        out.push(b'"');
        Some(out)
    }

    /// A JSON string token (with its quotes), redacted, or `None`.
    fn redact_string(&self, token: &[u8]) -> Result<Option<Vec<u8>>> {
        let inner = &token[1..token.len() - 1];
        if !inner.contains(&b'\\') {
            return Ok(self.redact(inner).map(|masked| {
                let mut out = Vec::with_capacity(masked.len() + 2);
                out.push(b'"');
                out.extend_from_slice(&masked);
                out.push(b'"');
                out
            }));
        }
        // Escapes: decode, redact the text, encode again.
        let text: String = serde_json::from_slice(token)?;
        let Some(masked) = self.redact(text.as_bytes()) else {
            return Ok(None);
        };
        let masked = String::from_utf8(masked)
            .map_err(|_| Error::msg("internal error: redaction broke UTF-8"))?;
        Ok(Some(serde_json::to_vec(&masked)?))
    }
}

/// One level of the JSON document being scanned.
enum Frame {
    Object {
        key: Option<String>,
        expect_key: bool,
    },
    Array {
        index: usize,
    },
}

/// Whether the value at the path of `stack` is inside one of `fields`.
fn selected(stack: &[Frame], fields: Option<&[Vec<String>]>) -> bool {
    let Some(fields) = fields else {
        return true;
    };
    fields.iter().any(|field| {
        field.len() <= stack.len()
            && field.iter().zip(stack).all(|(segment, frame)| match frame {
                Frame::Object { key, .. } => key.as_deref() == Some(segment.as_str()),
                Frame::Array { index } => segment.parse::<usize>().ok() == Some(*index),
            })
    })
}

/// The end (exclusive) of the JSON string token starting at `start` (a `"`).
fn string_end(src: &[u8], start: usize) -> usize {
    let mut j = start + 1;
    while j < src.len() {
        match src[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    src.len()
}

/// Redacts the string values (and card-number numeric values) of the JSON
/// document `src`, restricted to the subtrees of `fields` if given. Returns
/// `None` when nothing was redacted. `src` must be valid JSON.
pub fn redact_json(
    src: &[u8],
    redactor: &Redactor,
    fields: Option<&[Vec<String>]>,
) -> Result<Option<Vec<u8>>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut replace = |out: &mut Option<Vec<u8>>, range: std::ops::Range<usize>, with: &[u8]| {
        let buffer = out.get_or_insert_with(|| Vec::with_capacity(src.len() + 16));
        buffer.extend_from_slice(&src[copied..range.start]);
        buffer.extend_from_slice(with);
        copied = range.end;
    };

    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < src.len() {
        match src[i] {
            b'{' => {
                stack.push(Frame::Object {
                    key: None,
                    expect_key: true,
                });
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Object { key, expect_key }) => {
                        *key = None;
                        *expect_key = true;
                    }
                    Some(Frame::Array { index }) => *index += 1,
                    None => {}
                }
                i += 1;
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
                i += 1;
            }
            b'"' => {
                let end = string_end(src, i);
                let token = &src[i..end];
                if let Some(Frame::Object {
                    key,
                    expect_key: true,
                }) = stack.last_mut()
                {
                    if fields.is_some() {
                        *key = Some(serde_json::from_slice(token)?);
                    }
                } else if selected(&stack, fields)
                    && let Some(masked) = redactor.redact_string(token)?
                {
                    replace(&mut out, i..end, &masked);
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let mut end = i + 1;
                while end < src.len()
                    && matches!(src[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    end += 1;
                }
                if selected(&stack, fields)
                    && let Some(masked) = redactor.redact_number(&src[i..end])
                {
                    replace(&mut out, i..end, &masked);
                }
                i = end;
            }
            _ => i += 1, // whitespace, true, false, null
        }
    }
    Ok(out.map(|mut buffer| {
        buffer.extend_from_slice(&src[copied..]);
        buffer
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor {
            cards: true,
            emails: true,
            mask: '*',
        }
    }

    fn text(s: &str) -> String {
        String::from_utf8(
            r().redact(s.as_bytes())
                .unwrap_or_else(|| s.as_bytes().to_vec()),
        )
        .unwrap()
    }

    #[test]
    fn luhn() {
        for valid in [
            "4111111111111111",
            "5500000000000004",
            "378282246310005",
            "6011111111111117",
            "4222222222222",
            "79927398713",
        ] {
            assert!(luhn_valid(valid.bytes()), "{valid}");
        }
        for invalid in ["4111111111111112", "1234567890123", "79927398710"] {
            assert!(!luhn_valid(invalid.bytes()), "{invalid}");
        }
    }

    #[test]
    fn cards() {
        assert_eq!(text("4111111111111111"), "************1111");
        assert_eq!(
            text("card:4111-1111-1111-1111."),
            "card:****-****-****-1111."
        );
        assert_eq!(
            text("amex 3782 822463 10005 ok"),
            "amex **** ****** *0005 ok"
        );
        assert_eq!(text("13 digits 4222222222222"), "13 digits *********2222");
        // Luhn-invalid, too short, too long: kept.
        assert_eq!(text("4111111111111112"), "4111111111111112");
        assert_eq!(text("411111111111"), "411111111111");
        assert_eq!(text("41111111111111111111"), "41111111111111111111");
        // Double separators break a number.
        assert_eq!(text("4111  1111 1111 1111"), "4111  1111 1111 1111");
    }

    #[test]
    fn cards_next_to_other_numbers() {
        assert_eq!(
            text("order 12 4111 1111 1111 1111"),
            "order 12 **** **** **** 1111"
        );
        assert_eq!(
            text("4111111111111111 5500000000000004"),
            "************1111 ************0004"
        );
        assert_eq!(
            text("2024-01-01 4111111111111111"),
            "2024-01-01 ************1111"
        );
    }

    #[test]
    fn not_cards() {
        for s in [
            "2024-01-01 12:00:00",
            "123e4567-e89b-12d3-a456-426614174000",
            "+1 555-123-4567",
            "v1.2.3",
        ] {
            assert_eq!(text(s), s);
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            text("mail jane.doe+x@example.co.uk!"),
            "mail **********@*************!"
        );
        assert_eq!(text("<a@b.io>"), "<*@****>");
        assert_eq!(text("end with dot: a@b.io."), "end with dot: *@****.");
        assert_eq!(text(".x@b.io"), ".*@****");
        for s in [
            "@handle",
            "a@b",
            "a@b.c",
            "a@.io",
            "a@b..io",
            "user@",
            "x @ y.com",
            "a@b.1o",
        ] {
            assert_eq!(text(s), s, "{s}");
        }
    }

    #[test]
    fn non_utf8_text() {
        let input = b"\xff a@b.io \xfe";
        assert_eq!(r().redact(input).unwrap(), b"\xff *@**** \xfe");
    }

    #[test]
    fn nothing_to_do_allocates_nothing() {
        assert_eq!(r().redact(b"hello world"), None);
        assert_eq!(
            redact_json(br#"{"a":"b","c":[1,2]}"#, &r(), None).unwrap(),
            None
        );
    }

    #[test]
    fn json_keys_are_not_redacted() {
        let src = br#"{"a@b.io": "a@b.io"}"#;
        let out = redact_json(src, &r(), None).unwrap().unwrap();
        assert_eq!(out, br#"{"a@b.io": "*@****"}"#);
    }

    #[test]
    fn json_numbers() {
        let src =
            br#"[4111111111111111, -4111111111111111, 4111111111111111.0, 41111111111111110000]"#;
        let out = redact_json(src, &r(), None).unwrap().unwrap();
        assert_eq!(
            out,
            br#"["************1111", -4111111111111111, 4111111111111111.0, 41111111111111110000]"#
        );
    }
}
