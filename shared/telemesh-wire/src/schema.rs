//! Owns the JSON Schema of the snapshot envelope v1 as a string (the file is
//! `docs/snapshot.schema.json`, next to the contract it describes).

/// The JSON Schema (draft 2020-12) of the JSON encoding of a snapshot.
pub const SNAPSHOT_SCHEMA: &str = include_str!("../../../docs/snapshot.schema.json");
