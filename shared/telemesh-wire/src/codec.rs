//! Owns the encodings of the snapshot envelope: bincode 1.3 and JSON, chosen by the
//! `content-type` header (`application/vnd.telemesh.snapshot.v1+bincode` or `…+json`).
//!
//! bincode uses the layout of `bincode::serialize` (little endian, fixed-width integers), so a
//! downstream consumer can decode with plain `bincode::deserialize`. Decoding never panics:
//! unknown content types, unknown versions, oversized or malformed payloads are typed errors.

use std::fmt;
use std::str::FromStr;

use bincode::Options;

use crate::limits;
use crate::snapshot::{InvalidSnapshot, Snapshot};

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;
/// Largest payload the encoder writes and the decoder accepts (960 000 bytes); larger ones
/// are dead-lettered. It leaves room for the key and headers under [`MAX_MESSAGE_BYTES`].
pub const MAX_PAYLOAD_BYTES: usize = 960_000;
/// Largest Kafka message (key + headers + payload) telemesh producers send: librdkafka's
/// default `message.max.bytes`, below the broker's default `max.message.bytes` (1 048 588).
/// The aggregator's dead-letter producer truncates payloads to stay under it.
pub const MAX_MESSAGE_BYTES: usize = 1_000_000;
/// The header that names a message's encoding.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
const MEDIA_TYPE_PREFIX: &str = "application/vnd.telemesh.snapshot.v";

/// How a snapshot is encoded on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Bincode,
    Json,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Bincode => "bincode",
            Encoding::Json => "json",
        }
    }
}

/// A parsed `content-type` header value of a snapshot message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType {
    pub version: u32,
    pub encoding: Encoding,
}

impl ContentType {
    /// The content type this build writes for `encoding`.
    pub fn current(encoding: Encoding) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            encoding,
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{MEDIA_TYPE_PREFIX}{}+{}",
            self.version,
            self.encoding.as_str()
        )
    }
}

impl FromStr for ContentType {
    type Err = CodecError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let unknown = || CodecError::UnknownContentType(raw.to_owned());
        // parameters such as `; charset=utf-8` do not change the encoding
        let media = raw.split(';').next().unwrap_or_default().trim();
        let rest = media
            .to_ascii_lowercase()
            .strip_prefix(MEDIA_TYPE_PREFIX)
            .map(str::to_owned)
            .ok_or_else(unknown)?;
        let (version, suffix) = rest.split_once('+').ok_or_else(unknown)?;
        let version: u32 = version.parse().map_err(|_| unknown())?;
        let encoding = match suffix {
            "bincode" => Encoding::Bincode,
            "json" => Encoding::Json,
            _ => return Err(unknown()),
        };
        Ok(Self { version, encoding })
    }
}

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("missing content-type header: producers must set application/vnd.telemesh.snapshot.v1+bincode or +json")]
    MissingContentType,
    #[error("unknown content type {0:?}: expected application/vnd.telemesh.snapshot.v1+bincode or +json")]
    UnknownContentType(String),
    #[error("unsupported envelope version {0}: this build reads version {ENVELOPE_VERSION}; upgrade the consumer")]
    UnsupportedVersion(u32),
    #[error("payload of {size} bytes exceeds the {max} byte limit")]
    Oversized { size: usize, max: usize },
    #[error("malformed {encoding} payload: {detail}")]
    Malformed {
        encoding: &'static str,
        detail: String,
    },
    #[error("invalid snapshot: {0}")]
    Invalid(#[from] InvalidSnapshot),
    #[error(
        "{field} {detail}: strip NUL characters and send valid UTF-8 (no unpaired surrogates)"
    )]
    InvalidText { field: String, detail: String },
    #[error("details nest deeper than {max} levels: flatten them")]
    TooDeep { max: usize },
    #[error("more {what} than the limit of {max}: split the snapshot or summarise")]
    TooMany { what: &'static str, max: usize },
    #[error("generated_at {0} is outside 1970-01-01..9999-12-31: fix the producer clock")]
    TimeOutOfRange(String),
    #[error("generated_at is {ahead_seconds}s ahead of the aggregator clock (limit {max_seconds}s): fix the producer clock (NTP)")]
    FromTheFuture {
        ahead_seconds: i64,
        max_seconds: i64,
    },
}

impl CodecError {
    /// A short, stable name for metrics labels and dead-letter headers.
    pub fn class(&self) -> &'static str {
        match self {
            CodecError::MissingContentType => "missing_content_type",
            CodecError::UnknownContentType(_) => "unknown_content_type",
            CodecError::UnsupportedVersion(_) => "unsupported_version",
            CodecError::Oversized { .. } => "oversized",
            CodecError::Malformed { .. } => "malformed",
            CodecError::Invalid(_) => "invalid_snapshot",
            CodecError::InvalidText { .. } => "invalid_text",
            CodecError::TooDeep { .. } => "too_deep",
            CodecError::TooMany { .. } => "too_many",
            CodecError::TimeOutOfRange(_) => "time_out_of_range",
            CodecError::FromTheFuture { .. } => "future_generated_at",
        }
    }
}

