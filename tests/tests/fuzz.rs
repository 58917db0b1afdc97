//! Fuzz targets on the stable toolchain (see `telemesh_integration_tests::fuzz`): the snapshot
//! decoders (bincode and JSON envelope) and the FIX pilot's parsing of execution reports
//! (FIX tag=value fields and the JSON form), order requests and decimals. Every input must be
//! answered with a value or a typed error: no panic, no stack overflow.
//! `deploy/local/fuzz SECONDS` runs each target for that long.

use telemesh_core::codec;
use telemesh_fix_pilot::gateway::OrderRequest;
use telemesh_fix_pilot::report::{self, tags, JsonFields};
use telemesh_fix_pilot::Fixed;
use telemesh_integration_tests::fuzz::fuzz;

const BINCODE: &str = "application/vnd.telemesh.snapshot.v1+bincode";
const JSON: &str = "application/vnd.telemesh.snapshot.v1+json";

fn decode(content_type: &str, bytes: &[u8]) {
    if let Ok(snapshot) = codec::decode(Some(content_type), bytes) {
        // what decodes must encode again: the aggregator journals its JSON form
        let encoding = if content_type == BINCODE {
            telemesh_core::Encoding::Bincode
        } else {
            telemesh_core::Encoding::Json
        };
        codec::encode(&snapshot, encoding).expect("a decoded snapshot re-encodes");
    }
}

#[test]
fn fuzz_decode_bincode() {
    fuzz("decode_bincode", |bytes| decode(BINCODE, bytes));
}

#[test]
fn fuzz_decode_json() {
    fuzz("decode_json", |bytes| decode(JSON, bytes));
}

/// FIX tag=value fields separated by SOH (or `|`), as the session adapter hands them over.
fn fix_fields(bytes: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(bytes)
        .split(['\u{1}', '|'])
        .filter_map(|field| {
            let (tag, value) = field.split_once('=')?;
            Some((tag.trim().parse().ok()?, value.to_owned()))
        })
        .collect()
}

#[test]
fn fuzz_fix_parse() {
    fuzz("fix_parse", |bytes| {
        let fields = fix_fields(bytes);
        let _ = report::normalize(&fields, tags::ON_BEHALF_OF_COMP_ID);
        if let Ok(fields) = JsonFields::parse(bytes) {
            let _ = fields.report();
        }
        let _ = OrderRequest::parse(bytes);
        let text = String::from_utf8_lossy(bytes);
        for token in text.split(['\u{1}', '|', '=', ',', ' ']) {
            let _ = Fixed::parse(token);
        }
    });
}
