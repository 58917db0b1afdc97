//! Owns the parsing of Redis `INFO` text into [`InfoFields`]: every value comes from outside
//! (a Redis server, possibly not ours), so every field is optional and a value that does not
//! parse is recorded in [`InfoFields::unreadable`] instead of being guessed.

use std::collections::BTreeMap;

/// At most this many bytes of `INFO` are parsed; the rest is ignored (and noted).
pub const MAX_INFO_BYTES: usize = 1 << 20;
/// A line longer than this is skipped as unreadable.
const MAX_LINE_BYTES: usize = 4096;

/// The `INFO` fields cache health grades. `None` = the server did not report it (or it was
/// unreadable: then its key is in [`InfoFields::unreadable`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoFields {
    pub redis_version: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub connected_clients: Option<u64>,
    pub blocked_clients: Option<u64>,
    /// `maxclients` (INFO clients since Redis 7.0).
    pub maxclients: Option<u64>,
    pub used_memory: Option<u64>,
    /// `maxmemory`; 0 means unlimited.
    pub maxmemory: Option<u64>,
    pub maxmemory_policy: Option<String>,
    pub keyspace_hits: Option<u64>,
    pub keyspace_misses: Option<u64>,
    pub evicted_keys: Option<u64>,
    pub expired_keys: Option<u64>,
    pub rejected_connections: Option<u64>,
    /// `master` or `slave` as Redis reports it.
    pub role: Option<String>,
    pub connected_slaves: Option<u64>,
    /// `master_link_status` of a replica: `up` or `down`.
    pub master_link_status: Option<String>,
    /// Keys whose value could not be read, with the raw value (truncated).
    pub unreadable: BTreeMap<String, String>,
    /// True when the text was longer than [`MAX_INFO_BYTES`] and only its start was parsed.
    pub truncated: bool,
}

/// Parses the text of `INFO` (sections `# Name`, lines `key:value`, CRLF or LF).
///
/// Unknown keys are ignored, duplicate keys keep the last value, numbers must be plain
/// non-negative integers within `u64` (`+`, `-`, `1e3`, `12.5` are unreadable), words are kept
/// only when short and printable.
pub fn parse_info(raw: &[u8]) -> InfoFields {
    let mut fields = InfoFields::default();
    let bytes = if raw.len() > MAX_INFO_BYTES {
        fields.truncated = true;
        &raw[..MAX_INFO_BYTES]
    } else {
        raw
    };
    let text = String::from_utf8_lossy(bytes);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if line.len() > MAX_LINE_BYTES {
            fields
                .unreadable
                .insert(clip(key, 64), "line too long".into());
            continue;
        }
        fields.set(key, value);
    }
    fields
}

impl InfoFields {
    fn set(&mut self, key: &str, value: &str) {
        let slot = match key {
            "redis_version" => return self.word(key, value, |f| &mut f.redis_version),
            "maxmemory_policy" => return self.word(key, value, |f| &mut f.maxmemory_policy),
            "role" => return self.word(key, value, |f| &mut f.role),
            "master_link_status" => return self.word(key, value, |f| &mut f.master_link_status),
            "uptime_in_seconds" => &mut self.uptime_seconds,
            "connected_clients" => &mut self.connected_clients,
            "blocked_clients" => &mut self.blocked_clients,
            "maxclients" => &mut self.maxclients,
            "used_memory" => &mut self.used_memory,
            "maxmemory" => &mut self.maxmemory,
            "keyspace_hits" => &mut self.keyspace_hits,
            "keyspace_misses" => &mut self.keyspace_misses,
            "evicted_keys" => &mut self.evicted_keys,
            "expired_keys" => &mut self.expired_keys,
            "rejected_connections" => &mut self.rejected_connections,
            "connected_slaves" => &mut self.connected_slaves,
            _ => return,
        };
        match parse_count(value) {
            Some(n) => {
                *slot = Some(n);
                self.unreadable.remove(key);
            }
            None => {
                *slot = None;
                self.unreadable.insert(key.to_owned(), clip(value, 64));
            }
        }
    }

