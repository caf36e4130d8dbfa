//! Port of the reference's `stoq/tests/test_helpers.py` (8 tests, class
//! `TestHelpers`). The reference's `helpers.dumps` is
//! [`to_json_pretty`] / [`to_json_compact`] here; its hash helpers are
//! [`stoq_core::hashing`] (SHA-256) and the hash plugin.
//!
//! Not ported: `test_dict_merge` (`helpers.merge_dicts` has no counterpart:
//! nothing in this implementation merges dicts of lists).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;
use stoq_core::hashing::{hex, sha256};
use stoq_core::{now_iso8601, to_json_compact, to_json_pretty, ExtractedPayload};

/// `b'The quick brown fox'`, the reference's generic content.
const GENERIC: &[u8] = b"The quick brown fox";

/// Every kind of value the reference dumps serialises to non-empty text.
#[test]
fn test_dumps_types() {
    #[derive(Serialize)]
    struct Obj {
        a: i32,
    }
    let set: BTreeSet<i32> = [1, 2, 3].into_iter().collect();
    let outputs = [
        to_json_pretty(&vec![1, 2, 3]),
        to_json_pretty(&json!({"a": 1, "b": 2})),
        to_json_pretty(&set),
        // Times are ISO 8601 strings in the model (no datetime objects).
        to_json_pretty(&now_iso8601()),
        // Raw bytes only occur as payload content.
        to_json_pretty(&ExtractedPayload::new(&b"somebytes"[..])),
        to_json_pretty(&Obj { a: 1 }),
    ];
    for out in &outputs {
        assert!(!out.is_empty());
        serde_json::from_str::<serde_json::Value>(out).expect("valid JSON");
    }
    assert_eq!(outputs[2], "[\n    1,\n    2,\n    3\n]");
    assert!(
        outputs[4].contains("\"content\": \"somebytes\""),
        "{}",
        outputs[4]
    );
    assert_eq!(outputs[5], "{\n    \"a\": 1\n}");
}

/// Bytes serialise as UTF-8 text and non-ASCII text is kept as is.
#[test]
fn test_dumps_unicode() {
    let value = to_json_compact(&ExtractedPayload::new(&b"value"[..]));
    assert!(value.starts_with(r#"{"content":"value","#), "{value}");
    let cat = to_json_compact(&ExtractedPayload::new(&b"hi\xe7\x8c\xab"[..]));
    assert!(cat.starts_with(r#"{"content":"hi猫","#), "{cat}");
    assert_eq!(
        to_json_compact(&json!({"key": "hi猫"})),
        r#"{"key":"hi猫"}"#
    );
    // DEVIATION (E12): bytes that are not UTF-8 become U+FFFD (the reference guesses
    // a charset, with environment-dependent output).
    let bad = to_json_compact(&ExtractedPayload::new(&b"caf\xe9"[..]));
    assert!(bad.starts_with("{\"content\":\"caf\u{fffd}\","), "{bad}");
}

/// Compact output is one line, keys in insertion order.
#[test]
fn test_dumps_compactly() {
    // DEVIATION: no spaces after `,` and `:` (the reference prints
    // `{"a": 1, "b": 2}`); same content, one line.
    assert_eq!(
        to_json_compact(&json!({"a": 1, "b": 2})),
        r#"{"a":1,"b":2}"#
    );
    assert_eq!(
        to_json_compact(&json!({"b": 2, "a": 1})),
        r#"{"b":2,"a":1}"#
    );
    assert_eq!(
        to_json_pretty(&json!({"a": 1, "b": 2})),
        "{\n    \"a\": 1,\n    \"b\": 2\n}"
    );
}

/// SHA-256 of the generic content.
///
/// The reference's `test_get_md5`, `test_get_sha1` and `test_get_sha512`
/// test hash helpers that live in the hash plugin here (crate
/// `stoq-plugins`); they are covered by that plugin's tests.
#[test]
fn test_get_sha256() {
    assert_eq!(
        hex(&sha256(GENERIC)),
        "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9"
    );
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
