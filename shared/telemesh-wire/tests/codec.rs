//! Pins the snapshot envelope v1 encodings with golden files and checks the round trip of
//! both codecs on arbitrary snapshots. Run with `TELEMESH_BLESS=1` to rewrite the golden
//! files after an intended change (and bump the envelope version if the change is breaking).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use telemesh_wire::codec::{self, ContentType, Encoding};
use telemesh_wire::{Component, DetailValue, Grade, Snapshot, Source};
use uuid::Uuid;

fn golden_snapshot() -> Snapshot {
    let mut s = Snapshot {
        id: Uuid::parse_str("01938a6e-7c00-7000-8000-000000000001").unwrap(),
        kind: "telemetry.kafka.readiness".into(),
        source: Source::new("kafka-readiness", "pod-a"),
        generated_at: Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap(),
        status: Grade::Ok,
        summary: "1 of 3 components warn".into(),
        components: vec![],
        metrics: BTreeMap::new(),
        markdown: String::new(),
    };
    s.push(
        Component::new("connection", Grade::Ok, "2 of 2 brokers answered")
            .detail("brokers", vec![1i64, 2]),
    );
    s.push(
        Component::new("consumer_lag", Grade::Warn, "total lag 1500 > 1000")
            .detail("total_lag", 1500i64)
            .detail("ratio", 0.25)
            .detail("group", "telemesh-aggregator")
            .detail("stalled", false)
            .detail("last_error", DetailValue::Null)
            .detail(
                "partitions",
                DetailValue::Map(BTreeMap::from([(
                    "telemetry.kafka.readiness/0".to_owned(),
                    DetailValue::Int(1500),
                )])),
            ),
    );
    s.push(Component::new("topics", Grade::Ok, "6 of 6 topics exist"));
    s.metric("total_lag", 1500.0);
    s.metric("brokers_up", 2.0);
    s.markdown = s.render_markdown("Kafka readiness");
    s
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_golden(encoding: Encoding, file: &str) {
    let snapshot = golden_snapshot();
    let (bytes, content_type) = codec::encode(&snapshot, encoding).unwrap();
    assert_eq!(content_type, ContentType::current(encoding));
    let path = golden_path(file);
    if std::env::var_os("TELEMESH_BLESS").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; run with TELEMESH_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        bytes == golden,
        "{} changed: the v1 wire format must not change (bless only with a new envelope version)",
        path.display()
    );
    // the golden bytes decode to the same snapshot: old producers stay readable
    let decoded = codec::decode(Some(&content_type.to_string()), &golden).unwrap();
    assert_eq!(decoded, snapshot);
}

#[test]
fn json_encoding_matches_golden_file() {
    check_golden(Encoding::Json, "snapshot_v1.json");
}

#[test]
fn bincode_encoding_matches_golden_file() {
    check_golden(Encoding::Bincode, "snapshot_v1.bincode");
}

#[test]
fn bincode_golden_decodes_with_plain_bincode_deserialize() {
    // downstream consumers may use the bincode 1.3 default functions directly
    let golden = std::fs::read(golden_path("snapshot_v1.bincode")).unwrap();
    let decoded: Snapshot = bincode::deserialize(&golden).unwrap();
    assert_eq!(decoded, golden_snapshot());
}

#[test]
fn truncated_payloads_are_malformed_not_panics() {
    let (bytes, ct) = codec::encode(&golden_snapshot(), Encoding::Bincode).unwrap();
    for cut in [0, 1, 17, bytes.len() / 2, bytes.len() - 1] {
        let err = codec::decode(Some(&ct.to_string()), &bytes[..cut]).unwrap_err();
        assert_eq!(err.class(), "malformed");
    }
}

fn grade() -> impl Strategy<Value = Grade> {
    prop_oneof![Just(Grade::Ok), Just(Grade::Warn), Just(Grade::Fail)]
}

