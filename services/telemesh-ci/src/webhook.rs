//! Owns the trust checks of GitHub webhook deliveries: the `X-Hub-Signature-256` HMAC-SHA256
//! of the raw body under the configured secret (compared in constant time), the body-size
//! bound, and the replay guard that ignores a delivery id (`X-GitHub-Delivery`) seen before.

use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use telemesh_core::auth::constant_time_eq;

/// The largest webhook body accepted (GitHub caps payloads at 25 MB; `workflow_run` bodies
/// are tens of kilobytes).
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// The longest `X-GitHub-Delivery` value kept (GitHub sends a 36-character GUID).
pub const MAX_DELIVERY_ID_BYTES: usize = 128;

/// Why a delivery's signature is refused (every case answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header: configure the webhook's secret in GitHub")]
    Missing,
    #[error("X-Hub-Signature-256 is not `sha256=<64 hex digits>`: send GitHub's header unchanged")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body: check the webhook secret on both sides")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value, `None` when absent) against the
/// HMAC-SHA256 of `body` under `secret`.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let given = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    let expected = sign(secret, body);
    if constant_time_eq(&given, &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The raw HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("hmac takes keys of any length"));
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The `X-Hub-Signature-256` header value GitHub would send for `body` under `secret`.
pub fn signature_header(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(sign(secret, body)))
}

/// Remembers the newest `capacity` delivery ids; a delivery seen again is a replay.
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

/// What the guard says about one delivery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// First time seen: process it.
    New,
    /// Seen before: acknowledge and ignore it.
    Replayed,
}

/// Why a delivery id is refused before any processing (answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryIdError {
    #[error("missing X-GitHub-Delivery header: send GitHub's delivery id unchanged")]
    Missing,
    #[error("X-GitHub-Delivery must be 1 to 128 printable ASCII characters")]
    Invalid,
}

impl ReplayGuard {
    /// A guard remembering up to `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Validates a raw `X-GitHub-Delivery` header value.
    pub fn parse_id(raw: Option<&[u8]>) -> Result<String, DeliveryIdError> {
        let raw = raw.ok_or(DeliveryIdError::Missing)?;
        if raw.is_empty()
            || raw.len() > MAX_DELIVERY_ID_BYTES
            || !raw.iter().all(|b| b.is_ascii_graphic())
        {
            return Err(DeliveryIdError::Invalid);
        }
        String::from_utf8(raw.to_vec()).map_err(|_| DeliveryIdError::Invalid)
    }

    /// Records `id`; says whether it was new. Call only after the signature verified, so an
    /// unsigned request cannot burn a real delivery's id.
    pub fn check(&mut self, id: &str) -> Delivery {
        if self.seen.contains(id) {
            return Delivery::Replayed;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        Delivery::New
    }

    /// Forgets `id` (when processing a new delivery failed, so GitHub's redelivery is taken).
    pub fn forget(&mut self, id: &str) {
        if self.seen.remove(id) {
            self.order.retain(|x| x != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";

    /// The worked example of GitHub's "Validating webhook deliveries" documentation.
    const GITHUB_EXAMPLE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_example_verifies() {
        assert_eq!(signature_header(SECRET, BODY), GITHUB_EXAMPLE);
        assert_eq!(
            verify_signature(SECRET, Some(GITHUB_EXAMPLE.as_bytes()), BODY),
            Ok(())
        );
    }

    #[test]
    fn hostile_signatures_are_refused() {
        let good = signature_header(SECRET, BODY);
        let upper = good.to_uppercase().replace("SHA256=", "sha256=");
        let cases: Vec<(Option<&[u8]>, SignatureError)> = vec![
            (None, SignatureError::Missing),
            (Some(b""), SignatureError::Malformed),
            (Some(b"sha1=abc"), SignatureError::Malformed),
            (Some(b"sha256="), SignatureError::Malformed),
            (Some(&good.as_bytes()[..70]), SignatureError::Malformed),
            (
                Some(b"sha256=zz07ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                SignatureError::Malformed,
            ),
            (Some(b"sha256=\xff\xfe"), SignatureError::Malformed),
            (
                Some(b"sha256=0000000000000000000000000000000000000000000000000000000000000000"),
                SignatureError::Mismatch,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                verify_signature(SECRET, header, BODY),
                Err(want.clone()),
                "{header:?}"
            );
        }
        // Hex digits are case-insensitive.
        assert_eq!(
            verify_signature(SECRET, Some(upper.as_bytes()), BODY),
            Ok(())
        );
        // The right signature of another body, or under another secret, is a mismatch.
        assert_eq!(
            verify_signature(SECRET, Some(good.as_bytes()), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other", Some(good.as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn replayed_delivery_is_reported_and_the_oldest_id_ages_out() {
        let mut guard = ReplayGuard::new(2);
        assert_eq!(guard.check("a"), Delivery::New);
        assert_eq!(guard.check("a"), Delivery::Replayed);
        assert_eq!(guard.check("b"), Delivery::New);
        assert_eq!(guard.check("c"), Delivery::New);
        assert_eq!(
            guard.check("a"),
            Delivery::New,
            "a aged out of a guard of 2"
        );
        guard.forget("a");
        assert_eq!(guard.check("a"), Delivery::New);
    }

    #[test]
    fn delivery_ids_are_validated() {
        assert_eq!(ReplayGuard::parse_id(None), Err(DeliveryIdError::Missing));
        for bad in [&b""[..], b"a b", b"\x00", b"\xc3\xa9", &[b'x'; 129]] {
            assert_eq!(
                ReplayGuard::parse_id(Some(bad)),
                Err(DeliveryIdError::Invalid)
            );
        }
        assert_eq!(
            ReplayGuard::parse_id(Some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958")).as_deref(),
            Ok("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
    }
}
