//! b64decode, xordecode and xorsearch: the public plugins' test vectors
//! and golden outputs on real files.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use stoq_core::{Map, Payload};

// ------------------------------------------------------------------ b64decode

#[tokio::test]
async fn b64decode_public_vector() {
    let w = worker("b64decode", &[]);
    let original = b"This is a payload to decode";
    let encoded = base64::engine::general_purpose::STANDARD.encode(original);
    let r = scan_bytes(&w, encoded.as_bytes()).await.unwrap();
    assert!(r.results.is_none());
    assert_eq!(r.extracted.len(), 1);
    assert_eq!(&r.extracted[0].content[..], original);
    assert!(r.extracted[0].payload_meta.extra_data.is_empty());
}

#[tokio::test]
async fn b64decode_golden_real_file_with_line_breaks() {
    let class = read("java/TestJavaClass.class");
    let mime = base64::engine::general_purpose::STANDARD.encode(&class);
    let wrapped: Vec<u8> = mime
        .as_bytes()
        .chunks(76)
        .flat_map(|c| c.iter().copied().chain(*b"\r\n"))
        .collect();
    let w = worker("b64decode", &[]);
    let r = scan_bytes(&w, &wrapped).await.unwrap();
    assert_eq!(r.extracted.len(), 1);
    assert_eq!(&r.extracted[0].content[..], &class[..]);
    // Not base64: nothing.
    assert!(scan_bytes(&w, &class).await.is_none());
    assert!(scan_bytes(&w, b"").await.is_none());
    assert!(scan_bytes(&w, b"not base64!").await.is_none());
}

// ------------------------------------------------------------------ xordecode

fn with_meta(content: Vec<u8>, xorkey: Value) -> Payload {
    let mut p = Payload::new(content);
    let meta: Map = json!({"xordecode": {"rule": "r", "meta": {"xorkey": xorkey}}})
        .as_object()
        .unwrap()
        .clone();
    p.dispatch_meta.insert("yara".into(), meta);
    p
}

#[tokio::test]
async fn xordecode_public_vectors() {
    let w = worker("xordecode", &[]);
    let original = b"This is a payload to XOR decode";
    let single: Vec<u8> = original.iter().map(|b| b ^ 65).collect();
    let rolling: Vec<u8> = original
        .iter()
        .zip([41u8, 52, 63].iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect();
    let cases = [
        (single.clone(), json!(65), json!([65])),
        (single.clone(), json!("65"), json!([65])),
        (single, json!([65]), json!([65])),
        (rolling.clone(), json!([41, 52, 63]), json!([41, 52, 63])),
        (rolling, json!("41,52,63"), json!([41, 52, 63])),
    ];
    for (content, key, key_list) in cases {
        let r = scan(&w, &with_meta(content, key.clone())).await.unwrap();
        assert!(r.results.is_none());
        assert_eq!(r.extracted.len(), 1, "{key}");
        assert_eq!(&r.extracted[0].content[..], original, "{key}");
        assert_eq!(r.extracted[0].payload_meta.extra_data["xorkey"], key_list);
        assert_eq!(r.payload_meta_update.extra_data["xorkey"], key_list);
    }
    // No key: nothing. A bad key: an error.
    assert!(scan_bytes(&w, b"abc").await.is_none());
    let bad = with_meta(b"abc".to_vec(), json!("300"));
    let e = w
        .scan(&bad, &stoq_core::Request::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("xorkey"), "{e}");
}

#[tokio::test]
async fn xordecode_golden_real_file() {
    let pdf = read("pdf/issue-297.pdf");
    let key = [0xDE, 0xAD, 0xBE, 0xEF];
    let encoded: Vec<u8> = pdf
        .iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect();
    let w = worker("xordecode", &[]);
    let r = scan(&w, &with_meta(encoded, json!("0xde,0xad,0xbe,0xef")))
        .await
        .unwrap();
    assert_eq!(&r.extracted[0].content[..], &pdf[..]);
    assert_eq!(
        Value::Object(r.extracted[0].payload_meta.extra_data.clone()),
        json!({"xorkey": [222, 173, 190, 239]})
    );
}

// ------------------------------------------------------------------ xorsearch

#[tokio::test]
async fn xorsearch_public_vector() {
    let data: Vec<u8> = b"MZAdjustTokenPrivileges CurrentVersion"
        .iter()
        .map(|b| b ^ 0x5C)
        .collect();
    let w = worker("xorsearch", &[]);
    let r = scan_bytes(&w, &data).await.unwrap().results.unwrap();
    assert_eq!(
        r["0x5C"][0]["match"],
        "AdjustTokenPrivileges CurrentVersion"
    );
    assert_eq!(r["0x5C"][1]["match"], "CurrentVersion");
    assert_eq!(r.as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn xorsearch_golden_real_file() {
    // A real PDF XOR-encoded with 0x41; JavaScript terms from a file.
    let pdf = read("pdf/issue-297.pdf");
    let encoded: Vec<u8> = pdf.iter().map(|b| b ^ 0x41).collect();
    let dir = tempfile::tempdir().unwrap();
    let terms = dir.path().join("terms.txt");
    std::fs::write(&terms, "app.alert\r\nTesting PDF\n\n").unwrap();
    let w = worker("xorsearch", &[("terms_file", terms.to_str().unwrap())]);
    let r = scan_bytes(&w, &encoded).await.unwrap();
    assert!(r.errors.is_empty());
    assert_eq!(
        r.results.unwrap(),
        json!({"0x41": [
            {"pos": "0x0297", "match": "app.alert({cMsg: 'Hello alert', cTitle: 'Testing PDF', nIcon: 3});)"},
            {"pos": "0x02C0", "match": "Testing PDF', nIcon: 3});)"},
        ]})
    );
    // Plain text is not reported (key 0 is skipped).
    let w = worker("xorsearch", &[("terms", "app.alert")]);
    assert!(scan_bytes(&w, &pdf).await.is_none());
    // max_hits stops the search and says so.
    let w = worker("xorsearch", &[("terms", "A"), ("max_hits", "2")]);
    let r = scan_bytes(&w, &[b'A' ^ 3; 5]).await.unwrap();
    assert_eq!(r.results.unwrap()["0x03"].as_array().unwrap().len(), 2);
    assert_eq!(r.errors.len(), 1);
}
