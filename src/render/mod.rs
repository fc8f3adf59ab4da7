//! Rendering: an event through a channel's Handlebars template into the exact bodies to post.
//!
//! Templates are `.json.hbs` files in strict mode. `{{value}}` is escaped for a JSON string (and,
//! for Slack, by Slack's `&`, `<`, `>` rules first), so no user text can break the payload or form a
//! mention. After rendering, the output must be JSON; Discord bodies get the channel's username;
//! then the platform's module makes the body safe whatever the template wrote (Slack `verbatim`,
//! Discord `allowed_mentions`, no blank text) and enforces its limits, splitting into several
//! posts if needed. A body the platform module refuses is a [`RenderError`] pointing at the
//! template line that wrote the offending key.

mod builtin;
mod helpers;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde_json::Value;

pub use helpers::HELPERS;

use crate::config::{Problem, TemplateOverrides};
use crate::event::EventType;
use crate::platforms::{self, rules, Channel, Fitted, Platform, TextRules, ThreadStyle};

/// Compiled templates for every channel and event type.
#[derive(Clone)]
pub struct Renderer {
    /// One registry per platform (its escaping and helpers), by platform.
    registries: BTreeMap<Platform, Handlebars<'static>>,
    /// The template each channel uses for each kind (an event type's name, or one of
    /// [`EXTRA_KINDS`]).
    chosen: BTreeMap<String, BTreeMap<&'static str, String>>,
    /// Each registered template's text, so a refused body can point at the line that wrote it.
    sources: BTreeMap<String, String>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("templates", &self.chosen).finish()
    }
}

/// The bodies to post for one event on one channel, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// JSON bodies, each within the platform's limits.
    pub posts: Vec<String>,
    /// What limit enforcement cut or split (worth a warning).
    pub notes: Vec<String>,
}

/// A template that failed for one event. Never silently dropped: logged with all of this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`{}: {message} (channel `{channel}`, call `{call_id}`)", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct RenderError {
    /// The template's path relative to the templates directory (or `built-in:…`).
    pub template: String,
    /// The template line at fault, when Handlebars knows it.
    pub line: Option<usize>,
    /// The channel being rendered for.
    pub channel: String,
    /// The event's call id.
    pub call_id: String,
    /// What went wrong.
    pub message: String,
}

/// Escapes `s` for a JSON string, after the platform's own escaping.
pub fn escape_for(text: TextRules, s: &str) -> String {
    let s = (text.escape)(s);
    let quoted = serde_json::to_string(&s).expect("a string always serialises");
    quoted[1..quoted.len() - 1].to_owned()
}

