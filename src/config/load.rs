//! Reading `relay.toml`: TOML syntax, `CALLRELAY__SECTION__KEY` overrides (through the `config`
//! crate), `${VAR}` substitution, deserialisation with every key known, and the checks that need
//! nothing but the file. Compiling channels, routes and templates is [`crate::setup`]'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ConfigError, FileConfig, Problem};

/// The configuration file used when `--config` and `CALLRELAY_CONFIG` are not given.
pub const DEFAULT_CONFIG_PATH: &str = "relay.toml";

/// The shipped `relay.toml`, built into the binary so a fresh checkout or a bare binary runs.
pub const DEFAULT_CONFIG: &str = include_str!("../../relay.toml");

/// Where a configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk.
    File(PathBuf),
    /// The built-in copy of the shipped `relay.toml` (used when no file exists at the default path).
    BuiltIn,
}

impl ConfigSource {
    /// `--config` if given, else `./relay.toml` if it exists, else the built-in default.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        match explicit {
            Some(path) => Self::File(path.to_path_buf()),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => Self::File(PathBuf::from(DEFAULT_CONFIG_PATH)),
            None => Self::BuiltIn,
        }
    }

    /// How the source is named in messages.
    pub fn display_name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::BuiltIn => "<built-in relay.toml>".to_owned(),
        }
    }

    /// The directory relative paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Self::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Self::BuiltIn => PathBuf::new(),
        }
    }
}

/// A configuration file read and checked on its own. Not ready to run: [`crate::setup::load`]
/// compiles it, and refuses it while `problems` is not empty.
#[derive(Debug)]
pub struct Loaded {
    /// Where it came from.
    pub source: ConfigSource,
    /// The file, with `${VAR}` replaced, relative paths resolved against its directory and
    /// `server.shown_path` set.
    pub file: FileConfig,
    /// `templates.dir`, resolved.
    pub templates_dir: PathBuf,
    /// Channels with a key (their webhook URL, their token) that names an unset variable, with
    /// why: they load as disabled so a first run still starts (`check` reports them as errors).
    pub disabled: BTreeMap<String, String>,
    /// What is wrong in the file itself.
    pub problems: Vec<Problem>,
    text: String,
}

impl Loaded {
    /// A problem about the key at dotted `path` (such as `["channels", "live"]`), at its line.
    pub fn problem_at(&self, path: &[&str], subject: &str, message: String) -> Problem {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        problem(&self.source.display_name(), self.lines().find(&path), subject, message)
    }

    /// A problem about the `index`th `[[routes]]` table (0-based), at its line.
    pub fn route_problem(&self, index: usize, subject: &str, message: String) -> Problem {
        problem(&self.source.display_name(), self.lines().find_nth_table("routes", index), subject, message)
    }

    fn lines(&self) -> LineFinder<'_> {
        LineFinder { text: &self.text }
    }
}

