//! Loading `relay.toml` from real files: errors that name file, line and key; `${VAR}`;
//! `CALLRELAY__…` overrides; the shipped file.

use std::path::Path;

use callrelay::config::{self, ConfigSource};

fn load_text(text: &str) -> Result<callrelay::setup::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let text = format!("[templates]\ndir = \"{}\"\n{text}", crate::helpers::templates_dir().display());
    std::fs::write(&file, text).unwrap();
    callrelay::setup::load(&ConfigSource::File(file)).map_err(|e| e.to_string())
}

const CHANNEL: &str = "[channels.live]\nkind = \"slack\"\nwebhook_url = \"https://hooks.slack.test/services/T/B/x\"\n";

#[test]
fn the_shipped_relay_toml_loads_with_its_channels_disabled_until_urls_are_set() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.toml");
    let c = callrelay::setup::load(&ConfigSource::File(shipped)).unwrap();
    let disabled: Vec<(&str, &str)> = c.disabled_channels().collect();
    // CI and developers' shells do not set these; if one is set the channel is simply enabled.
    for (name, var) in [("live", "SLACK_WEBHOOK_URL"), ("summaries", "DISCORD_WEBHOOK_URL")] {
        if std::env::var(var).is_err() {
            let why = disabled.iter().find(|(n, _)| *n == name).unwrap().1;
            assert!(why.contains(var) && why.contains(&format!("channels.{name}.webhook_url")), "{why}");
        }
    }
    assert_eq!(
        callrelay::setup::load(&ConfigSource::BuiltIn).unwrap().channels.len(),
        c.channels.len(),
        "the built-in copy is the shipped file"
    );
}

