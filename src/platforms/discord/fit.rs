//! Discord's message rules: limits, mention safety and blank text, whatever a template wrote;
//! splitting and merging posts within them.
//!
//! Reference: <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>.

use serde_json::{json, Map, Value};

use crate::platforms::{blank, cut, Fitted, Refused, NO_TEXT};
use crate::text;

/// `content`. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_CONTENT_CHARS: usize = 2_000;
/// Embeds in one message. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_EMBEDS: usize = 10;
/// Embed title. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_TITLE_CHARS: usize = 256;
/// Embed description. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_DESCRIPTION_CHARS: usize = 4_096;
/// Fields per embed. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FIELDS: usize = 25;
/// Field name. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FIELD_NAME_CHARS: usize = 256;
/// Field value. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FIELD_VALUE_CHARS: usize = 1_024;
/// Footer text. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FOOTER_CHARS: usize = 2_048;
/// Author name. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_AUTHOR_CHARS: usize = 256;
/// Title, description, field names and values, footer and author name across all embeds of one
/// message. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_EMBED_TOTAL_CHARS: usize = 6_000;
/// A thread's name (`thread_name` when a webhook creates a forum thread).
/// <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_THREAD_NAME_CHARS: usize = 100;
/// Webhook username length. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_USERNAME_CHARS: usize = 80;

/// Discord refuses usernames containing these. <https://discord.com/developers/docs/resources/user#usernames-and-nicknames>
const FORBIDDEN_IN_USERNAME: [&str; 2] = ["discord", "clyde"];

/// Checks a webhook username against Discord's rules.
pub fn check_username(name: &str) -> Result<(), String> {
    let n = text::chars(name.trim());
    if n == 0 || n > MAX_USERNAME_CHARS {
        return Err(format!("must be 1 to {MAX_USERNAME_CHARS} characters, not {n}"));
    }
    let lower = name.to_lowercase();
    if let Some(word) = FORBIDDEN_IN_USERNAME.iter().find(|w| lower.contains(*w)) {
        return Err(format!("may not contain \"{word}\" (Discord refuses it)"));
    }
    Ok(())
}

/// Fills `username`/`avatar_url` from the channel when the template left them out.
pub fn apply_defaults(body: &mut Value, username: Option<&str>, avatar_url: Option<&str>) {
    if let Value::Object(top) = body {
        if let Some(u) = username {
            top.entry("username").or_insert_with(|| json!(u));
        }
        if let Some(a) = avatar_url {
            top.entry("avatar_url").or_insert_with(|| json!(a));
        }
    }
}

/// Makes sure no text in a post can ping anyone Discord would parse on its own: `allowed_mentions`
/// always carries `"parse": []`. A template may still list the user or role IDs it means to ping
/// (`"roles": ["123"]`), but asking Discord to parse `everyone`, `users` or `roles` in any text
/// would let a caller's `@everyone` or `<@&role>` through, so it is refused.
/// <https://discord.com/developers/docs/resources/message#allowed-mentions-object>
fn secure_mentions(top: &mut Map<String, Value>) -> Result<(), Refused> {
    let refuse = |message: String| Refused { message, key: Some("allowed_mentions") };
    let mentions = top.entry("allowed_mentions").or_insert_with(|| json!({"parse": []}));
    let Value::Object(m) = mentions else {
        return Err(refuse("`allowed_mentions` must be an object".into()));
    };
    match m.get("parse") {
        None | Some(Value::Null) => {
            m.insert("parse".into(), json!([]));
        }
        Some(Value::Array(p)) if p.is_empty() => {}
        Some(other) => {
            return Err(refuse(format!(
                "`allowed_mentions.parse` is {other}: Discord would then let a caller's @everyone or mentions in \
                 the text ping people; list the IDs to ping in `users` or `roles` instead"
            )))
        }
    }
    Ok(())
}

