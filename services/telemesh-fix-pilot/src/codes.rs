//! Owns the FIX 4.4 code sets the pilot reads (ExecType 150, OrdStatus 39, Side 54) and the
//! one canonical order [`Status`] both are mapped to before anything is compared. Comparing
//! the raw codes with status words is the bug of the system we replace (DOMAINS.md quirk 4).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $word:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The FIX wire code.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),* }
            }

            /// The snake_case name shown in telemetry.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $word),* }
            }

            /// Parses the FIX wire code.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Parses the FIX code or the snake_case name (case-insensitive), for JSON input.
            pub fn parse(text: &str) -> Option<Self> {
                let t = text.trim();
                Self::from_code(t).or_else(|| {
                    let lower = t.to_ascii_lowercase().replace(['-', ' '], "_");
                    Self::ALL.iter().copied().find(|v| v.name() == lower)
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| serde::de::Error::custom(format!(
                    "unknown {} {text:?}", stringify!($name)
                )))
            }
        }
    };
}

code_enum! {
    /// ExecType (150) of FIX 4.4: the event an execution report describes.
    ExecType {
        New = "0", "new";
        DoneForDay = "3", "done_for_day";
        Canceled = "4", "canceled";
        Replaced = "5", "replaced";
        PendingCancel = "6", "pending_cancel";
        Stopped = "7", "stopped";
        Rejected = "8", "rejected";
        Suspended = "9", "suspended";
        PendingNew = "A", "pending_new";
        Calculated = "B", "calculated";
        Expired = "C", "expired";
        Restated = "D", "restated";
        PendingReplace = "E", "pending_replace";
        Trade = "F", "trade";
        TradeCorrect = "G", "trade_correct";
        TradeCancel = "H", "trade_cancel";
        OrderStatus = "I", "order_status";
    }
}

code_enum! {
    /// OrdStatus (39) of FIX 4.4: the state of the order after the event.
    OrdStatus {
        New = "0", "new";
        PartiallyFilled = "1", "partially_filled";
        Filled = "2", "filled";
        DoneForDay = "3", "done_for_day";
        Canceled = "4", "canceled";
        Replaced = "5", "replaced";
        PendingCancel = "6", "pending_cancel";
        Stopped = "7", "stopped";
        Rejected = "8", "rejected";
        Suspended = "9", "suspended";
        PendingNew = "A", "pending_new";
        Calculated = "B", "calculated";
        Expired = "C", "expired";
        AcceptedForBidding = "D", "accepted_for_bidding";
        PendingReplace = "E", "pending_replace";
    }
}

code_enum! {
    /// Side (54) of FIX 4.4.
    Side {
        Buy = "1", "buy";
        Sell = "2", "sell";
        BuyMinus = "3", "buy_minus";
        SellPlus = "4", "sell_plus";
        SellShort = "5", "sell_short";
        SellShortExempt = "6", "sell_short_exempt";
        Undisclosed = "7", "undisclosed";
        Cross = "8", "cross";
        CrossShort = "9", "cross_short";
    }
}

code_enum! {
    /// The canonical order status both sides are mapped to before comparing.
    Status {
        PendingNew = "pending_new", "pending_new";
        Working = "working", "working";
        PartiallyFilled = "partially_filled", "partially_filled";
        Filled = "filled", "filled";
        PendingCancel = "pending_cancel", "pending_cancel";
        PendingReplace = "pending_replace", "pending_replace";
        Canceled = "canceled", "canceled";
        Rejected = "rejected", "rejected";
        Expired = "expired", "expired";
        DoneForDay = "done_for_day", "done_for_day";
        Suspended = "suspended", "suspended";
        Stopped = "stopped", "stopped";
        Calculated = "calculated", "calculated";
    }
}

impl ExecType {
    /// Trade, correction or bust: an event that moves quantity.
    pub fn is_trade(self) -> bool {
        matches!(
            self,
            ExecType::Trade | ExecType::TradeCorrect | ExecType::TradeCancel
        )
    }

