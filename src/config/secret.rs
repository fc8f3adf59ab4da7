//! Secret configuration values whose `Debug` and `Display` never reveal the secret.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use serde::Deserialize;
use url::Url;

/// The key bytes of a Standard Webhooks `whsec_<base64>` signing secret.
pub fn decode_signing_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.trim().strip_prefix("whsec_").ok_or("must start with `whsec_`")?;
    let key = BASE64.decode(b64).map_err(|_| "is not `whsec_` followed by base64".to_owned())?;
    if key.len() < 16 {
        return Err("is shorter than 16 bytes".into());
    }
    Ok(key)
}

/// A secret string (token, signing secret). `Debug` and `Display` print `***`; use
/// [`Secret::expose`] where the value is needed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A channel's incoming-webhook URL. Its path and query carry the token that lets anyone post into
/// the channel, so only the scheme and host are ever shown; use [`WebhookUrl::expose`] to send.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Parses an absolute `http` or `https` URL. The error never repeats the input.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("must be an http(s) URL, not `{other}:`")),
        }
        if url.host_str().is_none() {
            return Err("has no host".to_owned());
        }
        Ok(Self(url))
    }

    /// The real URL, for the HTTP client only. Never log it.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// A form safe to print: scheme, host and port, with the path and query hidden.
    pub fn redacted(&self) -> String {
        let host = self.0.host_str().unwrap_or("?");
        match self.0.port() {
            Some(port) => format!("{}://{host}:{port}/…", self.0.scheme()),
            None => format!("{}://{host}/…", self.0.scheme()),
        }
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.redacted())
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_token() {
        let url = WebhookUrl::parse("https://hooks.slack.com/services/T1/B2/s3cr3tT0ken?x=1").unwrap();
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("s3cr3tT0ken"), "{shown}");
            assert!(!shown.contains("T1/B2"), "{shown}");
            assert!(shown.contains("hooks.slack.com"), "{shown}");
        }
    }

    #[test]
    fn rejects_other_schemes_without_echoing_the_input() {
        let err = WebhookUrl::parse("ftp://example.com/s3cr3t").unwrap_err();
        assert!(err.contains("ftp"));
        assert!(!err.contains("s3cr3t"));
        let err = WebhookUrl::parse("not a url s3cr3t").unwrap_err();
        assert!(!err.contains("s3cr3t"));
    }
}
