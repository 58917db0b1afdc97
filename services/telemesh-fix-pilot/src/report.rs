//! Owns [`ExecReport`], the engine-free execution report the reconciler and order model see,
//! and its validation: [`normalize`] reads the fields of any [`FieldSource`] (a FIX message
//! through the session adapter, a JSON object from Kafka, a test vector) and either returns a
//! report or a [`Rejection`] naming why. A rejection is counted and shown; it never stops a
//! session or the reconciler.
//!
//! The JSON form (what the pilot publishes on the executions topic and what a platform with
//! its own gateway feeds in) is the serde form of [`ExecReport`]: decimals as strings, FIX
//! codes as strings (`"F"`, `"2"`, `"1"`; words such as `"filled"` are accepted on input).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codes::{ExecType, OrdStatus, Side, Status};
use crate::fixed::Fixed;

/// FIX 4.4 tag numbers the pilot reads or writes.
pub mod tags {
    pub const ACCOUNT: u32 = 1;
    pub const AVG_PX: u32 = 6;
    pub const CL_ORD_ID: u32 = 11;
    pub const CUM_QTY: u32 = 14;
    pub const EXEC_ID: u32 = 17;
    pub const EXEC_REF_ID: u32 = 19;
    pub const HANDL_INST: u32 = 21;
    pub const LAST_PX: u32 = 31;
    pub const LAST_QTY: u32 = 32;
    pub const MSG_SEQ_NUM: u32 = 34;
    pub const MSG_TYPE: u32 = 35;
    pub const ORDER_ID: u32 = 37;
    pub const ORDER_QTY: u32 = 38;
    pub const ORD_STATUS: u32 = 39;
    pub const ORD_TYPE: u32 = 40;
    pub const ORIG_CL_ORD_ID: u32 = 41;
    pub const POSS_DUP_FLAG: u32 = 43;
    pub const PRICE: u32 = 44;
    pub const SIDE: u32 = 54;
    pub const SYMBOL: u32 = 55;
    pub const TEXT: u32 = 58;
    pub const TRANSACT_TIME: u32 = 60;
    pub const POSS_RESEND: u32 = 97;
    pub const ON_BEHALF_OF_COMP_ID: u32 = 115;
    pub const EXEC_TYPE: u32 = 150;
    pub const LEAVES_QTY: u32 = 151;

    /// The FIX name of a tag the pilot knows, for messages.
    pub fn name(tag: u32) -> &'static str {
        match tag {
            ACCOUNT => "Account",
            AVG_PX => "AvgPx",
            CL_ORD_ID => "ClOrdID",
            CUM_QTY => "CumQty",
            EXEC_ID => "ExecID",
            EXEC_REF_ID => "ExecRefID",
            LAST_PX => "LastPx",
            LAST_QTY => "LastQty",
            ORDER_ID => "OrderID",
            ORDER_QTY => "OrderQty",
            ORD_STATUS => "OrdStatus",
            ORIG_CL_ORD_ID => "OrigClOrdID",
            POSS_DUP_FLAG => "PossDupFlag",
            PRICE => "Price",
            SIDE => "Side",
            SYMBOL => "Symbol",
            TEXT => "Text",
            TRANSACT_TIME => "TransactTime",
            POSS_RESEND => "PossResend",
            ON_BEHALF_OF_COMP_ID => "OnBehalfOfCompID",
            EXEC_TYPE => "ExecType",
            LEAVES_QTY => "LeavesQty",
            _ => "custom",
        }
    }
}

/// Read access to the fields of one message by tag (header and body).
pub trait FieldSource {
    fn field(&self, tag: u32) -> Option<Cow<'_, str>>;
}

impl FieldSource for [(u32, String)] {
    fn field(&self, tag: u32) -> Option<Cow<'_, str>> {
        self.iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
    }
}

impl FieldSource for Vec<(u32, String)> {
    fn field(&self, tag: u32) -> Option<Cow<'_, str>> {
        self.as_slice().field(tag)
    }
}