/// Reads `source` and checks what needs nothing but the file. An error means no configuration
/// could be read at all (syntax, a wrong key or type); anything else is in [`Loaded::problems`].
pub fn read(source: &ConfigSource) -> Result<Loaded, ConfigError> {
    let file = source.display_name();
    let text = match source {
        ConfigSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| ConfigError::one(problem(&file, None, "file", format!("cannot be read: {e}"))))?,
        ConfigSource::BuiltIn => DEFAULT_CONFIG.to_owned(),
    };
    let lines = LineFinder { text: &text };

    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1));
        return Err(ConfigError::one(problem(&file, line, "syntax", e.message().to_owned())));
    }
    let mut tree = merged_tree(&text).map_err(|m| ConfigError::one(problem(&file, None, "environment", m)))?;

    let written_path = tree.pointer("/server/path").and_then(Value::as_str).map(str::to_owned);
    let mut problems = Vec::new();
    let mut disabled: BTreeMap<String, String> = BTreeMap::new();
    substitute_env(&mut tree, &mut Vec::new(), &mut |path, var| {
        let key = path.join(".");
        match path.as_slice() {
            // Any key of a channel (its webhook URL, its token): the channel loads disabled.
            [c, name, ..] if c == "channels" => {
                let at = lines.find(path).map(|l| format!(", line {l}")).unwrap_or_default();
                disabled.insert(name.clone(), format!("environment variable `{var}` is not set (key `{key}`{at})"));
            }
            _ => problems.push(problem(
                &file,
                lines.find(path),
                &format!("key `{key}`"),
                format!("environment variable `{var}` is not set"),
            )),
        }
    });

    let mut raw: FileConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path: Vec<String> = e.path().iter().map(|s| s.to_string()).collect();
        let key = e.path().to_string();
        ConfigError::one(problem(&file, lines.find(&path), &format!("key `{key}`"), e.inner().to_string()))
    })?;

    for (i, secret) in raw.auth.signing_secrets.iter().enumerate() {
        if let Err(m) = super::decode_signing_secret(secret.expose()) {
            let key = format!("auth.signing_secrets[{i}]");
            problems.push(problem(
                &file,
                lines.find(&["auth".into(), "signing_secrets".into()]),
                &format!("key `{key}`"),
                m,
            ));
        }
    }
    if raw.auth.tokens.iter().any(|t| t.expose().trim().is_empty()) {
        problems.push(problem(
            &file,
            lines.find(&["auth".into(), "tokens".into()]),
            "key `auth.tokens`",
            "a token is empty".into(),
        ));
    }
    let path_ok = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
    if !raw.server.path.chars().all(path_ok) {
        problems.push(problem(
            &file,
            lines.find(&["server".into(), "path".into()]),
            "key `server.path`",
            "may contain only letters, digits, `-`, `.`, `_`, `~` and `/`".into(),
        ));
    }
    if raw.admin.enabled && raw.admin.token.is_none() && !raw.admin.on_loopback() {
        problems.push(problem(
            &file,
            lines.find(&["admin".into(), "listen".into()]),
            "key `admin.listen`",
            format!(
                "`{}` is reachable from other machines: set `admin.token` (a secret) or listen on 127.0.0.1",
                raw.admin.listen
            ),
        ));
    }
    if raw.store.url.is_some() && raw.store.max_bytes.is_some() {
        problems.push(problem(
            &file,
            lines.find(&["store".into(), "max_bytes".into()]),
            "key `store.max_bytes`",
            "applies to the SQLite store only; with `store.url`, PostgreSQL's own limits apply (a full disk \
             answers 503 in the same way): remove one of the two"
                .into(),
        ));
    }
    if raw.store.lease < std::time::Duration::from_secs(3) {
        problems.push(problem(
            &file,
            lines.find(&["store".into(), "lease".into()]),
            "key `store.lease`",
            "must be at least 3s (it is renewed every third of it)".into(),
        ));
    }
    for name in raw.channels.keys().filter(|n| n.starts_with('@')) {
        problems.push(problem(
            &file,
            lines.find(&["channels".into(), name.clone()]),
            &format!("channel `{name}`"),
            "a channel's name may not start with `@` (the relay's own queues do)".into(),
        ));
    }
    let api = &raw.beyond_presence.api_url;
    let api_ok = url::Url::parse(api).is_ok_and(|u| {
        u.scheme() == "https"
            || (u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
    });
    if !api_ok {
        problems.push(problem(
            &file,
            lines.find(&["beyond_presence".into(), "api_url".into()]),
            "key `beyond_presence.api_url`",
            format!("`{api}` is not an https:// URL (plain http only on loopback)"),
        ));
    }
    if !raw.server.path.starts_with('/') {
        problems.push(problem(
            &file,
            lines.find(&["server".into(), "path".into()]),
            "key `server.path`",
            "must start with `/`".into(),
        ));
    }

    let base = source.base_dir();
    raw.server.shown_path = match written_path {
        _ if std::env::var_os("CALLRELAY__SERVER__PATH").is_some() => "/…".to_owned(),
        Some(written) => shown_path(&written),
        None => raw.server.path.clone(),
    };
    if let Some(tls) = &mut raw.server.tls {
        tls.cert = base.join(&tls.cert);
        tls.key = base.join(&tls.key);
    }
    raw.store.path = base.join(&raw.store.path);
    let templates_dir = base.join(&raw.templates.dir);
    Ok(Loaded { source: source.clone(), file: raw, templates_dir, disabled, problems, text })
}

fn problem(file: &str, line: Option<usize>, subject: &str, message: String) -> Problem {
    Problem { file: file.to_owned(), line, subject: subject.to_owned(), message }
}

/// `path` up to its first segment holding a `${VAR}`, then `…`: `/webhook/${SECRET}` shows as
/// `/webhook/…`.
fn shown_path(written: &str) -> String {
    match written.find("${") {
        None => written.to_owned(),
        Some(at) => format!("{}…", &written[..written[..at].rfind('/').map_or(0, |slash| slash + 1)]),
    }
}

fn merged_tree(text: &str) -> Result<Value, String> {
    let settings = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("CALLRELAY").prefix_separator("__").separator("__").try_parsing(true),
        )
        .build()
        .map_err(|e| e.to_string())?;
    settings.try_deserialize::<Value>().map_err(|e| e.to_string())
}