impl Renderer {
    /// Loads and compiles the template for every channel and event type. A template file missing
    /// from `dir` falls back to the built-in copy when it is a shipped default; an override must
    /// exist.
    pub fn load(
        dir: &Path,
        channels: &BTreeMap<String, (Platform, TemplateOverrides)>,
    ) -> Result<Renderer, Vec<Problem>> {
        let mut registries = BTreeMap::new();
        let mut chosen = BTreeMap::new();
        let mut problems = Vec::new();
        let mut sources = BTreeMap::new();
        let mut registered: HashSet<(Platform, String)> = HashSet::new();
        for (channel, (platform, overrides)) in channels {
            let extra = rules(*platform).extra_kinds().iter().copied();
            for kind in EventType::ALL.iter().map(|t| t.as_str()).chain(extra) {
                let (relative, is_override) = match overrides.get(kind) {
                    Some(path) => (path.to_owned(), true),
                    None => (default_template(*platform, kind), false),
                };
                // For a while the Slack thread parent's file was `thread_parent.json.hbs`: a
                // customised one is still used for `call_started`, with a warning.
                let (relative, is_override) = match renamed(dir, *platform, kind, &relative, is_override) {
                    Some(old) => (old, true),
                    None => (relative, is_override),
                };
                let path: PathBuf = dir.join(&relative);
                let (name, source) = if path.is_file() {
                    match std::fs::read_to_string(&path) {
                        Ok(text) => (relative.clone(), text),
                        Err(e) => {
                            problems.push(problem(
                                &path.display().to_string(),
                                None,
                                channel,
                                format!("cannot be read: {e}"),
                            ));
                            continue;
                        }
                    }
                } else if let (false, Some(text)) = (is_override, builtin::get(&relative)) {
                    (format!("built-in:{relative}"), text.to_owned())
                } else {
                    problems.push(problem(
                        &path.display().to_string(),
                        None,
                        channel,
                        "template file not found".into(),
                    ));
                    continue;
                };
                let hb = registries.entry(*platform).or_insert_with(|| registry(*platform));
                if registered.insert((*platform, name.clone())) {
                    sources.insert(name.clone(), source.clone());
                    if let Err(e) = hb.register_template_string(&name, source) {
                        let shown =
                            if name.starts_with("built-in:") { name.clone() } else { path.display().to_string() };
                        problems.push(problem(&shown, e.pos().map(|(l, _)| l), channel, e.reason().to_string()));
                        continue;
                    }
                }
                chosen.entry(channel.clone()).or_insert_with(BTreeMap::new).insert(kind, name);
            }
        }
        if problems.is_empty() {
            Ok(Renderer { registries, chosen, sources })
        } else {
            Err(problems)
        }
    }

    /// The template a channel uses for a kind (an event type's name,
    /// `thread_name`, `transcript`).
    pub fn template_for(&self, channel: &str, kind: &str) -> Option<&str> {
        self.chosen.get(channel)?.get(kind).map(String::as_str)
    }

    /// Renders `context` (a serialised [`crate::event::Event`]) for `channel` with the template
    /// of `event_type`.
    pub fn render(&self, channel: &Channel, event_type: EventType, context: &Value) -> Result<Rendered, RenderError> {
        self.render_kind(channel, event_type.as_str(), context)
    }

    /// A call thread's name on a platform that names threads: its `thread_name` template renders
    /// a JSON string, cut to the platform's longest name.
    pub fn thread_name(&self, channel: &Channel, context: &Value) -> Result<String, RenderError> {
        let (value, at) = self.render_value(channel, "thread_name", context)?;
        let name = value.as_str().ok_or_else(|| at.fail(None, "the output must be a JSON string".into()))?;
        let max = match rules(channel.platform).threads() {
            ThreadStyle::Named { max_name_chars } => max_name_chars,
            ThreadStyle::Parent | ThreadStyle::Keyed | ThreadStyle::Unthreaded => usize::MAX,
        };
        let name = crate::text::truncate(name.trim(), max);
        Ok(if name.is_empty() { platforms::NO_TEXT.to_owned() } else { name })
    }

    /// Renders `context` with a channel's template of `kind`, then makes it safe and fits it.
    pub fn render_kind(&self, channel: &Channel, kind: &str, context: &Value) -> Result<Rendered, RenderError> {
        let (body, at) = self.render_value(channel, kind, context)?;
        let fitted: Fitted = rules(channel.platform).fit(channel, body).map_err(|refused| {
            let line = refused.key.and_then(|key| self.line_writing(&at.template, key));
            at.fail(line, refused.message)
        })?;
        let posts = fitted.posts.iter().map(|p| serde_json::to_string(p).expect("JSON values serialise")).collect();
        Ok(Rendered { posts, notes: fitted.notes })
    }

