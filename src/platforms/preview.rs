//! What the platforms' look-alike previews share: reading a body's strings, and inline markup
//! drawn through maud, which escapes every piece of text, so a body can never inject markup into
//! the console.

use maud::{html, Markup, PreEscaped};
use regex::Regex;
use serde_json::Value;

/// A string field of `v`, or `""`.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Text with inline markup: the pieces between `re`'s matches as plain text (`plain`), each match
/// as `token` draws it.
pub(crate) fn inline(
    re: &Regex,
    s: &str,
    token: impl Fn(&regex::Captures) -> Markup,
    plain: impl Fn(&str) -> String,
) -> Markup {
    let mut out = String::new();
    let mut last = 0;
    for c in re.captures_iter(s) {
        let m = c.get(0).expect("a match");
        out.push_str(&html! { (plain(&s[last..m.start()])) }.into_string());
        out.push_str(&if m.as_str() == "\n" { "<br>".to_owned() } else { token(&c).into_string() });
        last = m.end();
    }
    out.push_str(&html! { (plain(&s[last..])) }.into_string());
    PreEscaped(out)
}

/// Bold, italic, code, strike: whichever of the groups `[b, i, code, strike]` matched.
pub(crate) fn styled(c: &regex::Captures, groups: &[usize; 4], plain: impl Fn(&str) -> String) -> Markup {
    let [b, i, code, strike] = groups.map(|g| c.get(g).map(|m| plain(m.as_str())));
    html! {
        @if let Some(t) = b { strong { (t) } }
        @else if let Some(t) = i { em { (t) } }
        @else if let Some(t) = code { code { (t) } }
        @else if let Some(t) = strike { del { (t) } }
    }
}

/// Markdown as Discord and Teams draw it: `[label](url)` links, `**bold**`, `*italic*` or
/// `_italic_`, `` `code` ``, `~~strike~~`, line breaks.
pub(crate) fn markdown(s: &str) -> Markup {
    static TOKENS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = TOKENS.get_or_init(|| {
        Regex::new(
            r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*|`([^`\n]+)`|~~([^~\n]+)~~|_([^_\n]+)_|\n",
        )
        .expect("valid")
    });
    inline(
        re,
        s,
        |c| {
            if let (Some(label), Some(url)) = (c.get(1), c.get(2)) {
                return html! { a href=(url.as_str()) rel="noopener noreferrer" { (label.as_str()) } };
            }
            if let Some(italic) = c.get(7) {
                return html! { em { (italic.as_str()) } };
            }
            styled(c, &[3, 4, 5, 6], str::to_owned)
        },
        str::to_owned,
    )
}
