//! Owns [`Grade`], the one status scale of telemesh (`ok` < `warn` < `fail`), and escalation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How healthy a snapshot or one of its components is. Ordered: `Ok < Warn < Fail`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    #[default]
    Ok,
    Warn,
    Fail,
}

impl Grade {
    /// Every grade, lowest first.
    pub const ALL: [Grade; 3] = [Grade::Ok, Grade::Warn, Grade::Fail];

    /// Raises `self` to `other` when `other` is worse; a grade never goes down by escalation.
    pub fn escalate(&mut self, other: Grade) {
        if other > *self {
            *self = other;
        }
    }

    /// The worst grade of an iterator, `Ok` when it is empty.
    pub fn worst<I: IntoIterator<Item = Grade>>(grades: I) -> Grade {
        grades.into_iter().max().unwrap_or(Grade::Ok)
    }

    /// The lowercase wire name (`ok`, `warn`, `fail`).
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Ok => "ok",
            Grade::Warn => "warn",
            Grade::Fail => "fail",
        }
    }

    /// The uppercase name used in Markdown tables (`OK`, `WARN`, `FAIL`).
    pub fn as_upper(self) -> &'static str {
        match self {
            Grade::Ok => "OK",
            Grade::Warn => "WARN",
            Grade::Fail => "FAIL",
        }
    }

    /// 0, 1, 2 for ok, warn, fail: the value of grade gauges.
    pub fn as_number(self) -> i64 {
        self as i64
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not `ok`, `warn` or `fail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown grade {0:?}: expected one of ok, warn, fail")]
pub struct UnknownGrade(pub String);

impl FromStr for Grade {
    type Err = UnknownGrade;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ok" => Ok(Grade::Ok),
            "warn" => Ok(Grade::Warn),
            "fail" => Ok(Grade::Fail),
            _ => Err(UnknownGrade(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_are_ordered_and_escalation_never_lowers() {
        assert!(Grade::Ok < Grade::Warn && Grade::Warn < Grade::Fail);
        let mut g = Grade::Warn;
        g.escalate(Grade::Ok);
        assert_eq!(g, Grade::Warn);
        g.escalate(Grade::Fail);
        assert_eq!(g, Grade::Fail);
        assert_eq!(Grade::worst([]), Grade::Ok);
        assert_eq!(
            Grade::worst([Grade::Ok, Grade::Fail, Grade::Warn]),
            Grade::Fail
        );
    }

    #[test]
    fn grades_parse_and_print_their_wire_names() {
        for g in Grade::ALL {
            assert_eq!(g.as_str().parse::<Grade>(), Ok(g));
            assert_eq!(g.as_upper().parse::<Grade>(), Ok(g));
        }
        assert!("pass".parse::<Grade>().is_err());
        assert_eq!(serde_json::to_string(&Grade::Warn).unwrap(), "\"warn\"");
    }
}
