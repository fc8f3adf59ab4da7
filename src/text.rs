//! Character-safe text cutting shared by template helpers and platform limits, and reading the
//! strings out of a JSON body.
//!
//! Platform limits count characters (Unicode scalar values), never bytes, so every cut here lands
//! on a character boundary and can never split a UTF-8 sequence.

use serde_json::Value;

/// The mark appended to cut text.
pub const ELLIPSIS: char = '…';

/// Number of characters in `s`.
pub fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to at most `max` characters, ending in `…` when cut. A cut never leaves half of an
/// HTML entity (`&amp;`, as Slack escaping writes) behind.
pub fn truncate(s: &str, max: usize) -> String {
    if chars(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = s.chars().take(max - 1).collect();
    let keep = match keep.rfind('&') {
        Some(amp) if !keep[amp..].contains(';') && keep.len() - amp <= 8 => keep[..amp].to_owned(),
        _ => keep,
    };
    let mut out = keep.trim_end().to_owned();
    out.push(ELLIPSIS);
    out
}

/// Splits `s` into pieces whose cost (the sum of `cost(c)` per character) is at most `max`,
/// preferring to break after a newline, then after a space, in the last fifth of a piece.
/// Concatenating the pieces gives back `s` exactly.
pub fn chunks(s: &str, max: usize, cost: impl Fn(char) -> usize) -> Vec<String> {
    let max = max.max(8);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = cost(c);
        if used + w > max && !current.is_empty() {
            let (head, tail) = split_at_break(&current);
            out.push(head);
            used = tail.chars().map(&cost).sum();
            current = tail;
        }
        current.push(c);
        used += w;
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// Splits a full piece at its last newline or space in its last fifth, if any.
fn split_at_break(piece: &str) -> (String, String) {
    let n = chars(piece);
    let floor = n - n / 5;
    let positions: Vec<(usize, char)> = piece.char_indices().collect();
    for wanted in ['\n', ' '] {
        if let Some(i) = positions.iter().rposition(|&(_, c)| c == wanted) {
            if i >= floor && i + 1 < n {
                let byte = positions[i + 1].0;
                return (piece[..byte].to_owned(), piece[byte..].to_owned());
            }
        }
    }
    (piece.to_owned(), String::new())
}

/// Every string inside a JSON value, depth first.
pub fn strings(v: &Value) -> Vec<&str> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// Shortens the longest string inside `v` (only strings under a key named `key`, when given), a
/// tenth at a time and ending in `…` (by at most half, then the next longest, and so on), until `v`
/// serialises to at most `max` bytes of JSON: for
/// limits counted in bytes of the escaped payload, where characters and bytes differ. Whether it
/// cut anything.
pub fn cut_longest_string(v: &mut Value, max: usize, key: Option<&str>) -> bool {
    fn longest(v: &Value, at: String, key: Option<&str>, under_key: bool, best: &mut Option<(String, usize)>) {
        match v {
            Value::String(s) if under_key && best.as_ref().is_none_or(|(_, n)| *n < s.len()) => {
                *best = Some((at, s.len()))
            }
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                longest(c, here, key, key.is_none_or(|want| want == k), best)
            }),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, c)| longest(c, format!("{at}/{i}"), key, key.is_none(), best))
            }
            _ => {}
        }
    }
    let mut cut = false;
    // The longest string is cut by at most half, then the longest is looked for again: several
    // long strings share the cuts.
    while v.to_string().len() > max {
        let mut best = None;
        longest(v, String::new(), key, key.is_none(), &mut best);
        let Some((pointer, _)) = best else { return cut };
        let Some(Value::String(original)) = v.pointer(&pointer).cloned() else { return cut };
        let mut keep = chars(&original);
        if keep <= 1 {
            return cut;
        }
        let floor = (keep / 2).max(1);
        while v.to_string().len() > max && keep > floor {
            keep = (keep * 9 / 10).max(floor);
            if let Some(Value::String(t)) = v.pointer_mut(&pointer) {
                *t = truncate(&original, keep);
            }
        }
        cut = true;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_string_under_a_key_is_cut_until_the_json_fits() {
        let mut v =
            serde_json::json!({"title": "t".repeat(900), "body": [{"text": "\"".repeat(600)}, {"text": "short"}]});
        assert!(cut_longest_string(&mut v, 1000, Some("text")));
        assert!(v.to_string().len() <= 1000, "{}", v.to_string().len());
        assert_eq!(v["title"].as_str().unwrap().len(), 900, "only `text` strings are cut");
        assert_eq!(v["body"][1]["text"], "short");
        assert!(v["body"][0]["text"].as_str().unwrap().ends_with(ELLIPSIS));
        assert!(!cut_longest_string(&mut v, 5000, None), "what fits is left alone");
    }

    #[test]
    fn truncate_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
        let emoji = "😀".repeat(10);
        let cut = truncate(&emoji, 4);
        assert_eq!(cut, "😀😀😀…");
        assert_eq!(chars(&cut), 4);
        assert_eq!(truncate("a &amp; b", 6), "a…");
    }

    #[test]
    fn chunks_reassemble_exactly_and_respect_the_cost() {
        let text = "word ".repeat(300) + &"é".repeat(50) + "\nend";
        let pieces = chunks(&text, 100, |_| 1);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| chars(p) <= 100));
        assert!(pieces[0].ends_with(' '), "breaks at a space: {:?}", pieces[0]);
        let amps = "&".repeat(100);
        let pieces = chunks(&amps, 50, |c| if c == '&' { 5 } else { 1 });
        assert!(pieces.iter().all(|p| chars(p) * 5 <= 50));
        assert_eq!(pieces.concat(), amps);
        assert_eq!(chunks("", 10, |_| 1), vec![String::new()]);
    }
}