#[test]
fn unknown_keys_are_errors_naming_file_line_and_key() {
    let e = load_text(&format!("{CHANNEL}[server]\nlisten = \"127.0.0.1:0\"\nmax_body_byte = 5\n")).unwrap_err();
    assert!(e.contains("relay.toml:8: key `server.max_body_byte`"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
    let e = load_text("[channels.live]\nkind = \"slack\"\nwebhook_url = \"https://x.test/h\"\nusername = \"Bot\"\n")
        .unwrap_err();
    assert!(e.contains("channels.live") && e.contains("username"), "{e}");
    let e = load_text("[channels.live]\nkind = \"pager\"\nwebhook_url = \"https://x.test/h\"\n").unwrap_err();
    assert!(
        e.contains("channels.live")
            && e.contains("unknown kind `pager` (known: slack, discord, teams, google_chat, http)"),
        "{e}"
    );
}

#[test]
fn store_settings_that_cannot_work_are_refused_with_their_line() {
    let e = load_text(&format!(
        "{CHANNEL}[store]\nurl = \"postgres://relay:pw-S3CRET@db/calls\"\nmax_bytes = 1000000\nlease = \"1s\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("2 problems"), "{e}");
    assert!(e.contains("relay.toml:8: key `store.max_bytes`: applies to the SQLite store only"), "{e}");
    assert!(e.contains("relay.toml:9: key `store.lease`: must be at least 3s"), "{e}");
    assert!(!e.contains("pw-S3CRET"), "{e}");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = load_text("[server\nlisten = 1\n").unwrap_err();
    assert!(e.contains("relay.toml:3: syntax"), "{e}");
}

#[test]
fn route_and_channel_problems_name_the_route_or_channel_all_at_once() {
    let e = load_text(&format!(
        "{CHANNEL}[channels.d]\nkind = \"discord\"\nwebhook_url = \"https://discord.test/channels/1\"\n\n[[routes]]\nname = \"ok\"\nchannels = [\"live\"]\n\n[[routes]]\nname = \"typo\"\nchannels = [\"lvie\"]\n[routes.match]\n\"x\" = {{ regex = \"(\" }}\n"
    ))
    .unwrap_err();
    assert!(e.contains("3 problems"), "{e}");
    assert!(e.contains("channel `d`: `webhook_url` is not a Discord webhook URL"), "{e}");
    assert!(e.contains("relay.toml:14: route `typo`: unknown channel `lvie`"), "{e}");
    assert!(e.contains("route `typo`: match `x`: invalid regex"), "{e}");
    assert!(!e.contains("discord.test/channels/1"), "URLs are never printed: {e}");
}

#[test]
fn env_vars_are_substituted_and_a_missing_one_is_named_with_its_key() {
    std::env::set_var("CALLRELAY_TEST_PATH_SECRET", "s3cr3t");
    let c = load_text(&format!("[server]\npath = \"/webhook/${{CALLRELAY_TEST_PATH_SECRET}}\"\n{CHANNEL}")).unwrap();
    assert_eq!(c.server.path, "/webhook/s3cr3t");
    let e = load_text(&format!("[server]\npath = \"/webhook/${{CALLRELAY_TEST_NOT_SET}}\"\n{CHANNEL}")).unwrap_err();
    assert!(e.contains("key `server.path`") && e.contains("`CALLRELAY_TEST_NOT_SET` is not set"), "{e}");
}

#[test]
fn callrelay_env_overrides_keys_and_match_keys_keep_their_case() {
    // `log.format` is read by no other test running in parallel in this process.
    std::env::set_var("CALLRELAY__LOG__FORMAT", "json");
    let c = load_text(&format!(
        "{CHANNEL}[[routes]]\nchannels = [\"live\"]\n[routes.match]\n\"call_data.agentId\" = \"agent_456\"\n"
    ))
    .unwrap();
    std::env::remove_var("CALLRELAY__LOG__FORMAT");
    assert_eq!(c.log.format, config::LogFormat::Json);
    let ctx = serde_json::json!({"call_data": {"agentId": "agent_456"}});
    assert_eq!(c.router.route(callrelay::event::EventType::Message, &ctx), ["live"]);
}

#[test]
fn discord_usernames_are_checked_at_load() {
    let e = load_text("[channels.d]\nkind = \"discord\"\nwebhook_url = \"https://discord.test/api/webhooks/1/t\"\nusername = \"Discord Bot\"\n").unwrap_err();
    assert!(e.contains("channel `d`: `username` may not contain \"discord\""), "{e}");
}

#[test]
fn auth_secrets_are_checked_at_load_without_being_echoed() {
    let e = load_text(&format!("{CHANNEL}[auth]\nsigning_secrets = [\"whsec_ok-but-not-base64!\"]\ntokens = [\"\"]\n"))
        .unwrap_err();
    assert!(e.contains("key `auth.signing_secrets[0]`") && e.contains("base64"), "{e}");
    assert!(e.contains("key `auth.tokens`: a token is empty"), "{e}");
    assert!(!e.contains("ok-but-not-base64"), "{e}");
    let c = load_text(&format!("{CHANNEL}[auth]\ntokens = [\"t0ken-value\"]\n")).unwrap();
    assert!(!format!("{:?}", c.auth).contains("t0ken-value"), "Debug redacts secrets");
}

#[test]
fn a_path_with_pattern_characters_is_refused_without_echoing_it() {
    let e = load_text(&format!("{CHANNEL}[server]\npath = \"/webhook/{{s3cret}}\"\n")).unwrap_err();
    assert!(e.contains("key `server.path`: may contain only"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

/// The README's set-up examples for Teams, Google Chat and HTTP endpoints load and route as
/// written (their secrets given as the README says to export them).
#[test]
fn the_readmes_destination_examples_pass_check() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|b| ["\"teams\"", "\"google_chat\"", "\"http\""].iter().any(|k| b.contains(&format!("kind = {k}"))))
        .collect();
    assert_eq!(blocks.len(), 3, "one example per new destination");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    for block in blocks {
        std::fs::write(&file, block).unwrap();
        let out = crate::helpers::bin()
            .arg("check")
            .arg("--config")
            .arg(&file)
            .env("TEAMS_WEBHOOK_URL", "https://prod.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=x")
            .env("GOOGLE_CHAT_WEBHOOK_URL", "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t")
            .env("CRM_WEBHOOK_URL", "https://crm.example/hooks")
            .env("CRM_SIGNING_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .env("CRM_TOKEN", "t")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{block}\n{said}");
        assert!(said.contains("ROUTE") && !said.contains("DISABLED"), "{said}");
    }
}
