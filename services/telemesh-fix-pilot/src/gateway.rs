//! Owns the order-request schema of the gateway: the JSON the platform puts on
//! `[fix_pilot] orders_topic`, one request per message.
//!
//! ```json
//! {"type": "new", "cl_ord_id": "C1", "symbol": "AAPL", "side": "buy", "order_qty": "100", "price": "10.5"}
//! {"type": "cancel", "cl_ord_id": "C2", "orig_cl_ord_id": "C1"}
//! ```
//!
//! `side` is a FIX code (`"1"`) or a name (`"buy"`, `"sell"`, `"sell_short"`); quantities and
//! prices are decimal strings (numbers are accepted); `price` absent means a market order;
//! `account` is optional. Either kind may carry `"created_at"` (RFC 3339), the time the
//! platform created the request; the gateway measures the request's age from it (else from
//! the Kafka timestamp). Identifiers are at most [`MAX_ID_BYTES`] bytes and no text field may
//! hold a control character (SOH would split the FIX message).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::orders::NewOrder;

/// One order request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrderRequest {
    New(NewOrder),
    Cancel {
        cl_ord_id: String,
        orig_cl_ord_id: String,
    },
}

/// Why an order request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("order request is not valid JSON of the documented schema: {0}")]
    Schema(String),
    #[error("order request {0}: cl_ord_id is empty")]
    EmptyClOrdId(&'static str),
    #[error("new order {0}: order_qty must be positive")]
    BadQuantity(String),
    #[error("cancel {cl_ord_id}: no order with ClOrdID {orig_cl_ord_id}; cancel an order the pilot sent")]
    UnknownOrder {
        cl_ord_id: String,
        orig_cl_ord_id: String,
    },
    #[error("order {0}: the trading session is not configured or not started")]
    NoSession(String),
    #[error("order {cl_ord_id}: {detail}")]
    Send { cl_ord_id: String, detail: String },
    #[error("order {cl_ord_id} rejected ({reason}): {detail}")]
    Rejected {
        cl_ord_id: String,
        reason: &'static str,
        detail: String,
    },
}

/// The longest accepted ClOrdID / OrigClOrdID / symbol / account, in bytes.
pub const MAX_ID_BYTES: usize = 64;

