//! The shipped templates, built into the binary as fallbacks for a missing templates directory.

/// Path (relative to `templates/`) and text of each shipped template.
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    ("slack/message.json.hbs", include_str!("../../templates/slack/message.json.hbs")),
    ("slack/call_ended.json.hbs", include_str!("../../templates/slack/call_ended.json.hbs")),
    ("slack/test.json.hbs", include_str!("../../templates/slack/test.json.hbs")),
    ("slack/call_started.json.hbs", include_str!("../../templates/slack/call_started.json.hbs")),
    ("slack/transcript.json.hbs", include_str!("../../templates/slack/transcript.json.hbs")),
    ("discord/message.json.hbs", include_str!("../../templates/discord/message.json.hbs")),
    ("discord/call_ended.json.hbs", include_str!("../../templates/discord/call_ended.json.hbs")),
    ("discord/test.json.hbs", include_str!("../../templates/discord/test.json.hbs")),
    ("discord/thread_name.json.hbs", include_str!("../../templates/discord/thread_name.json.hbs")),
    ("discord/transcript.json.hbs", include_str!("../../templates/discord/transcript.json.hbs")),
];

/// The built-in text of a shipped template.
pub fn get(relative: &str) -> Option<&'static str> {
    BUILTIN_TEMPLATES.iter().find(|(p, _)| *p == relative).map(|(_, t)| *t)
}
