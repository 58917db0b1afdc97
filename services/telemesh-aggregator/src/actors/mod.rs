//! Owns the aggregator's actix actors: [`journal::JournalActor`] (the only writer of the
//! journal), [`summary::SummaryActor`] (the latest state behind the summary API) and
//! [`alert::AlertActor`] (alert lifecycle and paging).

pub mod alert;
pub mod journal;
pub mod summary;
