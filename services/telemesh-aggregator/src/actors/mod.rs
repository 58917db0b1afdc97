//! Owns the aggregator's actix actors: [`journal::JournalActor`] (the only writer of the
//! journal) and [`summary::SummaryActor`] (the latest state behind the summary API). The alert
//! actor lives in `telemesh-alerting`.

pub mod journal;
pub mod summary;