    fn word(&mut self, key: &str, value: &str, slot: fn(&mut Self) -> &mut Option<String>) {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            *slot(self) = Some(value.to_owned());
            self.unreadable.remove(key);
        } else {
            *slot(self) = None;
            self.unreadable.insert(key.to_owned(), clip(value, 64));
        }
    }
}

/// A plain decimal non-negative integer that fits `u64`.
fn parse_count(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The first `max` characters of `s`, control characters replaced.
fn clip(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:42\r\n\r\n# Clients\r\nconnected_clients:3\r\nblocked_clients:0\r\nmaxclients:10000\r\n\r\n# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n# Stats\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\nevicted_keys:0\r\nexpired_keys:4\r\nrejected_connections:0\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n";

    #[test]
    fn a_healthy_info_is_read_field_by_field() {
        let f = parse_info(HEALTHY.as_bytes());
        assert_eq!(f.redis_version.as_deref(), Some("7.0.15"));
        assert_eq!(f.uptime_seconds, Some(42));
        assert_eq!(f.connected_clients, Some(3));
        assert_eq!(f.maxclients, Some(10000));
        assert_eq!(f.used_memory, Some(1_048_576));
        assert_eq!(f.maxmemory, Some(0));
        assert_eq!(f.maxmemory_policy.as_deref(), Some("noeviction"));
        assert_eq!((f.keyspace_hits, f.keyspace_misses), (Some(90), Some(10)));
        assert_eq!((f.evicted_keys, f.expired_keys), (Some(0), Some(4)));
        assert_eq!(f.role.as_deref(), Some("master"));
        assert_eq!(f.connected_slaves, Some(0));
        assert!(f.unreadable.is_empty());
        assert!(!f.truncated);
    }

    #[test]
    fn hostile_values_are_unreadable_never_guessed() {
        let cases: &[(&str, &str)] = &[
            ("keyspace_hits", "-5"),
            ("keyspace_hits", "+5"),
            ("keyspace_hits", "1e9"),
            ("keyspace_hits", "12.5"),
            ("keyspace_hits", "18446744073709551616"), // u64::MAX + 1
            ("keyspace_hits", ""),
            ("keyspace_hits", " 5"),
            ("keyspace_hits", "NaN"),
            ("keyspace_hits", "５"), // full-width digit
            ("role", "master\u{0}"),
            ("role", "<script>"),
            ("role", &"m".repeat(65)),
        ];
        for (key, value) in cases {
            let f = parse_info(format!("{key}:{value}\r\n").as_bytes());
            assert!(
                f.keyspace_hits.is_none() && f.role.is_none(),
                "{key}:{value:?}"
            );
            assert!(f.unreadable.contains_key(*key), "{key}:{value:?}");
        }
    }

    #[test]
    fn the_largest_count_is_kept() {
        let f = parse_info(b"evicted_keys:18446744073709551615\n");
        assert_eq!(f.evicted_keys, Some(u64::MAX));
    }

    #[test]
    fn duplicates_keep_the_last_value_and_a_later_good_value_clears_unreadable() {
        let f =
            parse_info(b"keyspace_hits:x\nkeyspace_hits:7\nkeyspace_misses:3\nkeyspace_misses:y\n");
        assert_eq!(f.keyspace_hits, Some(7));
        assert_eq!(f.keyspace_misses, None);
        assert_eq!(f.unreadable.keys().collect::<Vec<_>>(), ["keyspace_misses"]);
    }

    #[test]
    fn garbage_binary_and_oversized_input_do_not_panic() {
        let f = parse_info(&[0xff, 0xfe, b':', 0x00, b'\n', b':', b':', b'\n']);
        assert_eq!(f, InfoFields::default());
        let mut big = Vec::from(&b"keyspace_hits:1\n"[..]);
        big.extend(std::iter::repeat_n(b'a', MAX_INFO_BYTES));
        big.extend_from_slice(b"\nkeyspace_misses:2\n");
        let f = parse_info(&big);
        assert!(f.truncated);
        assert_eq!(f.keyspace_hits, Some(1));
        assert_eq!(f.keyspace_misses, None);
        let long = format!("maxmemory:{}\n", "9".repeat(MAX_LINE_BYTES));
        assert_eq!(
            parse_info(long.as_bytes()).unreadable["maxmemory"],
            "line too long"
        );
    }
}
