//! Owns the aggregator's actix actors: [`journal::JournalActor`] (the only writer of the
//! journal) and [`summary::SummaryActor`] (the latest state behind the summary API).

pub mod journal;
pub mod summary;
