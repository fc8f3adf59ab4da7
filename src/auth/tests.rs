//! Authentication checks, including the Standard Webhooks published test vector and signatures
//! made by the `standardwebhooks` crate as an independent oracle.

use super::*;
use crate::config::Secret;

const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: &str = "1614265330";
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn auth(f: impl FnOnce(&mut AuthConfig)) -> Authenticator {
    let mut cfg = AuthConfig::default();
    f(&mut cfg);
    Authenticator::new(&cfg)
}

fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignatureHeaders<'a> {
    SignatureHeaders { id: Some(id), timestamp: Some(ts), signature: Some(sig) }
}

#[test]
fn the_published_test_vector_verifies_within_tolerance_only() {
    let a = auth(|c| c.signing_secrets = vec![Secret::new(SPEC_SECRET)]);
    let now = 1614265330;
    assert_eq!(a.check_signature(headers(SPEC_ID, SPEC_TS, SPEC_SIG), SPEC_BODY, now), Ok(Some(SPEC_ID.into())));
    assert_eq!(a.check_signature(headers(SPEC_ID, SPEC_TS, SPEC_SIG), SPEC_BODY, now + 299), Ok(Some(SPEC_ID.into())));
    assert_eq!(
        a.check_signature(headers(SPEC_ID, SPEC_TS, SPEC_SIG), SPEC_BODY, now + 301),
        Err(Denied::StaleTimestamp)
    );
    assert_eq!(
        a.check_signature(headers(SPEC_ID, SPEC_TS, SPEC_SIG), SPEC_BODY, now - 301),
        Err(Denied::StaleTimestamp)
    );
    assert_eq!(
        a.check_signature(headers(SPEC_ID, SPEC_TS, SPEC_SIG), br#"{"test": 2432232315}"#, now),
        Err(Denied::BadSignature)
    );
    assert_eq!(a.check_signature(headers("msg_other", SPEC_TS, SPEC_SIG), SPEC_BODY, now), Err(Denied::BadSignature));
    assert_eq!(a.check_signature(SignatureHeaders::default(), SPEC_BODY, now), Err(Denied::SignatureHeaders));
    assert_eq!(a.check_signature(headers(SPEC_ID, "soon", SPEC_SIG), SPEC_BODY, now), Err(Denied::SignatureHeaders));
}

#[test]
fn rotation_accepts_any_listed_secret_and_any_listed_signature() {
    let other = "whsec_".to_owned() + &BASE64.encode([7u8; 32]);
    let a = auth(|c| c.signing_secrets = vec![Secret::new(other.clone()), Secret::new(SPEC_SECRET)]);
    let several = format!("v1,bm90IGEgc2lnbmF0dXJl v2,whatever {SPEC_SIG}");
    assert!(a.check_signature(headers(SPEC_ID, SPEC_TS, &several), SPEC_BODY, 1614265330).is_ok());
    let only_other = auth(|c| c.signing_secrets = vec![Secret::new(other)]);
    assert_eq!(
        only_other.check_signature(headers(SPEC_ID, SPEC_TS, SPEC_SIG), SPEC_BODY, 1614265330),
        Err(Denied::BadSignature)
    );
}

#[test]
fn signatures_made_by_the_reference_crate_verify() {
    let secret = "whsec_".to_owned() + &BASE64.encode(b"an independent oracle's key, 32b");
    let oracle = standardwebhooks::Webhook::new(&secret).unwrap();
    let a = auth(|c| c.signing_secrets = vec![Secret::new(secret.clone())]);
    for (i, body) in
        [&b"{}"[..], br#"{"event_type":"message","call_id":"c"}"#, "ünïcödé 😀".as_bytes()].iter().enumerate()
    {
        let id = format!("msg_{i}");
        let ts = 1_700_000_000 + i as i64;
        let sig = oracle.sign(&id, ts, body).unwrap();
        assert_eq!(a.check_signature(headers(&id, &ts.to_string(), &sig), body, ts), Ok(Some(id.clone())), "{sig}");
    }
}

#[test]
fn tokens_by_header_or_query_with_rotation() {
    let a = auth(|c| c.tokens = vec![Secret::new("old-token"), Secret::new("new-token")]);
    assert!(a.check_token(Some("Bearer new-token"), "").is_ok());
    assert!(a.check_token(Some("bearer old-token"), "").is_ok());
    assert!(a.check_token(None, "a=1&token=new-token").is_ok());
    assert_eq!(a.check_token(Some("Bearer wrong"), ""), Err(Denied::Token));
    assert_eq!(a.check_token(Some("Basic new-token"), ""), Err(Denied::Token));
    assert_eq!(a.check_token(None, "token=new-token-x"), Err(Denied::Token));
    assert_eq!(a.check_token(None, ""), Err(Denied::Token));
    assert!(auth(|_| {}).check_token(None, "").is_ok(), "no tokens configured: no check");
}

#[test]
fn networks_trust_forwarded_for_only_from_trusted_proxies() {
    let a = auth(|c| {
        c.allow_networks = vec!["203.0.113.0/24".parse().unwrap()];
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    });
    let ip = |s: &str| Some(s.parse().unwrap());
    assert!(a.check_network(ip("203.0.113.7"), None).is_ok());
    assert_eq!(a.check_network(ip("198.51.100.1"), None), Err(Denied::Network));
    assert!(a.check_network(ip("10.1.2.3"), Some("203.0.113.9")).is_ok(), "behind our proxy");
    assert!(a.check_network(ip("10.1.2.3"), Some("203.0.113.9, 10.0.0.5")).is_ok(), "through two proxies");
    assert_eq!(
        a.check_network(ip("10.1.2.3"), Some("203.0.113.9, 198.51.100.1")),
        Err(Denied::Network),
        "the nearest untrusted hop counts, not a spoofed first entry"
    );
    assert_eq!(
        a.check_network(ip("198.51.100.1"), Some("203.0.113.9")),
        Err(Denied::Network),
        "spoofed header from an untrusted peer"
    );
}

#[test]
fn signing_secrets_must_be_whsec_base64_and_never_echoed() {
    assert!(decode_signing_secret(SPEC_SECRET).is_ok());
    for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64", "whsec_AAAA"] {
        let e = decode_signing_secret(bad).unwrap_err();
        assert!(!e.contains(bad), "{e}");
    }
}