/// Makes a rendered body safe and within Discord's limits, whatever the template wrote: mentions
/// as [`secure_mentions`] says; blank `content` dropped (or [`NO_TEXT`] when nothing else is
/// left), blank embed descriptions become [`NO_TEXT`] and blank titles, footers and author names
/// are dropped (Discord refuses empty ones); over-long text is cut with `…`; more than
/// [`MAX_EMBEDS`] embeds, or more than [`MAX_EMBED_TOTAL_CHARS`] across them, are split across
/// several posts in order (`content` goes with the first).
pub fn fit(body: Value) -> Result<Fitted, Refused> {
    let Value::Object(mut top) = body else {
        return Err("a Discord body must be a JSON object".into());
    };
    let mut notes = Vec::new();
    secure_mentions(&mut top)?;
    if let Some(u) = top.get("username").and_then(Value::as_str) {
        check_username(u).map_err(|m| Refused { message: format!("`username` {m}"), key: Some("username") })?;
    }
    if let Some(Value::String(c)) = top.get_mut("content") {
        cut(c, MAX_CONTENT_CHARS, "content", &mut notes);
    }
    let content = match top.remove("content") {
        Some(Value::String(c)) if !blank(&c) => Some(c),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => return Err("`content` must be a string".into()),
    };
    let mut embeds = match top.remove("embeds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(e)) => e,
        Some(_) => return Err("`embeds` must be an array".into()),
    };
    let content = match content {
        None if embeds.is_empty() => Some(NO_TEXT.to_owned()),
        c => c,
    };
    for (i, e) in embeds.iter_mut().enumerate() {
        fit_embed(e, i, &mut notes)?;
    }

    let mut groups: Vec<Vec<Value>> = Vec::new();
    let mut size = 0;
    for e in embeds {
        let n = embed_chars(&e);
        match groups.last_mut() {
            Some(g) if g.len() < MAX_EMBEDS && size + n <= MAX_EMBED_TOTAL_CHARS => {
                g.push(e);
                size += n;
            }
            _ => {
                groups.push(vec![e]);
                size = n;
            }
        }
    }
    if groups.len() > 1 {
        notes.push(format!("embeds split across {} posts", groups.len()));
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    let posts = groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let mut post: Map<String, Value> = top.clone();
            if i == 0 {
                if let Some(c) = &content {
                    post.insert("content".into(), json!(c));
                }
            }
            if !group.is_empty() {
                post.insert("embeds".into(), Value::Array(group));
            }
            Value::Object(post)
        })
        .collect();
    Ok(Fitted { posts, notes })
}

