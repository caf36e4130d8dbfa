//! `tnef` worker: the three corpus TNEF files against tnefparse 1.4.0's
//! answers (kept in testdata/email/expected.json), a hand-built stream with
//! MAPI properties and a compressed RTF body, truncation and golden output.

mod common;

use serde_json::json;
use stoq_plugins_email::parse_tnef;
use stoq_plugins_email::tnef::TNEF_SIGNATURE;

#[test]
fn corpus_matches_tnefparse() {
    let expected = common::expected();
    let all = expected["tnef"].as_object().unwrap();
    assert_eq!(all.len(), 3);
    for (name, want) in all {
        let t = parse_tnef(&common::read(name)).unwrap();
        assert!(t.errors.is_empty(), "{name}: {:?}", t.errors);
        assert_eq!(json!(t.key), want["key"], "{name}");
        let got: Vec<_> = t
            .attachments
            .iter()
            .map(|a| {
                json!({
                    "name": a.filename,
                    "size": a.data.len(),
                    "sha256": common::sha256_hex(&a.data),
                })
            })
            .collect();
        assert_eq!(json!(got), want["attachments"], "{name}");
        assert_eq!(json!(t.body.is_some()), want["has_body"], "{name}");
        assert_eq!(json!(t.body_html.is_some()), want["has_htmlbody"], "{name}");
        assert_eq!(json!(t.body_rtf.is_some()), want["has_rtfbody"], "{name}");
    }
}

#[tokio::test]
async fn worker_extracts_attachments_and_bodies() {
    let r = common::run_worker("tnef", &[], &common::read("two-files.tnef"))
        .await
        .unwrap();
    let names: Vec<_> = r
        .extracted
        .iter()
        .map(|e| e.payload_meta.extra_data["filename"].clone())
        .collect();
    assert_eq!(names, [json!("AUTHORS"), json!("README")]);
    assert!(r.errors.is_empty());

    let r = common::run_worker("tnef", &[], &common::read("body.tnef"))
        .await
        .unwrap();
    assert_eq!(r.extracted.len(), 1);
    let body = &r.extracted[0];
    assert_eq!(body.payload_meta.extra_data["tnef_body"], "html");
    assert!(body.content.starts_with(b"<!DOCTYPE HTML"));
    let r = common::run_worker(
        "tnef",
        &[("extract_bodies", "false")],
        &common::read("body.tnef"),
    )
    .await
    .unwrap();
    assert!(r.extracted.is_empty());

    assert!(common::run_worker("tnef", &[], b"not a tnef stream")
        .await
        .is_none());
}

/// Append one TNEF attribute (level, id, data, checksum).
fn attr(out: &mut Vec<u8>, level: u8, id: u32, data: &[u8]) {
    out.push(level);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    let sum = data.iter().fold(0u16, |a, &b| a.wrapping_add(u16::from(b)));
    out.extend_from_slice(&sum.to_le_bytes());
}