fn detail() -> impl Strategy<Value = DetailValue> {
    let leaf = prop_oneof![
        Just(DetailValue::Null),
        any::<bool>().prop_map(DetailValue::Bool),
        any::<i64>().prop_map(DetailValue::Int),
        (-1e12f64..1e12).prop_map(DetailValue::Float),
        "[^\\x00\\n]{0,12}".prop_map(DetailValue::Text),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(DetailValue::List),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4).prop_map(DetailValue::Map),
        ]
    })
}

fn component() -> impl Strategy<Value = Component> {
    (
        "[a-z_]{1,12}",
        grade(),
        "[^\\x00\\n]{0,40}",
        prop::collection::btree_map("[a-z_]{1,8}", detail(), 0..4),
    )
        .prop_map(|(name, status, summary, details)| Component {
            name,
            status,
            summary,
            details,
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u128>(),
        "[a-z.]{1,30}",
        "[a-z-]{1,12}",
        "[^\\x00\\n]{0,12}",
        0i64..4_102_444_800_000_000,
        "[^\\x00\\n]{0,60}",
        prop::collection::vec(component(), 0..5),
        prop::collection::btree_map("[^\\x00\\n]{1,10}", -1e15f64..1e15, 0..5),
        "[^\\x00\\n]{0,80}",
    )
        .prop_map(
            |(id, kind, service, instance, micros, summary, components, metrics, markdown)| {
                let status = Grade::worst(components.iter().map(|c| c.status));
                Snapshot {
                    id: Uuid::from_u128(id),
                    kind,
                    source: Source::new(service, instance),
                    generated_at: Utc.timestamp_micros(micros).unwrap(),
                    status,
                    summary,
                    components,
                    metrics,
                    markdown,
                }
            },
        )
}

proptest! {
    #[test]
    fn every_snapshot_round_trips_through_both_codecs(s in snapshot()) {
        for encoding in [Encoding::Bincode, Encoding::Json] {
            let (bytes, ct) = codec::encode(&s, encoding).unwrap();
            let back = codec::decode(Some(&ct.to_string()), &bytes).unwrap();
            prop_assert_eq!(&back, &s);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for ct in ["application/vnd.telemesh.snapshot.v1+bincode", "application/vnd.telemesh.snapshot.v1+json"] {
            let _ = codec::decode(Some(ct), &bytes);
        }
    }
}

// ---- hostile input: every violation is a typed error, never a panic or a stack overflow ----

const BINCODE: &str = "application/vnd.telemesh.snapshot.v1+bincode";
const JSON: &str = "application/vnd.telemesh.snapshot.v1+json";

/// A bincode payload whose one detail value is nested `depth` lists deep, built byte by byte
/// (encoding it through serde would recurse as deep as the decoder must not).
fn deep_bincode(depth: usize) -> Vec<u8> {
    const MARK: i64 = 0x4242_4242_4242_4242;
    let mut s = golden_snapshot();
    s.components[0].details = BTreeMap::from([("k".to_owned(), DetailValue::Int(MARK))]);
    let bytes = bincode::serialize(&s).unwrap();
    let mut needle = 2u32.to_le_bytes().to_vec(); // TaggedDetail::Int, then the i64
    needle.extend(MARK.to_le_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("marker in the payload");
    let mut out = bytes[..at].to_vec();
    for _ in 1..depth {
        out.extend(5u32.to_le_bytes()); // TaggedDetail::List
        out.extend(1u64.to_le_bytes()); // one element
    }
    out.extend(0u32.to_le_bytes()); // TaggedDetail::Null
    out.extend(&bytes[at + needle.len()..]);
    out
}

fn deep_json(depth: usize) -> Vec<u8> {
    let s = golden_snapshot();
    let mut v = serde_json::to_value(&s).unwrap();
    let nested = format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
    let marker = "\"@@DEEP@@\"";
    v["components"][0]["details"] = serde_json::json!({ "k": "@@DEEP@@" });
    serde_json::to_string(&v)
        .unwrap()
        .replace(marker, &nested)
        .into_bytes()
}

#[test]
fn nesting_is_limited_while_deserialising_for_both_codecs() {
    use telemesh_wire::limits::MAX_DETAIL_DEPTH;
    // at the limit: accepted
    assert!(codec::decode(Some(BINCODE), &deep_bincode(MAX_DETAIL_DEPTH)).is_ok());
    assert!(codec::decode(Some(JSON), &deep_json(MAX_DETAIL_DEPTH)).is_ok());
    // one over, and deep enough to overflow the stack without the guard (12 bytes a level)
    for depth in [MAX_DETAIL_DEPTH + 1, 70_000] {
        let err = codec::decode(Some(BINCODE), &deep_bincode(depth)).unwrap_err();
        assert_eq!(err.class(), "too_deep", "bincode depth {depth}: {err}");
        let err = codec::decode(Some(JSON), &deep_json(depth)).unwrap_err();
        assert_eq!(err.class(), "too_deep", "json depth {depth}: {err}");
    }
    // the guard unwinds: a normal snapshot decodes right after
    let (bytes, ct) = codec::encode(&golden_snapshot(), Encoding::Bincode).unwrap();
    assert!(codec::decode(Some(&ct.to_string()), &bytes).is_ok());
}

#[test]
fn text_the_database_refuses_is_a_typed_error() {
    let json = serde_json::to_string(&golden_snapshot()).unwrap();
    let cases = [
        // NUL in a value, in a detail key, in the service
        json.replacen("1 of 3 components warn", "bad\\u0000summary", 1),
        json.replacen("\"total_lag\":1500", "\"total\\u0000lag\":1500", 1),
        json.replacen("\"kafka-readiness\"", "\"kafka\\u0000readiness\"", 1),
        // unpaired surrogates, in a value and in a key
        json.replacen("1 of 3 components warn", "\\ud800", 1),
        json.replacen("\"total_lag\":1500", "\"\\udc00\":1500", 1),
    ];
    for (i, payload) in cases.iter().enumerate() {
        assert_ne!(payload, &json, "case {i} did not change the payload");
        let err = codec::decode(Some(JSON), payload.as_bytes()).unwrap_err();
        assert_eq!(err.class(), "invalid_text", "case {i}: {err}");
    }
    // bincode: a surrogate encoded as WTF-8 bytes is not UTF-8
    let mut s = golden_snapshot();
    s.summary = "XYZ".into();
    let mut bytes = bincode::serialize(&s).unwrap();
    let at = bytes.windows(3).position(|w| w == b"XYZ").unwrap();
    bytes[at..at + 3].copy_from_slice(&[0xed, 0xa0, 0x80]);
    let err = codec::decode(Some(BINCODE), &bytes).unwrap_err();
    assert_eq!(err.class(), "invalid_text", "{err}");
    // and the encoder refuses NUL too: producers learn before the aggregator does
    let mut s = golden_snapshot();
    s.summary = "a\0b".into();
    assert_eq!(
        codec::encode(&s, Encoding::Json).unwrap_err().class(),
        "invalid_text"
    );
}

#[test]
fn times_outside_the_database_range_are_typed_errors() {
    let json = serde_json::to_string(&golden_snapshot()).unwrap();
    for at in [
        "1969-12-31T23:59:59Z",
        "+10000-01-01T00:00:00Z",
        "-4713-01-01T00:00:00Z",
    ] {
        let payload = json.replacen("2026-11-28T03:00:00Z", at, 1);
        assert_ne!(payload, json);
        let err = codec::decode(Some(JSON), payload.as_bytes()).unwrap_err();
        assert_eq!(err.class(), "time_out_of_range", "{at}: {err}");
    }
}

#[test]
fn huge_maps_are_typed_errors() {
    let mut s = golden_snapshot();
    let big: BTreeMap<String, DetailValue> = (0..20_000)
        .map(|i| (format!("k{i}"), DetailValue::Int(i)))
        .collect();
    s.components[0].details = big;
    let bytes = bincode::serialize(&s).unwrap();
    let err = codec::decode(Some(BINCODE), &bytes).unwrap_err();
    assert_eq!(err.class(), "too_many", "{err}");
}
