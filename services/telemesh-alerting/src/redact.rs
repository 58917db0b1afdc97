//! Owns keeping secrets out of every output: [`scrub_urls`] removes URLs (a Slack or webhook
//! URL is itself the secret, and HTTP clients put the URL in their error text) and
//! [`Redactor`] removes the configured secret values (URLs, their paths, tokens, passwords).
//! Every error text that leaves a channel goes through both before it reaches the
//! notification log, the channel health API, logs or drill output.

/// What a removed URL is replaced with.
pub const URL_PLACEHOLDER: &str = "<url>";
/// What a removed secret is replaced with.
pub const SECRET_PLACEHOLDER: &str = "<redacted>";

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}' | '|' | ','
        )
}

/// Replaces every `scheme://…` in `text` with [`URL_PLACEHOLDER`].
pub fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_scheme_char(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let after = &rest[at + 3..];
        let end = after.find(ends_url).unwrap_or(after.len());
        if scheme_start == at {
            // no scheme before "://": not a URL, keep it
            out.push_str(&rest[..at + 3]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..scheme_start]);
        out.push_str(URL_PLACEHOLDER);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Removes known secret values (and URLs) from text.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Shorter values are not treated as secrets (they would blank ordinary words).
const MIN_SECRET_LEN: usize = 6;

impl Redactor {
    /// A redactor for these secret values. A URL also contributes its path and query, which
    /// carry the secret of Slack and webhook URLs and show up without the host in some errors.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets = Vec::new();
        for value in values {
            let value = value.trim();
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            secrets.push(value.to_owned());
            if let Some(scheme_end) = value.find("://") {
                let after = &value[scheme_end + 3..];
                if let Some(path_start) = after.find('/') {
                    let path = &after[path_start..];
                    if path.trim_matches('/').len() >= MIN_SECRET_LEN {
                        secrets.push(path.to_owned());
                    }
                }
            }
        }
        // longest first, so a URL goes before its own path
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` without any known secret and without URLs.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), SECRET_PLACEHOLDER);
            }
        }
        scrub_urls(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_scrubbed_wherever_they_appear() {
        let cases = [
            (
                "error sending request for url (https://hooks.slack.com/services/T0/B0/XyZ)",
                "error sending request for url (<url>)",
            ),
            ("plain text", "plain text"),
            ("a://b and c", "<url> and c"),
            ("://nothing before", "://nothing before"),
            ("http://x.y/a?b=c\"tail", "<url>\"tail"),
            ("two http://a/1 https://b/2 end", "two <url> <url> end"),
            ("postgres://user:pw@host:5432/db", "<url>"),
            ("ünïcode ftp://h/p ünïcode", "ünïcode <url> ünïcode"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub_urls(input), expected, "{input:?}");
        }
    }

    #[test]
    fn known_secrets_and_url_paths_are_removed() {
        let r = Redactor::new([
            "https://hooks.slack.com/services/T0/B0/SECRETPART",
            "ghp_token_value",
            "pw",
        ]);
        assert_eq!(
            r.redact("404 for /services/T0/B0/SECRETPART"),
            "404 for <redacted>"
        );
        assert_eq!(
            r.redact("bad credentials ghp_token_value"),
            "bad credentials <redacted>"
        );
        assert_eq!(
            r.redact("pw is too short to count"),
            "pw is too short to count"
        );
        assert_eq!(
            r.redact("url https://hooks.slack.com/services/T0/B0/SECRETPART failed"),
            "url <redacted> failed"
        );
        assert!(
            !format!("{r:?}").contains("ghp"),
            "debug output hides the values"
        );
    }
}
