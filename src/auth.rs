//! Who may post: shared tokens, Standard Webhooks signatures, and client networks. A secret path
//! needs no code here: only the configured path is routed. Every configured check must pass;
//! failures are all answered the same `401 {"error":"unauthorized"}`.
//!
//! Standard Webhooks: <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>

use std::net::IpAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{decode_signing_secret, AuthConfig};

/// Why a request was refused (logged and counted; never told to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The client's address is outside `auth.allow_networks`.
    Network,
    /// No token, or a wrong one.
    Token,
    /// Missing or malformed signature headers.
    SignatureHeaders,
    /// `webhook-timestamp` too far from now.
    StaleTimestamp,
    /// No signature matched any secret.
    BadSignature,
    /// A `webhook-id` already seen within the tolerance window.
    Replay,
}

impl Denied {
    /// Every reason, for metrics that list each from the start.
    pub const ALL: [Denied; 6] = [
        Denied::Network,
        Denied::Token,
        Denied::SignatureHeaders,
        Denied::StaleTimestamp,
        Denied::BadSignature,
        Denied::Replay,
    ];

    /// A label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::Network => "network",
            Denied::Token => "token",
            Denied::SignatureHeaders => "signature_headers",
            Denied::StaleTimestamp => "stale_timestamp",
            Denied::BadSignature => "bad_signature",
            Denied::Replay => "replay",
        }
    }
}

/// The Standard Webhooks headers of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    /// `webhook-id`
    pub id: Option<&'a str>,
    /// `webhook-timestamp` (Unix seconds)
    pub timestamp: Option<&'a str>,
    /// `webhook-signature` (space-separated `v1,<base64>` entries)
    pub signature: Option<&'a str>,
}

/// The compiled `[auth]` section.
#[derive(Clone)]
pub struct Authenticator {
    token_digests: Vec<[u8; 32]>,
    keys: Vec<Vec<u8>>,
    tolerance: Duration,
    allow: Vec<IpNet>,
    proxies: Vec<IpNet>,
}

impl Authenticator {
    /// Compiles `[auth]` (signing secrets were checked when the config was loaded).
    pub fn new(cfg: &AuthConfig) -> Self {
        Self {
            token_digests: cfg.tokens.iter().map(|t| Sha256::digest(t.expose().as_bytes()).into()).collect(),
            keys: cfg.signing_secrets.iter().filter_map(|s| decode_signing_secret(s.expose()).ok()).collect(),
            tolerance: cfg.signature_tolerance,
            allow: cfg.allow_networks.clone(),
            proxies: cfg.trusted_proxies.clone(),
        }
    }

    /// Whether signatures are required (then the `webhook-id` must be remembered).
    pub fn signs(&self) -> bool {
        !self.keys.is_empty()
    }

    /// How long a `webhook-id` is remembered to refuse replays.
    pub fn replay_window(&self) -> Duration {
        self.tolerance * 2
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address
    /// in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.proxies.iter().any(|n| n.contains(&peer)) {
            return Some(peer);
        }
        let Some(chain) = forwarded_for else { return Some(peer) };
        let hops: Vec<IpAddr> = chain.split(',').filter_map(|h| h.trim().parse().ok()).collect();
        hops.iter().rev().find(|ip| !self.proxies.iter().any(|n| n.contains(*ip))).copied().or(hops.first().copied())
    }

    /// Checks the client network.
    pub fn check_network(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Result<(), Denied> {
        if self.allow.is_empty() {
            return Ok(());
        }
        match self.client_ip(peer, forwarded_for) {
            Some(ip) if self.allow.iter().any(|n| n.contains(&ip)) => Ok(()),
            _ => Err(Denied::Network),
        }
    }

    /// Checks `Authorization: Bearer <token>` or `?token=<token>`, in constant time.
    pub fn check_token(&self, authorization: Option<&str>, query: &str) -> Result<(), Denied> {
        if self.token_digests.is_empty() {
            return Ok(());
        }
        let from_header = authorization.and_then(|h| {
            let (scheme, value) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| value.trim().to_owned())
        });
        let from_query =
            || url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
        let Some(given) = from_header.or_else(from_query) else { return Err(Denied::Token) };
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let mut ok = subtle::Choice::from(0);
        for d in &self.token_digests {
            ok |= d.ct_eq(&digest);
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Denied::Token)
        }
    }

    /// Checks a Standard Webhooks signature over `body` at `now` (Unix seconds); the
    /// `webhook-id`, for replay protection, when signatures are required.
    pub fn check_signature(&self, h: SignatureHeaders, body: &[u8], now: i64) -> Result<Option<String>, Denied> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let (Some(id), Some(ts), Some(sigs)) = (h.id, h.timestamp, h.signature) else {
            return Err(Denied::SignatureHeaders);
        };
        let ts_num: i64 = ts.trim().parse().map_err(|_| Denied::SignatureHeaders)?;
        if (now - ts_num).unsigned_abs() > self.tolerance.as_secs() {
            return Err(Denied::StaleTimestamp);
        }
        let given: Vec<Vec<u8>> = sigs
            .split_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| BASE64.decode(b64).ok())
            .collect();
        for key in &self.keys {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            for sig in &given {
                if mac.clone().verify_slice(sig).is_ok() {
                    return Ok(Some(id.to_owned()));
                }
            }
        }
        Err(Denied::BadSignature)
    }
}

#[cfg(test)]
mod tests;