/// One execution report (35=8) as the reconciler sees it: no engine types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecReport {
    pub exec_id: String,
    pub order_id: String,
    #[serde(default)]
    pub cl_ord_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_cl_ord_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_ref_id: Option<String>,
    pub exec_type: ExecType,
    pub ord_status: OrdStatus,
    pub side: Side,
    pub symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_qty: Option<Fixed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Fixed>,
    #[serde(default)]
    pub last_qty: Fixed,
    #[serde(default)]
    pub last_px: Fixed,
    pub cum_qty: Fixed,
    pub leaves_qty: Fixed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_px: Option<Fixed>,
    /// PossDupFlag (43): a retransmission under the same sequence number.
    #[serde(default)]
    pub poss_dup: bool,
    /// PossResend (97): may have been sent before under another sequence number.
    #[serde(default)]
    pub poss_resend: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Which session of the firm the execution belongs to, as the drop copy names it
    /// (OnBehalfOfCompID 115 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transact_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ExecReport {
    /// The canonical status after this report.
    pub fn status(&self) -> Status {
        Status::of(self.exec_type, self.ord_status, !self.cum_qty.is_zero())
    }
}

/// Why a message was not accepted as an execution report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    MissingTag(u32),
    UnknownExecType(String),
    UnknownOrdStatus(String),
    UnknownSide(String),
    NotANumber {
        tag: u32,
        value: String,
    },
    NegativeQuantity {
        tag: u32,
        value: String,
    },
    /// Not decodable at all (e.g. a Kafka payload that is not a JSON object).
    Malformed(String),
}

impl RejectReason {
    /// The counter key: one per kind of reason.
    pub fn key(&self) -> &'static str {
        match self {
            RejectReason::MissingTag(_) => "missing_tag",
            RejectReason::UnknownExecType(_) => "unknown_exec_type",
            RejectReason::UnknownOrdStatus(_) => "unknown_ord_status",
            RejectReason::UnknownSide(_) => "unknown_side",
            RejectReason::NotANumber { .. } => "not_a_number",
            RejectReason::NegativeQuantity { .. } => "negative_quantity",
            RejectReason::Malformed(_) => "malformed",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::MissingTag(tag) => {
                write!(f, "required tag {tag} ({}) is missing", tags::name(*tag))
            }
            RejectReason::UnknownExecType(v) => write!(f, "unknown ExecType (150) {v:?}"),
            RejectReason::UnknownOrdStatus(v) => write!(f, "unknown OrdStatus (39) {v:?}"),
            RejectReason::UnknownSide(v) => write!(f, "unknown Side (54) {v:?}"),
            RejectReason::NotANumber { tag, value } => {
                write!(
                    f,
                    "tag {tag} ({}) is not a number: {value:?}",
                    tags::name(*tag)
                )
            }
            RejectReason::NegativeQuantity { tag, value } => {
                write!(f, "tag {tag} ({}) is negative: {value:?}", tags::name(*tag))
            }
            RejectReason::Malformed(detail) => write!(f, "malformed report: {detail}"),
        }
    }
}

/// A message that was not accepted, with what identifies it when that much was readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub exec_id: Option<String>,
    pub cl_ord_id: Option<String>,
    pub msg_seq_num: Option<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some(e) = &self.exec_id {
            write!(f, " (ExecID {e})")?;
        }
        Ok(())
    }
}

