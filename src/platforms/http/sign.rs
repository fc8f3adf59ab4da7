//! Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and `webhook-signature:
//! v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (one per secret, space-separated, while a
//! secret is rotated). <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The headers that sign one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `webhook-id`: the same on every attempt of the same post.
    pub id: String,
    /// `webhook-timestamp`: this attempt's time, in Unix seconds.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>` per key, space-separated (empty without keys).
    pub signature: String,
}

/// The `webhook-id` of the post named `key`: a digest of it, so it says nothing of the relay's
/// internals and stays the same on every attempt.
pub fn message_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("msg_{}", digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Signs `body` as `id` at `timestamp` with every key (decoded `whsec_` secrets).
pub fn sign(id: &str, timestamp: i64, body: &str, keys: &[Vec<u8>]) -> Signed {
    let signed = format!("{id}.{timestamp}.{body}");
    let signature = keys
        .iter()
        .map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(signed.as_bytes());
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Signed { id: id.to_owned(), timestamp, signature }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference implementation (the `standardwebhooks` crate) verifies what this signs.
    #[test]
    fn the_reference_verifier_accepts_each_rotated_secret() {
        let (old, new) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2VjcmV0LW51bWJlci10d28tcm90YXRlZA==");
        let keys: Vec<Vec<u8>> = [old, new].iter().map(|s| crate::config::decode_signing_secret(s).unwrap()).collect();
        let now = chrono::Utc::now().timestamp();
        let signed = sign("msg_1", now, r#"{"type":"message"}"#, &keys);
        assert_eq!(signed.signature.split(' ').count(), 2);
        for secret in [old, new] {
            let verifier = standardwebhooks::Webhook::new(secret).unwrap();
            let mut headers = ::http::HeaderMap::new();
            headers.insert("webhook-id", "msg_1".parse().unwrap());
            headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
            headers.insert("webhook-signature", signed.signature.parse().unwrap());
            verifier.verify(br#"{"type":"message"}"#, &headers).unwrap();
        }
        assert_eq!(message_id("a/1/2/0"), message_id("a/1/2/0"));
        assert_ne!(message_id("a/1/2/0"), message_id("a/1/2/1"));
    }
}
