//! The shipped templates, built into the binary (each platform lists its own) as fallbacks for a
//! missing templates directory.

/// The built-in text of a shipped template.
pub fn get(relative: &str) -> Option<&'static str> {
    crate::platforms::all().flat_map(|p| p.builtin_templates()).find(|(p, _)| *p == relative).map(|(_, t)| *t)
}
