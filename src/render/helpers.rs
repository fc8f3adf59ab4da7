//! Template helpers. Each is a pure function of its arguments; the platform decides markup and how
//! text length is measured (Slack escaping lengthens `&`, `<`, `>`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::{json, Value};

use super::escape_for;
use crate::platforms::TextRules;
use crate::text;

type Args<'a> = [&'a Value];
type Hash<'a> = BTreeMap<&'a str, &'a Value>;
type HelperFn = fn(&Args, &Hash, TextRules) -> Result<Value, String>;

/// Every helper, by name, with a one-line description for the README and `check`.
pub const HELPERS: &[(&str, HelperFn, &str)] = &[
    ("truncate", truncate, "truncate TEXT N — TEXT cut to N characters, ending in …"),
    ("default", default, "default VALUE FALLBACK — VALUE unless null or empty"),
    ("duration", duration, "duration MINUTES — 5.5 → \"5m 30s\", 75 → \"1h 15m\""),
    ("time", time, "time TIMESTAMP [FORMAT] — \"10:30:05 UTC\"; FORMAT is strftime"),
    ("datetime", datetime, "datetime TIMESTAMP — \"2024-01-15 10:30 UTC\""),
    ("sentiment_emoji", sentiment_emoji, "sentiment_emoji SENTIMENT — 😊 😐 😟 🤔 or ❔"),
    ("sentiment_color", sentiment_color, "sentiment_color SENTIMENT — a Discord colour number"),
    ("sender_label", sender_label, "sender_label SENDER [NAME] — \"Agent\", or NAME/\"Caller\" for the user"),
    ("sender_emoji", sender_emoji, "sender_emoji SENDER — 🤖 for the agent, 👤 for the user"),
    ("short_id", short_id, "short_id ID — the first 8 characters"),
    ("transcript", transcript, "transcript MESSAGES [user=NAME] — the whole transcript as text"),
    (
        "transcript_chunks",
        transcript_chunks,
        "transcript_chunks MESSAGES N [user=NAME] — the transcript in pieces of at most N characters",
    ),
    ("chunks", chunks, "chunks TEXT N — TEXT in pieces of at most N characters"),
];

/// Registers every helper (plus `json`) for a platform's text rules. Handlebars' own `eq ne gt gte lt lte and
/// or not len` comparisons are built in.
pub fn register(hb: &mut Handlebars<'static>, rules: TextRules) {
    for &(name, f, _) in HELPERS {
        hb.register_helper(name, Box::new(ValueHelper { name, f, rules }));
    }
    hb.register_helper("json", Box::new(JsonHelper { rules }));
}

struct ValueHelper {
    name: &'static str,
    f: HelperFn,
    rules: TextRules,
}

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args: Vec<&Value> = h.params().iter().map(|p| p.value()).collect();
        let hash: Hash = h.hash().iter().map(|(k, v)| (*k, v.value())).collect();
        (self.f)(&args, &hash, self.rules)
            .map(ScopedJson::Derived)
            .map_err(|m| RenderErrorReason::Other(format!("helper `{}`: {m}", self.name)).into())
    }
}

/// `{{json VALUE}}` writes VALUE as a JSON literal (quotes included), unescaped by Handlebars but
/// with the platform's escaping applied to every string inside.
struct JsonHelper {
    rules: TextRules,
}

impl HelperDef for JsonHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
        let value = escape_strings(value, self.rules);
        out.write(&serde_json::to_string(&value).unwrap_or_else(|_| "null".into()))?;
        Ok(())
    }
}

fn escape_strings(v: Value, rules: TextRules) -> Value {
    match v {
        Value::String(s) => Value::String((rules.escape)(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| escape_strings(i, rules)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, escape_strings(v, rules))).collect()),
        other => other,
    }
}

fn arg<'a>(args: &Args<'a>, i: usize) -> &'a Value {
    args.get(i).copied().unwrap_or(&Value::Null)
}

fn as_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn count(args: &Args, i: usize) -> Result<usize, String> {
    let v = arg(args, i);
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .map(|n| n as usize)
        .ok_or_else(|| format!("argument {} must be a whole number, not {v}", i + 1))
}

fn truncate(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    Ok(json!(text::truncate(&as_text(arg(args, 0)), count(args, 1)?)))
}

fn default(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    let v = arg(args, 0);
    let empty = match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    };
    Ok(if empty { arg(args, 1).clone() } else { v.clone() })
}

fn duration(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    let minutes = match arg(args, 0) {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let Some(minutes) = minutes.filter(|m| m.is_finite() && *m >= 0.0) else {
        return Ok(json!("–"));
    };
    let secs = (minutes * 60.0).round() as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    Ok(json!(match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) if s == 0 => format!("{m}m"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }))
}

fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(crate::event::parse_time)
}

fn time(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    let format = arg(args, 1).as_str().unwrap_or("%H:%M:%S UTC");
    format_time(arg(args, 0), format)
}

fn datetime(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    format_time(arg(args, 0), "%Y-%m-%d %H:%M UTC")
}

fn format_time(v: &Value, format: &str) -> Result<Value, String> {
    use std::fmt::Write;
    let Some(t) = timestamp(v) else {
        return Ok(json!(""));
    };
    let mut out = String::new();
    write!(out, "{}", t.format(format)).map_err(|_| format!("invalid time format `{format}`"))?;
    Ok(json!(out))
}

fn sentiment(v: &Value) -> String {
    v.as_str().unwrap_or("").trim().to_lowercase()
}

fn sentiment_emoji(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    Ok(json!(match sentiment(arg(args, 0)).as_str() {
        "positive" => "😊",
        "neutral" => "😐",
        "negative" => "😟",
        "mixed" => "🤔",
        _ => "❔",
    }))
}

fn sentiment_color(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    Ok(json!(match sentiment(arg(args, 0)).as_str() {
        "positive" => 0x2ECC71,
        "neutral" => 0x95A5A6,
        "negative" => 0xE74C3C,
        "mixed" => 0xF1C40F,
        _ => 0x5865F2,
    }))
}

fn is_agent(sender: &Value) -> bool {
    sender.as_str() != Some("user")
}

fn sender_label(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    Ok(json!(user_or_agent(arg(args, 0), arg(args, 1))))
}

fn user_or_agent(sender: &Value, name: &Value) -> String {
    if is_agent(sender) {
        "Agent".into()
    } else {
        name.as_str().filter(|n| !n.trim().is_empty()).unwrap_or("Caller").to_owned()
    }
}

fn sender_emoji(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    Ok(json!(if is_agent(arg(args, 0)) { "🤖" } else { "👤" }))
}

fn short_id(args: &Args, _: &Hash, _: TextRules) -> Result<Value, String> {
    Ok(json!(as_text(arg(args, 0)).chars().take(8).collect::<String>()))
}

/// One transcript line per utterance: `🤖 *Agent* · 10:30:05` then the text, in the platform's bold.
fn transcript_lines(messages: &Value, user: &Value, rules: TextRules) -> Vec<String> {
    let bold = rules.bold;
    let items = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|m| {
            let sender = m.get("sender").unwrap_or(&Value::Null);
            let emoji = if is_agent(sender) { "🤖" } else { "👤" };
            let label = user_or_agent(sender, user);
            let at =
                m.get("sent_at").and_then(timestamp).map(|t| t.format(" · %H:%M:%S").to_string()).unwrap_or_default();
            let said = m.get("message").map(as_text).unwrap_or_default();
            format!("{emoji} {bold}{label}{bold}{at}\n{said}\n")
        })
        .collect()
}

fn transcript(args: &Args, hash: &Hash, rules: TextRules) -> Result<Value, String> {
    let user = hash.get("user").copied().unwrap_or(&Value::Null);
    Ok(json!(transcript_lines(arg(args, 0), user, rules).concat().trim_end()))
}

fn transcript_chunks(args: &Args, hash: &Hash, rules: TextRules) -> Result<Value, String> {
    let max = count(args, 1)?;
    let user = hash.get("user").copied().unwrap_or(&Value::Null);
    let cost = rules.escaped_len;
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in transcript_lines(arg(args, 0), user, rules) {
        let fits = |s: &str| s.chars().map(cost).sum::<usize>() <= max;
        if fits(&format!("{current}{line}")) {
            current.push_str(&line);
            continue;
        }
        if !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        if fits(&line) {
            current = line;
        } else {
            pieces.extend(text::chunks(&line, max, cost));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    Ok(json!(pieces.iter().map(|p| p.trim_end().to_owned()).filter(|p| !p.is_empty()).collect::<Vec<_>>()))
}

fn chunks(args: &Args, _: &Hash, rules: TextRules) -> Result<Value, String> {
    let max = count(args, 1)?;
    Ok(json!(text::chunks(&as_text(arg(args, 0)), max, rules.escaped_len)))
}

/// Escapes a value printed with `{{…}}` for a JSON string (and for Slack, by Slack's rules first).
pub fn escape(rules: TextRules) -> impl Fn(&str) -> String + Send + Sync + 'static {
    move |s: &str| escape_for(rules, s)
}