fn text(src: &(impl FieldSource + ?Sized), tag: u32) -> Option<String> {
    src.field(tag)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn required(src: &(impl FieldSource + ?Sized), tag: u32) -> Result<String, RejectReason> {
    text(src, tag).ok_or(RejectReason::MissingTag(tag))
}

fn number(
    src: &(impl FieldSource + ?Sized),
    tag: u32,
    quantity: bool,
) -> Result<Option<Fixed>, RejectReason> {
    let Some(value) = text(src, tag) else {
        return Ok(None);
    };
    let parsed = Fixed::parse(&value).map_err(|_| RejectReason::NotANumber {
        tag,
        value: value.clone(),
    })?;
    if quantity && parsed.is_negative() {
        return Err(RejectReason::NegativeQuantity { tag, value });
    }
    Ok(Some(parsed))
}

fn required_number(
    src: &(impl FieldSource + ?Sized),
    tag: u32,
    quantity: bool,
) -> Result<Fixed, RejectReason> {
    number(src, tag, quantity)?.ok_or(RejectReason::MissingTag(tag))
}

fn flag(src: &(impl FieldSource + ?Sized), tag: u32) -> bool {
    src.field(tag)
        .is_some_and(|v| matches!(v.trim(), "Y" | "y" | "true" | "1"))
}

/// Validates and reads an execution report. `source_tag` is the tag naming the originating
/// session on a drop copy (see [`ExecReport::source`]).
pub fn normalize(
    src: &(impl FieldSource + ?Sized),
    source_tag: u32,
) -> Result<ExecReport, Rejection> {
    read(src, source_tag).map_err(|reason| Rejection {
        reason,
        exec_id: text(src, tags::EXEC_ID),
        cl_ord_id: text(src, tags::CL_ORD_ID),
        msg_seq_num: text(src, tags::MSG_SEQ_NUM),
    })
}

fn read(src: &(impl FieldSource + ?Sized), source_tag: u32) -> Result<ExecReport, RejectReason> {
    let exec_id = required(src, tags::EXEC_ID)?;
    let order_id = required(src, tags::ORDER_ID)?;
    let exec_type_text = required(src, tags::EXEC_TYPE)?;
    let exec_type =
        ExecType::parse(&exec_type_text).ok_or(RejectReason::UnknownExecType(exec_type_text))?;
    let ord_status_text = required(src, tags::ORD_STATUS)?;
    let ord_status = OrdStatus::parse(&ord_status_text)
        .ok_or(RejectReason::UnknownOrdStatus(ord_status_text))?;
    let side_text = required(src, tags::SIDE)?;
    let side = Side::parse(&side_text).ok_or(RejectReason::UnknownSide(side_text))?;
    let symbol = required(src, tags::SYMBOL)?;
    let cum_qty = required_number(src, tags::CUM_QTY, true)?;
    let leaves_qty = required_number(src, tags::LEAVES_QTY, true)?;
    let moves_quantity = matches!(exec_type, ExecType::Trade | ExecType::TradeCorrect);
    let (last_qty, last_px) = if moves_quantity {
        (
            required_number(src, tags::LAST_QTY, true)?,
            required_number(src, tags::LAST_PX, false)?,
        )
    } else {
        (
            number(src, tags::LAST_QTY, true)?.unwrap_or_default(),
            number(src, tags::LAST_PX, false)?.unwrap_or_default(),
        )
    };
    let exec_ref_id = text(src, tags::EXEC_REF_ID);
    if matches!(exec_type, ExecType::TradeCorrect | ExecType::TradeCancel) && exec_ref_id.is_none()
    {
        return Err(RejectReason::MissingTag(tags::EXEC_REF_ID));
    }
    Ok(ExecReport {
        exec_id,
        order_id,
        cl_ord_id: text(src, tags::CL_ORD_ID).unwrap_or_default(),
        orig_cl_ord_id: text(src, tags::ORIG_CL_ORD_ID),
        exec_ref_id,
        exec_type,
        ord_status,
        side,
        symbol,
        order_qty: number(src, tags::ORDER_QTY, true)?,
        price: number(src, tags::PRICE, false)?,
        last_qty,
        last_px,
        cum_qty,
        leaves_qty,
        avg_px: number(src, tags::AVG_PX, false)?,
        poss_dup: flag(src, tags::POSS_DUP_FLAG),
        poss_resend: flag(src, tags::POSS_RESEND),
        account: text(src, tags::ACCOUNT),
        source: text(src, source_tag),
        transact_time: text(src, tags::TRANSACT_TIME),
        text: text(src, tags::TEXT),
    })
}

/// A JSON object in the [`ExecReport`] schema, read field by field so a bad report is a
/// [`Rejection`] with the same reasons as a FIX message.
#[derive(Debug)]
pub struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl JsonFields {
    /// The JSON name of a tag in the [`ExecReport`] schema.
    fn key(tag: u32) -> Option<&'static str> {
        Some(match tag {
            tags::ACCOUNT => "account",
            tags::AVG_PX => "avg_px",
            tags::CL_ORD_ID => "cl_ord_id",
            tags::CUM_QTY => "cum_qty",
            tags::EXEC_ID => "exec_id",
            tags::EXEC_REF_ID => "exec_ref_id",
            tags::LAST_PX => "last_px",
            tags::LAST_QTY => "last_qty",
            tags::ORDER_ID => "order_id",
            tags::ORDER_QTY => "order_qty",
            tags::ORD_STATUS => "ord_status",
            tags::ORIG_CL_ORD_ID => "orig_cl_ord_id",
            tags::POSS_DUP_FLAG => "poss_dup",
            tags::PRICE => "price",
            tags::SIDE => "side",
            tags::SYMBOL => "symbol",
            tags::TEXT => "text",
            tags::TRANSACT_TIME => "transact_time",
            tags::POSS_RESEND => "poss_resend",
            tags::EXEC_TYPE => "exec_type",
            tags::LEAVES_QTY => "leaves_qty",
            _ => return None,
        })
    }

    /// The tag the source field maps to in JSON (`source`), whatever tag FIX uses.
    pub const SOURCE_TAG: u32 = u32::MAX;

    /// Parses a JSON payload; anything but an object is malformed.
    pub fn parse(payload: &[u8]) -> Result<Self, Rejection> {
        let malformed = |detail: String| Rejection {
            reason: RejectReason::Malformed(detail),
            exec_id: None,
            cl_ord_id: None,
            msg_seq_num: None,
        };
        match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(serde_json::Value::Object(map)) => Ok(JsonFields(map)),
            Ok(_) => Err(malformed("expected a JSON object".into())),
            Err(e) => Err(malformed(format!("not JSON: {e}"))),
        }
    }

    /// Reads the report (see [`normalize`]).
    pub fn report(&self) -> Result<ExecReport, Rejection> {
        normalize(self, Self::SOURCE_TAG)
    }
}