/// Replaces `${VAR}` in every string with the variable's value; calls `missing(path, var)` for each
/// unset variable (the text is then left as it was).
fn substitute_env(value: &mut Value, path: &mut Vec<String>, missing: &mut dyn FnMut(&Vec<String>, &str)) {
    match value {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                let var = &after[..end];
                match std::env::var(var) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => {
                        missing(path, var);
                        out.push_str(&rest[start..start + 3 + end]);
                    }
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                substitute_env(item, path, missing);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                path.push(k.clone());
                substitute_env(v, path, missing);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Finds the line a dotted key path was written on, by reading the TOML text (best effort).
struct LineFinder<'a> {
    text: &'a str,
}

impl LineFinder<'_> {
    /// The line of `[[table]]` number `index` (0-based).
    fn find_nth_table(&self, table: &str, index: usize) -> Option<usize> {
        let header = format!("[[{table}]]");
        self.text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(&header))
            .nth(index)
            .map(|(i, _)| i + 1)
    }

    /// The line `path` was written on: its own `key =` line, else its table's header.
    fn find(&self, path: &[String]) -> Option<usize> {
        if let Some(Ok(index)) = path.get(1).map(|s| s.parse::<usize>()) {
            let header = self.find_nth_table(&path[0], index)?;
            return Some(self.key_after(header, &path[2..]).unwrap_or(header));
        }
        for k in (1..=path.len()).rev() {
            let header = format!("[{}]", path[..k].join("."));
            let found = self.text.lines().position(|l| l.trim_start().starts_with(&header));
            if let Some(n) = found {
                return Some(self.key_after(n + 1, &path[k..]).unwrap_or(n + 1));
            }
        }
        self.key_after(0, path)
    }

    /// The first line after line `after` (1-based) that sets `rest[0]`, before the next table that
    /// does not mention it.
    fn key_after(&self, after: usize, rest: &[String]) -> Option<usize> {
        let first = rest.first()?;
        for (n, line) in self.text.lines().enumerate().skip(after) {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') && !mentions_key(trimmed, first) {
                return None;
            }
            if mentions_key(trimmed, first) {
                return Some(n + 1);
            }
        }
        None
    }
}

fn mentions_key(line: &str, key: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with('#') {
        return false;
    }
    if line.starts_with('[') {
        let inner = line.trim_start_matches('[');
        let inner = inner.split(']').next().unwrap_or("");
        return inner.split('.').any(|part| part.trim().trim_matches('"') == key);
    }
    let Some((lhs, _)) = line.split_once('=') else {
        return false;
    };
    let first = lhs.split('.').next().unwrap_or("").trim().trim_matches('"');
    first == key || lhs.trim().trim_matches('"') == key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_path_stops_before_the_first_segment_from_the_environment() {
        assert_eq!(shown_path("/webhook"), "/webhook");
        assert_eq!(shown_path("/webhook/${SECRET}"), "/webhook/…");
        assert_eq!(shown_path("/hooks/bp/${A}/x/${B}"), "/hooks/bp/…");
        assert_eq!(shown_path("/webhook-${SECRET}"), "/…");
        assert_eq!(shown_path("${WHOLE}"), "…");
    }

    #[test]
    fn env_substitution_replaces_every_occurrence_and_reports_missing() {
        std::env::set_var("CALLRELAY_TEST_A", "alpha");
        let mut v = serde_json::json!({"x": "a=${CALLRELAY_TEST_A}/${CALLRELAY_TEST_UNSET_B}/${CALLRELAY_TEST_A}"});
        let mut missing = Vec::new();
        substitute_env(&mut v, &mut Vec::new(), &mut |p, var| missing.push((p.join("."), var.to_owned())));
        assert_eq!(v["x"], "a=alpha/${CALLRELAY_TEST_UNSET_B}/alpha");
        assert_eq!(missing, vec![("x".to_owned(), "CALLRELAY_TEST_UNSET_B".to_owned())]);
    }

    #[test]
    fn line_finder_locates_nested_keys_and_array_tables() {
        let text = "[server]\nlisten = \"x\"\n\n[channels.live]\nkind = \"slack\"\nwebhook_url = \"u\"\n\n[[routes]]\nchannels = []\n[[routes]]\nname = \"b\"\nchannels = [\"x\"]\n";
        let f = LineFinder { text };
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(f.find(&p("server.listen")), Some(2));
        assert_eq!(f.find(&p("channels.live.webhook_url")), Some(6));
        assert_eq!(f.find(&p("routes.1.channels")), Some(12));
        assert_eq!(f.find_nth_table("routes", 1), Some(10));
    }
}
