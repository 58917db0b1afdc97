//! Owns the bearer-token check of mutating HTTP endpoints: one constant-time comparison and
//! one set of refusals (401 without a usable `Authorization: Bearer` header, 403 with a wrong
//! token, 403 "disabled" when no token is configured) that every service answers the same way.
//! It is framework-free: callers pass the raw header value and turn a [`Refusal`] into their
//! HTTP response with [`Refusal::status`] and [`Refusal::body`]. Call it before reading the
//! request body, so an unauthenticated client never gets its body parsed.

use serde_json::{json, Value};

use crate::config::Secret;

/// Authorization header values longer than this are refused without being compared.
pub const MAX_AUTHORIZATION_BYTES: usize = 4_096;

/// The `WWW-Authenticate` value sent with a 401.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"telemesh\"";

/// Why a request to a mutating endpoint is refused. `setting` is the dotted config key of the
/// token (e.g. `ingest.api_token`), named in the answer so the operator knows what to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token is configured: the endpoint is disabled.
    Disabled { setting: &'static str },
    /// No `Authorization` header.
    Missing { setting: &'static str },
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed { setting: &'static str },
    /// A bearer token that is not the configured one.
    Wrong,
}

impl Refusal {
    /// The HTTP status: 401 for a missing or malformed header, 403 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Missing { .. } | Refusal::Malformed { .. } => 401,
            Refusal::Disabled { .. } | Refusal::Wrong => 403,
        }
    }

    /// Whether the answer carries `WWW-Authenticate: Bearer` (every 401 does).
    pub fn challenges(&self) -> bool {
        self.status() == 401
    }

    /// The JSON error `{error, detail}`; never contains the configured or the presented token.
    pub fn body(&self) -> Value {
        let (error, detail) = match self {
            Refusal::Disabled { setting } => (
                "disabled",
                format!("this endpoint is disabled because no token is configured: set {setting} (environment TELEMESH__{}) and send Authorization: Bearer <token>", env_name(setting)),
            ),
            Refusal::Missing { setting } => (
                "unauthorized",
                format!("send Authorization: Bearer <{setting}>"),
            ),
            Refusal::Malformed { setting } => (
                "unauthorized",
                format!("the Authorization header must be `Bearer <{setting}>`"),
            ),
            Refusal::Wrong => (
                "forbidden",
                "invalid token: send the token configured on the service".to_owned(),
            ),
        };
        json!({ "error": error, "detail": detail })
    }
}

fn env_name(setting: &str) -> String {
    setting.replace('.', "__").to_ascii_uppercase()
}

/// Checks the raw `Authorization` header value against `expected`. Refuses when no token is
/// configured, the header is missing, not `Bearer <token>` (scheme case-insensitive, RFC 7235),
/// longer than [`MAX_AUTHORIZATION_BYTES`], or carries another token.
pub fn check_bearer(
    authorization: Option<&[u8]>,
    expected: &Secret,
    setting: &'static str,
) -> Result<(), Refusal> {
    if expected.expose().trim().is_empty() {
        return Err(Refusal::Disabled { setting });
    }
    let Some(header) = authorization else {
        return Err(Refusal::Missing { setting });
    };
    if header.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Refusal::Wrong);
    }
    let Some((scheme, token)) = split_scheme(header) else {
        return Err(Refusal::Malformed { setting });
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() {
        return Err(Refusal::Malformed { setting });
    }
    if constant_time_eq(token, expected.expose().trim().as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Wrong)
    }
}

/// `scheme SP token`, with the token trimmed of surrounding blanks.
fn split_scheme(header: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = header.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = header.split_at(at);
    Some((scheme, rest.trim_ascii()))
}

/// Compares `given` with `expected` in time that depends only on `expected`'s length: every
/// byte of `expected` is compared, whatever `given` holds, so timing reveals no prefix.
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!e);
        diff |= e ^ g;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTING: &str = "ingest.api_token";

    fn check(header: Option<&[u8]>, token: &str) -> Result<(), Refusal> {
        check_bearer(header, &Secret::new(token), SETTING)
    }

    #[test]
    fn the_right_token_passes_and_everything_else_is_refused_with_the_right_status() {
        let token = "s3cret-token";
        assert_eq!(check(Some(b"Bearer s3cret-token"), token), Ok(()));
        assert_eq!(check(Some(b"bearer  s3cret-token "), token), Ok(()));
        let huge = vec![b'a'; MAX_AUTHORIZATION_BYTES + 1];
        let mut huge_bearer = b"Bearer ".to_vec();
        huge_bearer.extend(std::iter::repeat_n(b'x', 100_000));
        let cases: Vec<(Option<&[u8]>, u16)> = vec![
            (None, 401),
            (Some(b""), 401),
            (Some(b"Bearer"), 401),
            (Some(b"Bearer "), 401),
            (Some(b"Basic czNjcmV0LXRva2Vu"), 401),
            (Some(b"s3cret-token"), 401),
            (Some(b"Token s3cret-token"), 401),
            (Some(b"Bearer s3cret-toke"), 403),
            (Some(b"Bearer s3cret-token2"), 403),
            (Some(b"Bearer S3CRET-TOKEN"), 403),
            (Some(b"Bearer s3cret-token\0"), 403),
            (Some(b"Bearer \xff\xfe"), 403),
            (Some(&huge), 403),
            (Some(&huge_bearer), 403),
        ];
        for (header, status) in cases {
            let refusal = check(header, token).expect_err("refused");
            assert_eq!(
                refusal.status(),
                status,
                "{:?}",
                header.map(|h| String::from_utf8_lossy(&h[..h.len().min(40)]).into_owned())
            );
            let body = refusal.body().to_string();
            assert!(!body.contains(token), "the token never leaks: {body}");
            assert_eq!(refusal.challenges(), status == 401);
        }
    }

    #[test]
    fn no_configured_token_disables_the_endpoint_and_names_the_setting() {
        for token in ["", "  "] {
            let refusal = check(Some(b"Bearer "), token).expect_err("disabled");
            assert_eq!(refusal, Refusal::Disabled { setting: SETTING });
            assert_eq!(refusal.status(), 403);
            let detail = refusal.body()["detail"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                detail.contains("ingest.api_token")
                    && detail.contains("TELEMESH__INGEST__API_TOKEN"),
                "{detail}"
            );
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(
            !constant_time_eq(b"\x9e\x9d\x9c", b"abc"),
            "a shorter given never matches by padding"
        );
        assert!(constant_time_eq(b"", b""));
    }
}
