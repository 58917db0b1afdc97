//! Owns the PostgreSQL binary `COPY` encoding of journal rows (the write path streams a batch
//! straight into the journal table this way, or into the staging table when the batch holds a
//! replayed record).
//!
//! Format: <https://www.postgresql.org/docs/current/sql-copy.html> ("Binary Format"): a fixed
//! header, per row a 16-bit field count then each field as a 32-bit length (-1 = NULL) and its
//! binary send representation, and a 16-bit -1 trailer. Pure: no I/O, unit-tested below.

use chrono::{DateTime, TimeZone, Utc};

use super::{JournalError, JournalRecord};

/// The staging table's columns, in the order [`encode`] writes them.
pub(super) const STAGING_COLUMNS: &str = "id, kind, service, instance, status, generated_at, \
     received_at, summary, body, kafka_topic, kafka_partition, kafka_offset";

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
const FIELDS: i16 = 12;
/// jsonb's binary format version.
const JSONB_VERSION: u8 = 1;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
fn pg_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), JournalError> {
    let len = i32::try_from(bytes.len()).map_err(|_| {
        JournalError::Corrupt(format!(
            "a field of {} bytes is too large for the journal; the producer must send smaller snapshots",
            bytes.len()
        ))
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

fn put_text(out: &mut Vec<u8>, text: &str) -> Result<(), JournalError> {
    put_field(out, text.as_bytes())
}

fn put_timestamptz(out: &mut Vec<u8>, t: DateTime<Utc>) -> Result<(), JournalError> {
    let micros = (t - pg_epoch()).num_microseconds().ok_or_else(|| {
        JournalError::Corrupt(format!("timestamp {t} is out of the journal's range"))
    })?;
    put_field(out, &micros.to_be_bytes())
}

/// A batch in the binary `COPY` format, with where each record's JSON body lies in it (so the
/// body is encoded once: for the `COPY`, and read back for PGlite's `UNNEST` load).
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) data: Vec<u8>,
    bodies: Vec<std::ops::Range<usize>>,
}

impl Encoded {
    /// The JSON body of record `i`.
    pub(super) fn body(&self, i: usize) -> Result<&str, JournalError> {
        let range = self.bodies.get(i).cloned().unwrap_or_default();
        std::str::from_utf8(&self.data[range]).map_err(|e| JournalError::Corrupt(e.to_string()))
    }

    /// Every record's JSON body, in order.
    pub(super) fn bodies(&self) -> Result<Vec<&str>, JournalError> {
        (0..self.bodies.len()).map(|i| self.body(i)).collect()
    }
}

/// Encodes `records` as one complete binary `COPY` stream of [`STAGING_COLUMNS`]; each body's
/// JSON is written straight into the stream.
pub(super) fn encode(records: &[JournalRecord]) -> Result<Encoded, JournalError> {
    let mut out = Vec::with_capacity(21 + records.len() * 2560);
    let mut bodies = Vec::with_capacity(records.len());
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in records {
        let s = &r.snapshot;
        out.extend_from_slice(&FIELDS.to_be_bytes());
        put_field(&mut out, s.id.as_bytes())?;
        put_text(&mut out, &s.kind)?;
        put_text(&mut out, &s.source.service)?;
        put_text(&mut out, &s.source.instance)?;
        put_text(&mut out, s.status.as_str())?;
        put_timestamptz(&mut out, s.generated_at)?;
        put_timestamptz(&mut out, r.received_at)?;
        put_text(&mut out, &s.summary)?;
        // jsonb: the length (patched below), the format version, the JSON text
        let length_at = out.len();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.push(JSONB_VERSION);
        let start = out.len();
        serde_json::to_writer(&mut out, s).map_err(|e| JournalError::Corrupt(e.to_string()))?;
        let length = i32::try_from(out.len() - length_at - 4).map_err(|_| {
            JournalError::Corrupt(format!(
                "a body of {} bytes is too large for the journal; the producer must send smaller snapshots",
                out.len() - start
            ))
        })?;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        bodies.push(start..out.len());
        match &r.kafka {
            Some(k) => {
                put_text(&mut out, &k.topic)?;
                put_field(&mut out, &k.partition.to_be_bytes())?;
                put_field(&mut out, &k.offset.to_be_bytes())?;
            }
            None => {
                put_null(&mut out);
                put_null(&mut out);
                put_null(&mut out);
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(Encoded { data: out, bodies })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::KafkaCoords;
    use telemesh_core::{Component, Grade, Snapshot, Source};

    fn record(kafka: Option<KafkaCoords>, summary: &str) -> JournalRecord {
        let mut s = Snapshot::new(
            "telemetry.kafka.readiness",
            Source::new("kr", "i1"),
            Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap(),
        );
        s.push(Component::new("c", Grade::Ok, "fine"));
        s.summary = summary.to_owned();
        JournalRecord {
            snapshot: s,
            received_at: Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
            kafka,
        }
    }

    /// Reads the fields of each row back: a minimal decoder of the same format.
    fn decode(bytes: &[u8]) -> Vec<Vec<Option<Vec<u8>>>> {
        assert_eq!(&bytes[..11], SIGNATURE);
        let mut at = 19;
        let mut rows = Vec::new();
        loop {
            let n = i16::from_be_bytes([bytes[at], bytes[at + 1]]);
            at += 2;
            if n == -1 {
                assert_eq!(at, bytes.len(), "trailer is the last thing");
                return rows;
            }
            let mut row = Vec::new();
            for _ in 0..n {
                let len = i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
                at += 4;
                if len < 0 {
                    row.push(None);
                } else {
                    row.push(Some(bytes[at..at + len as usize].to_vec()));
                    at += len as usize;
                }
            }
            rows.push(row);
        }
    }

    #[test]
    fn rows_round_trip_through_the_binary_format() {
        let hostile = "tab\there \"quoted\" back\\slash\nnewline ünïcødé 🚨 \\N";
        let records = [
            record(None, hostile),
            record(
                Some(KafkaCoords {
                    topic: "t.telemetry.kafka.readiness".into(),
                    partition: i32::MAX,
                    offset: i64::MIN,
                }),
                "",
            ),
        ];
        let encoded = encode(&records).unwrap();
        let rows = decode(&encoded.data);
        assert_eq!(rows.len(), 2);
        for (row, r) in rows.iter().zip(&records) {
            assert_eq!(row.len(), FIELDS as usize);
            assert_eq!(row[0].as_deref(), Some(&r.snapshot.id.as_bytes()[..]));
            assert_eq!(row[7].as_deref(), Some(r.snapshot.summary.as_bytes()));
            // generated_at is one second after the PostgreSQL epoch, received_at one before
            assert_eq!(row[5].as_deref(), Some(&1_000_000i64.to_be_bytes()[..]));
            assert_eq!(row[6].as_deref(), Some(&(-1_000_000i64).to_be_bytes()[..]));
            let body = row[8].as_ref().unwrap();
            assert_eq!(body[0], JSONB_VERSION);
            let parsed: Snapshot = serde_json::from_slice(&body[1..]).unwrap();
            assert_eq!(parsed, r.snapshot);
            assert_eq!(
                encoded
                    .body(rows.iter().position(|x| x == row).unwrap())
                    .unwrap()
                    .as_bytes(),
                &body[1..],
                "the body read back is the one in the stream"
            );
        }
        assert_eq!(rows[0][9..], [None, None, None]);
        assert_eq!(rows[1][10].as_deref(), Some(&i32::MAX.to_be_bytes()[..]));
        assert_eq!(rows[1][11].as_deref(), Some(&i64::MIN.to_be_bytes()[..]));
    }

    #[test]
    fn an_empty_batch_is_header_and_trailer() {
        let bytes = encode(&[]).unwrap().data;
        assert_eq!(bytes.len(), 19 + 2);
        assert!(decode(&bytes).is_empty());
    }
}