fn bincode_options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(MAX_PAYLOAD_BYTES as u64)
}

/// Encodes a valid snapshot; returns the payload and the content type to put in the header.
pub fn encode(
    snapshot: &Snapshot,
    encoding: Encoding,
) -> Result<(Vec<u8>, ContentType), CodecError> {
    snapshot.validate()?;
    limits::check(snapshot)?;
    let bytes = match encoding {
        Encoding::Bincode => {
            bincode_options()
                .serialize(snapshot)
                .map_err(|e| CodecError::Malformed {
                    encoding: "bincode",
                    detail: e.to_string(),
                })?
        }
        Encoding::Json => serde_json::to_vec(snapshot).map_err(|e| CodecError::Malformed {
            encoding: "json",
            detail: e.to_string(),
        })?,
    };
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(CodecError::Oversized {
            size: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok((bytes, ContentType::current(encoding)))
}

/// Decodes a payload given its `content-type` header value (`None` when the header is absent).
pub fn decode(content_type: Option<&str>, payload: &[u8]) -> Result<Snapshot, CodecError> {
    let content_type: ContentType = content_type
        .ok_or(CodecError::MissingContentType)?
        .parse()?;
    if content_type.version != ENVELOPE_VERSION {
        return Err(CodecError::UnsupportedVersion(content_type.version));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(CodecError::Oversized {
            size: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    limits::reset_too_deep();
    let snapshot: Snapshot = match content_type.encoding {
        Encoding::Bincode => bincode_options()
            .deserialize(payload)
            .map_err(|e| bincode_error(*e))?,
        Encoding::Json => serde_json::from_slice(payload).map_err(json_error)?,
    };
    snapshot.validate()?;
    limits::check(&snapshot)?;
    Ok(snapshot)
}

fn too_deep_or(other: CodecError) -> CodecError {
    if limits::was_too_deep() {
        CodecError::TooDeep {
            max: limits::MAX_DETAIL_DEPTH,
        }
    } else {
        other
    }
}

fn bincode_error(e: bincode::ErrorKind) -> CodecError {
    match e {
        bincode::ErrorKind::InvalidUtf8Encoding(e) => CodecError::InvalidText {
            field: "a string".into(),
            detail: format!("is not valid UTF-8 ({e})"),
        },
        e => too_deep_or(CodecError::Malformed {
            encoding: "bincode",
            detail: e.to_string(),
        }),
    }
}

fn json_error(e: serde_json::Error) -> CodecError {
    let detail = e.to_string();
    if ["surrogate", "hex escape", "invalid unicode code point"]
        .iter()
        .any(|m| detail.contains(m))
    {
        return CodecError::InvalidText {
            field: "a string".into(),
            detail: format!("is not valid Unicode ({detail})"),
        };
    }
    if detail.starts_with("recursion limit exceeded") {
        return CodecError::TooDeep {
            max: limits::MAX_DETAIL_DEPTH,
        };
    }
    too_deep_or(CodecError::Malformed {
        encoding: "json",
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_parse_and_print() {
        for enc in [Encoding::Bincode, Encoding::Json] {
            let ct = ContentType::current(enc);
            assert_eq!(ct.to_string().parse::<ContentType>(), Ok(ct));
        }
        assert_eq!(
            "application/vnd.telemesh.snapshot.v1+json; charset=utf-8".parse::<ContentType>(),
            Ok(ContentType::current(Encoding::Json))
        );
        assert!(matches!(
            "application/json".parse::<ContentType>(),
            Err(CodecError::UnknownContentType(_))
        ));
        assert!(matches!(
            "application/vnd.telemesh.snapshot.vX+json".parse::<ContentType>(),
            Err(CodecError::UnknownContentType(_))
        ));
    }

    #[test]
    fn decode_rejects_bad_input_with_typed_errors() {
        assert_eq!(decode(None, b"{}"), Err(CodecError::MissingContentType));
        assert_eq!(
            decode(Some("application/vnd.telemesh.snapshot.v2+json"), b"{}"),
            Err(CodecError::UnsupportedVersion(2))
        );
        let garbage = [0xffu8; 64];
        for ct in [
            ContentType::current(Encoding::Bincode),
            ContentType::current(Encoding::Json),
        ] {
            let err = decode(Some(&ct.to_string()), &garbage).unwrap_err();
            assert_eq!(err.class(), "malformed", "{err}");
        }
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            decode(Some("application/vnd.telemesh.snapshot.v1+json"), &huge),
            Err(CodecError::Oversized { .. })
        ));
    }
}