/// A MAPI variable-size property (one value, padded).
fn var_prop(out: &mut Vec<u8>, ptype: u16, id: u16, value: &[u8]) {
    out.extend_from_slice(&ptype.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A stream built by hand: a compressed RTF body ([MS-OXRTFCP] example 1)
/// and an attachment whose name and data come only from MAPI properties
/// (long file name in UTF-16, data in PR_ATTACH_DATA_BIN), preceded by a
/// named property and a fixed-size one that must be skipped.
fn handmade() -> Vec<u8> {
    let rtf: &[u8] = &[
        0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7,
        0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a,
        0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d,
        0x0a, 0x80, 0x0f, 0xa0,
    ];
    let mut msg_props = 2u32.to_le_bytes().to_vec();
    // PR_SUBJECT_W
    var_prop(&mut msg_props, 0x001F, 0x0037, &utf16z("Grüße"));
    // PR_RTF_COMPRESSED
    var_prop(&mut msg_props, 0x0102, 0x1009, rtf);

    let mut att_props = 4u32.to_le_bytes().to_vec();
    // A named property (GUID, MNID_STRING name) of type PT_LONG.
    att_props.extend_from_slice(&0x0003u16.to_le_bytes());
    att_props.extend_from_slice(&0x8001u16.to_le_bytes());
    att_props.extend_from_slice(&[0x11; 16]);
    att_props.extend_from_slice(&1u32.to_le_bytes());
    let name = utf16z("x");
    att_props.extend_from_slice(&(name.len() as u32).to_le_bytes());
    att_props.extend_from_slice(&name);
    while !att_props.len().is_multiple_of(4) {
        att_props.push(0);
    }
    att_props.extend_from_slice(&7u32.to_le_bytes());
    // PR_ATTACH_METHOD (PT_LONG)
    att_props.extend_from_slice(&0x0003u16.to_le_bytes());
    att_props.extend_from_slice(&0x3705u16.to_le_bytes());
    att_props.extend_from_slice(&1u32.to_le_bytes());
    var_prop(&mut att_props, 0x001F, 0x3707, &utf16z("Überweisung.pdf"));
    var_prop(&mut att_props, 0x0102, 0x3701, b"%PDF-1.4 data");

    let mut t = TNEF_SIGNATURE.to_le_bytes().to_vec();
    t.extend_from_slice(&0x0102u16.to_le_bytes());
    attr(&mut t, 1, 0x0006_9007, &1252u32.to_le_bytes());
    attr(&mut t, 1, 0x0006_9003, &msg_props);
    attr(
        &mut t,
        2,
        0x0006_9002,
        &[1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    attr(&mut t, 2, 0x0006_9005, &att_props);
    t
}

#[test]
fn handmade_stream_with_mapi_properties_and_rtf() {
    let t = parse_tnef(&handmade()).unwrap();
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert_eq!(t.key, 0x0102);
    assert_eq!(t.subject.as_deref(), Some("Grüße"));
    assert_eq!(
        t.body_rtf.as_deref(),
        Some(&b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"[..])
    );
    assert_eq!(t.attachments.len(), 1);
    assert_eq!(
        t.attachments[0].filename.as_deref(),
        Some("Überweisung.pdf")
    );
    assert_eq!(t.attachments[0].data, b"%PDF-1.4 data");
}

#[test]
fn truncation_and_bad_checksum_keep_what_was_read() {
    let data = common::read("two-files.tnef");
    // Cut inside the second attachment's data.
    let cut = &data[..data.len() - 400];
    let t = parse_tnef(cut).unwrap();
    assert!(!t.errors.is_empty());
    assert_eq!(t.attachments[0].filename.as_deref(), Some("AUTHORS"));
    assert_eq!(t.attachments[0].data.len(), 244);
    assert_eq!(t.attachments.len(), 2);
    assert!(t.attachments[1].data.len() < 893);

    let mut bad = data.clone();
    let i = bad.windows(7).position(|w| w == b"AUTHORS").unwrap();
    bad[i] = b'a';
    let t = parse_tnef(&bad).unwrap();
    assert!(
        t.errors.iter().any(|e| e.contains("checksum")),
        "{:?}",
        t.errors
    );
    assert_eq!(t.attachments.len(), 2);
}

#[test]
fn truncations_and_mutations_never_panic() {
    let mut seed: u64 = 0x7e1f;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for data in [
        common::read("one-file.tnef"),
        common::read("two-files.tnef"),
        common::read("body.tnef"),
        handmade(),
    ] {
        for cut in 0..data.len() {
            let _ = parse_tnef(&data[..cut]);
        }
        for _ in 0..400 {
            let mut m = data.clone();
            for _ in 0..(1 + next() % 6) {
                let i = 4 + (next() as usize) % (m.len() - 4);
                m[i] = match next() % 3 {
                    0 => 0xff,
                    1 => 0,
                    _ => next() as u8,
                };
            }
            if let Some(t) = parse_tnef(&m) {
                let _ = stoq_plugins_email::tnef::response(&t, &Default::default());
            }
        }
    }
    for _ in 0..200 {
        let g: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
        let _ = stoq_plugins_email::tnef::decompress_rtf(&g);
        // Raw size 0xffff, LZFu, then garbage.
        let mut h = vec![
            0, 0, 0, 0, 0xff, 0xff, 0, 0, 0x4c, 0x5a, 0x46, 0x75, 0, 0, 0, 0,
        ];
        h.extend_from_slice(&g);
        let _ = stoq_plugins_email::tnef::decompress_rtf(&h);
    }
}

#[tokio::test]
async fn golden_worker_results() {
    for (name, file) in [
        ("tnef-two-files", "two-files.tnef"),
        ("tnef-body", "body.tnef"),
    ] {
        let r = common::run_worker("tnef", &[], &common::read(file))
            .await
            .unwrap();
        common::golden(name, &r.results.unwrap());
    }
}
