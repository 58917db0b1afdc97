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
//! `account` is optional.

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
}

impl OrderRequest {
    /// Parses and checks one request.
    pub fn parse(payload: &[u8]) -> Result<Self, RequestError> {
        let request: OrderRequest =
            serde_json::from_slice(payload).map_err(|e| RequestError::Schema(e.to_string()))?;
        match &request {
            OrderRequest::New(o) => {
                if o.cl_ord_id.trim().is_empty() {
                    return Err(RequestError::EmptyClOrdId("new"));
                }
                if o.order_qty.is_negative() || o.order_qty.is_zero() {
                    return Err(RequestError::BadQuantity(o.cl_ord_id.clone()));
                }
            }
            OrderRequest::Cancel { cl_ord_id, .. } => {
                if cl_ord_id.trim().is_empty() {
                    return Err(RequestError::EmptyClOrdId("cancel"));
                }
            }
        }
        Ok(request)
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
        let zero = br#"{"type":"new","cl_ord_id":"C1","symbol":"AAPL","side":"1","order_qty":"0"}"#;
        assert_eq!(
            OrderRequest::parse(zero),
            Err(RequestError::BadQuantity("C1".into()))
        );
    }
}
