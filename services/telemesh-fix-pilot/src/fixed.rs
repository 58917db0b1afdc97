//! Owns [`Fixed`], the exact decimal every quantity and price is held in (eight decimal
//! places in an `i64`): FIX values are compared exactly, never as `f64`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A decimal with eight fractional digits, e.g. a FIX `Qty` or `Price`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed(i64);

/// Why a string is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFixedError {
    #[error("empty number")]
    Empty,
    #[error("{0:?} is not a decimal number")]
    NotANumber(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

impl Fixed {
    /// Units per 1.
    pub const SCALE: i64 = 100_000_000;
    const DIGITS: usize = 8;
    pub const ZERO: Fixed = Fixed(0);

    /// The value `units / 10^8`.
    pub const fn from_units(units: i64) -> Self {
        Fixed(units)
    }

    /// A whole number.
    pub const fn from_int(n: i64) -> Self {
        Fixed(n.saturating_mul(Self::SCALE))
    }

    pub const fn units(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `|self - other|`, saturating.
    pub fn abs_diff(self, other: Fixed) -> Fixed {
        Fixed(self.0.saturating_sub(other.0).saturating_abs())
    }

    pub fn saturating_add(self, other: Fixed) -> Fixed {
        Fixed(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Fixed) -> Fixed {
        Fixed(self.0.saturating_sub(other.0))
    }

    /// `self * n`, saturating.
    pub fn times(self, n: u32) -> Fixed {
        Fixed(self.0.saturating_mul(i64::from(n)))
    }

    /// `self * other` as `f64` (notional), for telemetry only.
    pub fn mul_f64(self, other: Fixed) -> f64 {
        self.to_f64() * other.to_f64()
    }

    /// The nearest `f64`, for telemetry only.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Parses `[-]digits[.digits]`; digits past the eighth decimal are truncated.
    pub fn parse(text: &str) -> Result<Fixed, ParseFixedError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(ParseFixedError::Empty);
        }
        let bad = || ParseFixedError::NotANumber(text.to_owned());
        let (negative, digits) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let overflow = || ParseFixedError::Overflow(text.to_owned());
        let mut units: i64 = 0;
        for b in int_part.bytes() {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or_else(overflow)?;
        }
        units = units.checked_mul(Self::SCALE).ok_or_else(overflow)?;
        let mut scale = Self::SCALE / 10;
        for b in frac_part.bytes().take(Self::DIGITS) {
            units += i64::from(b - b'0') * scale;
            scale /= 10;
        }
        Ok(Fixed(if negative { -units } else { units }))
    }
}

impl FromStr for Fixed {
    type Err = ParseFixedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fixed::parse(s)
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = Self::SCALE.unsigned_abs();
        let (int, frac) = (abs / scale, abs % scale);
        if frac == 0 {
            write!(f, "{sign}{int}")
        } else {
            let frac = format!("{frac:08}");
            write!(f, "{sign}{int}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Accepts a string (`"10.5"`) or a JSON/TOML number (`10.5`, read through its shortest
/// decimal form).
impl<'de> Deserialize<'de> for Fixed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Repr::deserialize(d)? {
            Repr::Text(s) => s,
            Repr::Int(i) => i.to_string(),
            Repr::Float(f) if f.is_finite() => f.to_string(),
            Repr::Float(f) => {
                return Err(serde::de::Error::custom(format!(
                    "{f} is not a decimal number"
                )))
            }
        };
        Fixed::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(
            Fixed::parse("10.5").unwrap(),
            Fixed::from_units(1_050_000_000)
        );
        assert_eq!(
            Fixed::parse("10.50").unwrap(),
            Fixed::parse("10.5").unwrap()
        );
        assert_eq!(Fixed::parse("-0.00000001").unwrap().units(), -1);
        assert_eq!(Fixed::parse(".5").unwrap().to_string(), "0.5");
        assert_eq!(Fixed::parse("100").unwrap().to_string(), "100");
        assert_eq!(
            Fixed::parse("1.123456789").unwrap().to_string(),
            "1.12345678"
        );
        assert_eq!(Fixed::parse("-2.25").unwrap().to_string(), "-2.25");
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for bad in ["abc", "1e5", "1.2.3", "-", ".", "NaN", "12a", "1 0"] {
            assert!(Fixed::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Fixed::parse("  "), Err(ParseFixedError::Empty));
        assert!(matches!(
            Fixed::parse("99999999999999999999"),
            Err(ParseFixedError::Overflow(_))
        ));
    }

    #[test]
    fn arithmetic_is_exact() {
        let a = Fixed::parse("10.5").unwrap();
        let b = Fixed::parse("10.4999").unwrap();
        assert_eq!(a.abs_diff(b), Fixed::parse("0.0001").unwrap());
        assert_eq!(
            Fixed::parse("0.0001").unwrap().times(3),
            Fixed::parse("0.0003").unwrap()
        );
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"10.5\"");
        assert_eq!(serde_json::from_str::<Fixed>("\"10.5\"").unwrap(), a);
        assert_eq!(serde_json::from_str::<Fixed>("10.5").unwrap(), a);
        assert_eq!(
            serde_json::from_str::<Fixed>("3").unwrap(),
            Fixed::from_int(3)
        );
        assert!(serde_json::from_str::<Fixed>("\"x\"").is_err());
    }
}