    /// Order-status and restatement reports describe state, not an event: they are kept out
    /// of execution matching (their ExecID may even be `0`).
    pub fn is_status_report(self) -> bool {
        matches!(self, ExecType::OrderStatus | ExecType::Restated)
    }
}

impl Status {
    /// Whether the order can still trade.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::PendingNew
                | Status::Working
                | Status::PartiallyFilled
                | Status::PendingCancel
                | Status::PendingReplace
                | Status::Suspended
                | Status::Stopped
        )
    }

    /// The canonical status of a report: OrdStatus (the state after the event) decides; the
    /// ExecType only refines the deprecated OrdStatus `Replaced`, which says nothing about
    /// fills, using CumQty.
    pub fn of(exec_type: ExecType, ord_status: OrdStatus, has_fills: bool) -> Status {
        match ord_status {
            OrdStatus::New | OrdStatus::AcceptedForBidding => Status::Working,
            OrdStatus::PartiallyFilled => Status::PartiallyFilled,
            OrdStatus::Filled => Status::Filled,
            OrdStatus::DoneForDay => Status::DoneForDay,
            OrdStatus::Canceled => Status::Canceled,
            OrdStatus::Replaced => match (exec_type, has_fills) {
                (_, true) => Status::PartiallyFilled,
                (_, false) => Status::Working,
            },
            OrdStatus::PendingCancel => Status::PendingCancel,
            OrdStatus::Stopped => Status::Stopped,
            OrdStatus::Rejected => Status::Rejected,
            OrdStatus::Suspended => Status::Suspended,
            OrdStatus::PendingNew => Status::PendingNew,
            OrdStatus::Calculated => Status::Calculated,
            OrdStatus::Expired => Status::Expired,
            OrdStatus::PendingReplace => Status::PendingReplace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_words_parse() {
        for e in ExecType::ALL {
            assert_eq!(ExecType::from_code(e.code()), Some(*e));
        }
        assert_eq!(ExecType::parse("F"), Some(ExecType::Trade));
        assert_eq!(ExecType::parse("Trade"), Some(ExecType::Trade));
        assert_eq!(
            ExecType::from_code("1"),
            None,
            "FIX 4.2 PartialFill is not a 4.4 ExecType"
        );
        assert_eq!(ExecType::from_code("Z"), None);
        assert_eq!(OrdStatus::parse("FILLED"), Some(OrdStatus::Filled));
        assert_eq!(
            OrdStatus::parse("partially-filled"),
            Some(OrdStatus::PartiallyFilled)
        );
        assert_eq!(Side::from_code("2"), Some(Side::Sell));
        assert_eq!(serde_json::to_string(&ExecType::Trade).unwrap(), "\"F\"");
        assert_eq!(
            serde_json::from_str::<OrdStatus>("\"filled\"").unwrap(),
            OrdStatus::Filled
        );
    }

    #[test]
    fn codes_and_words_meet_in_one_canonical_status() {
        // the quirk: "F" is not a substring of "FILLED"'s meaning; here both become `filled`
        assert_eq!(
            Status::of(ExecType::Trade, OrdStatus::Filled, true),
            Status::Filled
        );
        assert_eq!(
            Status::of(ExecType::Trade, OrdStatus::parse("FILLED").unwrap(), true),
            Status::Filled
        );
        assert_eq!(
            Status::of(ExecType::New, OrdStatus::New, false),
            Status::Working
        );
        assert_eq!(
            Status::of(ExecType::Replaced, OrdStatus::Replaced, true),
            Status::PartiallyFilled
        );
        assert_eq!(
            Status::of(ExecType::Replaced, OrdStatus::Replaced, false),
            Status::Working
        );
        assert!(Status::PartiallyFilled.is_open());
        assert!(!Status::Filled.is_open());
        assert!(ExecType::OrderStatus.is_status_report() && ExecType::Restated.is_status_report());
        assert!(ExecType::TradeCancel.is_trade() && !ExecType::New.is_trade());
    }
}