impl FieldSource for JsonFields {
    fn field(&self, tag: u32) -> Option<Cow<'_, str>> {
        let key = if tag == Self::SOURCE_TAG {
            "source"
        } else {
            Self::key(tag)?
        };
        match self.0.get(key)? {
            serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "Y" } else { "N" })),
            serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
            serde_json::Value::Null => None,
            other => Some(Cow::Owned(other.to_string())),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn fill_fields() -> Vec<(u32, String)> {
        [
            (35, "8"),
            (34, "12"),
            (17, "E1"),
            (37, "O1"),
            (11, "C1"),
            (150, "F"),
            (39, "2"),
            (54, "1"),
            (55, "AAPL"),
            (38, "100"),
            (44, "10.5"),
            (32, "100"),
            (31, "10.5"),
            (14, "100"),
            (151, "0"),
            (6, "10.5"),
            (115, "PILOT"),
            (5979, "custom venue tag"),
        ]
        .into_iter()
        .map(|(t, v)| (t, v.to_owned()))
        .collect()
    }

    fn without(tag: u32) -> Vec<(u32, String)> {
        fill_fields()
            .into_iter()
            .filter(|(t, _)| *t != tag)
            .collect()
    }

    fn with(tag: u32, value: &str) -> Vec<(u32, String)> {
        let mut f = without(tag);
        f.push((tag, value.to_owned()));
        f
    }

    #[test]
    fn a_complete_fill_normalizes_and_custom_tags_are_ignored() {
        let r = normalize(&fill_fields(), tags::ON_BEHALF_OF_COMP_ID).unwrap();
        assert_eq!(r.exec_id, "E1");
        assert_eq!(r.exec_type, ExecType::Trade);
        assert_eq!(r.status(), Status::Filled);
        assert_eq!(r.last_px, Fixed::parse("10.5").unwrap());
        assert_eq!(r.source.as_deref(), Some("PILOT"));
        assert!(!r.poss_dup);
        let r = normalize(&with(43, "Y"), tags::ON_BEHALF_OF_COMP_ID).unwrap();
        assert!(r.poss_dup);
    }

    #[test]
    fn bad_reports_are_rejected_with_their_reason() {
        let cases = [
            (
                without(17),
                "missing_tag",
                "required tag 17 (ExecID) is missing",
            ),
            (
                with(150, "Z"),
                "unknown_exec_type",
                "unknown ExecType (150) \"Z\"",
            ),
            (
                with(39, "X"),
                "unknown_ord_status",
                "unknown OrdStatus (39) \"X\"",
            ),
            (with(54, "0"), "unknown_side", "unknown Side (54) \"0\""),
            (
                with(32, "ten"),
                "not_a_number",
                "tag 32 (LastQty) is not a number: \"ten\"",
            ),
            (
                with(14, "-5"),
                "negative_quantity",
                "tag 14 (CumQty) is negative: \"-5\"",
            ),
            (
                without(31),
                "missing_tag",
                "required tag 31 (LastPx) is missing",
            ),
        ];
        for (fields, key, text) in cases {
            let rejection = normalize(&fields, tags::ON_BEHALF_OF_COMP_ID).unwrap_err();
            assert_eq!(rejection.reason.key(), key);
            assert_eq!(rejection.reason.to_string(), text);
        }
        let rejection = normalize(&without(14), tags::ON_BEHALF_OF_COMP_ID).unwrap_err();
        assert_eq!(rejection.exec_id.as_deref(), Some("E1"));
        assert_eq!(rejection.msg_seq_num.as_deref(), Some("12"));
        // a bust must say which execution it busts
        let bust = normalize(&with(150, "H"), tags::ON_BEHALF_OF_COMP_ID).unwrap_err();
        assert_eq!(bust.reason, RejectReason::MissingTag(19));
    }

    #[test]
    fn an_ack_needs_no_last_qty_or_px() {
        let fields: Vec<(u32, String)> = with(150, "0")
            .into_iter()
            .filter(|(t, _)| *t != 31 && *t != 32)
            .collect();
        let r = normalize(&fields, tags::ON_BEHALF_OF_COMP_ID).unwrap();
        assert!(r.last_qty.is_zero());
    }

    #[test]
    fn json_round_trips_through_the_same_validation() {
        let r = normalize(&fill_fields(), tags::ON_BEHALF_OF_COMP_ID).unwrap();
        let json = serde_json::to_vec(&r).unwrap();
        let back = JsonFields::parse(&json).unwrap().report().unwrap();
        assert_eq!(back, r);
        // words and numbers are accepted; bad numbers are rejected like FIX
        let platform = br#"{"exec_id":"E9","order_id":"O9","cl_ord_id":"C9","exec_type":"trade","ord_status":"FILLED","side":"buy","symbol":"MSFT","last_qty":5,"last_px":"1.25","cum_qty":"5","leaves_qty":0}"#;
        let r = JsonFields::parse(platform).unwrap().report().unwrap();
        assert_eq!(r.status(), Status::Filled);
        assert_eq!(r.last_qty, Fixed::from_int(5));
        let bad = br#"{"exec_id":"E9","order_id":"O9","exec_type":"F","ord_status":"2","side":"1","symbol":"X","last_qty":"x","last_px":"1","cum_qty":"5","leaves_qty":"0"}"#;
        assert_eq!(
            JsonFields::parse(bad)
                .unwrap()
                .report()
                .unwrap_err()
                .reason
                .key(),
            "not_a_number"
        );
        assert_eq!(
            JsonFields::parse(b"[1]").unwrap_err().reason.key(),
            "malformed"
        );
        assert_eq!(
            JsonFields::parse(b"{").unwrap_err().reason.key(),
            "malformed"
        );
    }
}
