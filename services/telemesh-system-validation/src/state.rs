//! Owns [`ValidationState`]: what one gather knows — the newest report (from the file or an
//! upload), where and when it arrived, and the grades of earlier reports for reliability.

use chrono::{DateTime, Utc};
use telemesh_core::Grade;

use crate::report::Report;

/// Where a report came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(String),
    Upload,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "file {path}"),
            Origin::Upload => f.write_str("HTTP upload"),
        }
    }
}

/// One earlier report, as reliability needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub grade: Grade,
    pub success_rate: f64,
}

/// What one gather saw.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidationState {
    /// Configured, but no report has arrived yet (the file does not exist, nothing uploaded).
    NoReport { expected_at: Option<String> },
    /// The newest input could not be read as a report at all.
    Unreadable {
        origin: Origin,
        received_at: DateTime<Utc>,
        error: String,
    },
    /// A report, and the earlier ones (newest first, the current one excluded).
    Report {
        report: Box<Report>,
        origin: Origin,
        /// File modification time or upload time: the report's time when it has none.
        received_at: DateTime<Utc>,
        history: Vec<HistoryEntry>,
    },
}