fn fit_embed(e: &mut Value, i: usize, notes: &mut Vec<String>) -> Result<(), Refused> {
    if !e.is_object() {
        return Err(format!("embeds[{i}] must be an object").into());
    }
    for (key, pointer) in [("title", "/title"), ("footer", "/footer/text"), ("author", "/author/name")] {
        if e.pointer(pointer).and_then(Value::as_str).is_some_and(blank) {
            e.as_object_mut().expect("checked above").shift_remove(key);
        }
    }
    let embed = e.as_object_mut().expect("checked above");
    let shows_nothing = !VISIBLE_EMBED_KEYS.iter().any(|k| embed.contains_key(*k));
    match embed.get_mut("description") {
        Some(Value::String(d)) if blank(d) => *d = NO_TEXT.into(),
        None if shows_nothing => {
            embed.insert("description".into(), Value::String(NO_TEXT.into()));
        }
        _ => {}
    }
    let limits = [
        ("/title", MAX_TITLE_CHARS),
        ("/description", MAX_DESCRIPTION_CHARS),
        ("/footer/text", MAX_FOOTER_CHARS),
        ("/author/name", MAX_AUTHOR_CHARS),
    ];
    let mut e_value = Value::Object(std::mem::take(embed));
    for (pointer, max) in limits {
        if let Some(Value::String(t)) = e_value.pointer_mut(pointer) {
            cut(t, max, &format!("embeds[{i}]{pointer}"), notes);
        }
    }
    if let Some(Value::Array(fields)) = e_value.get_mut("fields") {
        if fields.len() > MAX_FIELDS {
            notes.push(format!("embeds[{i}].fields: {} fields cut to {MAX_FIELDS}", fields.len()));
            fields.truncate(MAX_FIELDS);
        }
        for (j, f) in fields.iter_mut().enumerate() {
            for (key, max) in [("name", MAX_FIELD_NAME_CHARS), ("value", MAX_FIELD_VALUE_CHARS)] {
                match f.get_mut(key) {
                    Some(Value::String(t)) if t.trim().is_empty() => *t = "—".into(),
                    Some(Value::String(t)) => cut(t, max, &format!("embeds[{i}].fields[{j}].{key}"), notes),
                    _ => return Err(format!("embeds[{i}].fields[{j}] needs a string `{key}`").into()),
                }
            }
        }
    }
    // One embed alone may still exceed the per-message total: shorten its description, then drop
    // trailing fields.
    let over = embed_chars(&e_value).saturating_sub(MAX_EMBED_TOTAL_CHARS);
    if over > 0 {
        if let Some(Value::String(d)) = e_value.get_mut("description") {
            let keep = text::chars(d).saturating_sub(over);
            *d = text::truncate(d, keep.max(1));
            notes.push(format!("embeds[{i}].description shortened to fit {MAX_EMBED_TOTAL_CHARS} characters"));
        }
        while embed_chars(&e_value) > MAX_EMBED_TOTAL_CHARS {
            match e_value.get_mut("fields").and_then(Value::as_array_mut) {
                Some(fields) if !fields.is_empty() => {
                    fields.pop();
                    notes.push(format!("embeds[{i}]: a field dropped to fit {MAX_EMBED_TOTAL_CHARS} characters"));
                }
                _ => break,
            }
        }
    }
    *e = e_value;
    Ok(())
}

/// An embed with none of these shows nothing; Discord refuses it.
const VISIBLE_EMBED_KEYS: [&str; 7] = ["title", "description", "fields", "footer", "author", "image", "thumbnail"];

/// Characters an embed counts toward [`MAX_EMBED_TOTAL_CHARS`].
pub fn embed_chars(e: &Value) -> usize {
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).map_or(0, text::chars);
    let fields = e.get("fields").and_then(Value::as_array).map_or(0, |fs| {
        fs.iter()
            .map(|f| {
                f.get("name").and_then(Value::as_str).map_or(0, text::chars)
                    + f.get("value").and_then(Value::as_str).map_or(0, text::chars)
            })
            .sum()
    });
    s("/title") + s("/description") + s("/footer/text") + s("/author/name") + fields
}

/// Merges the next coalescible post into `into` when the result stays within Discord's limits
/// (10 embeds, 6,000 characters across them, content 2,000). Both must agree on every other key.
pub fn merge(into: &mut Value, next: &Value) -> bool {
    let (Some(a), Some(b)) = (into.as_object(), next.as_object()) else { return false };
    let others = |m: &Map<String, Value>| {
        m.iter()
            .filter(|(k, _)| *k != "content" && *k != "embeds")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    if others(a) != others(b) {
        return false;
    }
    let embeds = |m: &Map<String, Value>| m.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    let (mut embeds_a, embeds_b) = (embeds(a), embeds(b));
    embeds_a.extend(embeds_b);
    if embeds_a.len() > MAX_EMBEDS || embeds_a.iter().map(embed_chars).sum::<usize>() > MAX_EMBED_TOTAL_CHARS {
        return false;
    }
    let content = match (a.get("content").and_then(Value::as_str), b.get("content").and_then(Value::as_str)) {
        (Some(x), Some(y)) => Some(format!("{x}\n{y}")),
        (x, y) => x.or(y).map(str::to_owned),
    };
    if content.as_deref().is_some_and(|c| text::chars(c) > MAX_CONTENT_CHARS) {
        return false;
    }
    let obj = into.as_object_mut().expect("checked above");
    if let Some(c) = content {
        obj.insert("content".into(), Value::String(c));
    }
    if !embeds_a.is_empty() {
        obj.insert("embeds".into(), Value::Array(embeds_a));
    }
    true
}