fn check_text(field: &str, value: &str) -> Result<(), RequestError> {
    if value.len() > MAX_ID_BYTES {
        return Err(RequestError::Schema(format!(
            "{field} is {} bytes long; at most {MAX_ID_BYTES} are accepted",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(RequestError::Schema(format!(
            "{field} contains a control character (SOH would split the FIX message)"
        )));
    }
    Ok(())
}

impl OrderRequest {
    /// Parses and checks one request.
    pub fn parse(payload: &[u8]) -> Result<Self, RequestError> {
        Self::parse_with_time(payload).map(|(request, _)| request)
    }

    /// Parses and checks one request and its optional `created_at`.
    pub fn parse_with_time(payload: &[u8]) -> Result<(Self, Option<DateTime<Utc>>), RequestError> {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(payload).map_err(|e| RequestError::Schema(e.to_string()))?;
        let created_at = match object.remove("created_at") {
            None => None,
            Some(serde_json::Value::String(text)) => Some(
                DateTime::parse_from_rfc3339(&text)
                    .map_err(|e| {
                        RequestError::Schema(format!(
                            "created_at {text:?} is not an RFC 3339 time ({e}), e.g. 2026-11-29T10:00:00Z"
                        ))
                    })?
                    .with_timezone(&Utc),
            ),
            Some(other) => {
                return Err(RequestError::Schema(format!(
                    "created_at must be an RFC 3339 string, not {other}"
                )))
            }
        };
        let request: OrderRequest = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| RequestError::Schema(e.to_string()))?;
        match &request {
            OrderRequest::New(o) => {
                if o.cl_ord_id.trim().is_empty() {
                    return Err(RequestError::EmptyClOrdId("new"));
                }
                check_text("cl_ord_id", &o.cl_ord_id)?;
                check_text("symbol", &o.symbol)?;
                if let Some(account) = &o.account {
                    check_text("account", account)?;
                }
                if o.order_qty.is_negative() || o.order_qty.is_zero() {
                    return Err(RequestError::BadQuantity(o.cl_ord_id.clone()));
                }
                if o.price.is_some_and(|p| p.is_negative() || p.is_zero()) {
                    return Err(RequestError::Schema(format!(
                        "new order {}: price must be positive, or absent for a market order",
                        o.cl_ord_id
                    )));
                }
            }
            OrderRequest::Cancel {
                cl_ord_id,
                orig_cl_ord_id,
            } => {
                if cl_ord_id.trim().is_empty() {
                    return Err(RequestError::EmptyClOrdId("cancel"));
                }
                check_text("cl_ord_id", cl_ord_id)?;
                check_text("orig_cl_ord_id", orig_cl_ord_id)?;
            }
        }
        Ok((request, created_at))
    }

    /// The ClOrdID of the request.
    pub fn cl_ord_id(&self) -> &str {
        match self {
            OrderRequest::New(o) => &o.cl_ord_id,
            OrderRequest::Cancel { cl_ord_id, .. } => cl_ord_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Side;
    use crate::fixed::Fixed;

    #[test]
    fn the_documented_requests_parse() {
        let new = OrderRequest::parse(
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"buy","order_qty":"100","price":10.5}"#,
        )
        .unwrap();
        let OrderRequest::New(o) = new else {
            panic!("a new order")
        };
        assert_eq!(
            (o.side, o.order_qty, o.price),
            (
                Side::Buy,
                Fixed::from_int(100),
                Some(Fixed::parse("10.5").unwrap())
            )
        );
        let cancel =
            OrderRequest::parse(br#"{"type":"cancel","cl_ord_id":"C2","orig_cl_ord_id":"C1"}"#)
                .unwrap();
        assert_eq!(
            cancel,
            OrderRequest::Cancel {
                cl_ord_id: "C2".into(),
                orig_cl_ord_id: "C1".into()
            }
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for bad in [
            &br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"up","order_qty":"100"}"#[..],
            br#"{"type":"amend","cl_ord_id":"C1"}"#,
            br#"not json"#,
        ] {
            assert!(matches!(
                OrderRequest::parse(bad),
                Err(RequestError::Schema(_))
            ));
        }
        for hostile in [
            &br#"{"type":"new","cl_ord_id":"C\u00011","symbol":"AAPL","side":"1","order_qty":"1"}"#[..],
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AA\u0001PL","side":"1","order_qty":"1"}"#,
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"1","account":"a\nb"}"#,
            br#"{"type":"cancel","cl_ord_id":"C2","orig_cl_ord_id":"C\u00001"}"#,
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"1","price":"-1"}"#,
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"1","created_at":"yesterday"}"#,
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"1","created_at":17}"#,
            br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"99999999999999999999999"}"#,
            br#"["type","new"]"#,
            b"\xff\xfe",
            b"",
        ] {
            assert!(
                matches!(OrderRequest::parse(hostile), Err(RequestError::Schema(_))),
                "{}: {:?}",
                String::from_utf8_lossy(hostile),
                OrderRequest::parse(hostile)
            );
        }
        let long = format!(
            r#"{{"type":"new","cl_ord_id":"{}","symbol":"AAPL","side":"1","order_qty":"1"}}"#,
            "C".repeat(MAX_ID_BYTES + 1)
        );
        assert!(matches!(
            OrderRequest::parse(long.as_bytes()),
            Err(RequestError::Schema(_))
        ));
        let (request, created) = OrderRequest::parse_with_time(
            br#"{"type":"cancel","cl_ord_id":"C2","orig_cl_ord_id":"C1","created_at":"2026-11-29T10:00:00+01:00"}"#,
        )
        .unwrap();
        assert_eq!(request.cl_ord_id(), "C2");
        assert_eq!(
            created.map(|t| t.to_rfc3339()),
            Some("2026-11-29T09:00:00+00:00".to_owned())
        );
        let zero = br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"0"}"#;
        assert_eq!(
            OrderRequest::parse(zero),
            Err(RequestError::BadQuantity("C1".into()))
        );
    }
}