    /// The template's output parsed as JSON, and where it came from (for errors).
    fn render_value(&self, channel: &Channel, kind: &str, context: &Value) -> Result<(Value, At), RenderError> {
        let at = At {
            template: self.template_for(&channel.name, kind).unwrap_or("?").to_owned(),
            channel: channel.name.clone(),
            call_id: context.get("call_id").and_then(Value::as_str).unwrap_or("").to_owned(),
        };
        let hb = &self.registries[&channel.platform];
        let output = hb.render(&at.template, context).map_err(|e| at.fail(e.line_no, e.reason().to_string()))?;
        let value = serde_json::from_str(&output).map_err(|e| {
            at.fail(
                None,
                format!(
                    "the output is not valid JSON: {e} (output line {}; run `callrelay render` to see it)",
                    e.line()
                ),
            )
        })?;
        Ok((value, at))
    }
}

/// Which template, channel and call a rendering is for, to name them in errors.
struct At {
    template: String,
    channel: String,
    call_id: String,
}

impl At {
    fn fail(&self, line: Option<usize>, message: String) -> RenderError {
        RenderError {
            template: self.template.clone(),
            line,
            channel: self.channel.clone(),
            call_id: self.call_id.clone(),
            message,
        }
    }
}

impl Renderer {
    /// This renderer with `channel`'s template of `kind` replaced by `source` (the console's
    /// playground: what the edited template would post, through the same path as real posts).
    /// A template that does not compile is an error with its line.
    pub fn with_template(&self, channel: &Channel, kind: &str, source: &str) -> Result<Renderer, RenderError> {
        let at = At {
            template: format!("playground:{}", default_template(channel.platform, kind)),
            channel: channel.name.clone(),
            call_id: String::new(),
        };
        let known =
            EventType::ALL.iter().map(|t| t.as_str()).chain(rules(channel.platform).extra_kinds().iter().copied());
        let kind: &'static str = known
            .into_iter()
            .find(|k| *k == kind)
            .ok_or_else(|| at.fail(None, format!("no template kind `{kind}`")))?;
        let mut copy = self.clone();
        let hb = copy.registries.entry(channel.platform).or_insert_with(|| registry(channel.platform));
        hb.register_template_string(&at.template, source)
            .map_err(|e| at.fail(e.pos().map(|(line, _)| line), e.reason().to_string()))?;
        copy.sources.insert(at.template.clone(), source.to_owned());
        copy.chosen.entry(channel.name.clone()).or_default().insert(kind, at.template.clone());
        Ok(copy)
    }

    /// The text of the template a channel uses for a kind.
    pub fn source_for(&self, channel: &str, kind: &str) -> Option<&str> {
        self.sources.get(self.template_for(channel, kind)?).map(String::as_str)
    }

    /// The first line of `template` that writes `"key"`, if any.
    fn line_writing(&self, template: &str, key: &str) -> Option<usize> {
        let quoted = format!("\"{key}\"");
        self.sources.get(template)?.lines().position(|l| l.contains(&quoted)).map(|i| i + 1)
    }
}

fn registry(platform: Platform) -> Handlebars<'static> {
    let text = rules(platform).text();
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(helpers::escape(text));
    helpers::register(&mut hb, text);
    hb
}

/// The file name a kind had before it was renamed, when only the old file is in `dir` (a
/// customised template from before the rename): logged as deprecated, and used.
fn renamed(dir: &Path, platform: Platform, kind: &str, relative: &str, is_override: bool) -> Option<String> {
    let old = match kind {
        "call_started" => default_template(platform, "thread_parent"),
        _ => return None,
    };
    if is_override || dir.join(relative).is_file() || !dir.join(&old).is_file() {
        return None;
    }
    tracing::warn!(
        old = %old,
        new = %relative,
        "The thread parent is the `call_started` event's template now; rename the file (the old name is read for now)."
    );
    Some(old)
}

/// `slack/message.json.hbs` and the like.
pub fn default_template(platform: Platform, kind: &str) -> String {
    format!("{}/{kind}.json.hbs", platform.as_str())
}

fn problem(file: &str, line: Option<usize>, channel: &str, message: String) -> Problem {
    Problem { file: file.to_owned(), line, subject: format!("template for channel `{channel}`"), message }
}

#[cfg(test)]
mod tests;
