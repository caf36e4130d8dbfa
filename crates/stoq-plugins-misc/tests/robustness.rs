//! Test data integrity, every worker on garbage and truncated real files,
//! and the plugins inside the engine.

mod common;

use common::*;
use stoq_core::{Payload, Request};
use stoq_engine::Stoq;

const PLUGINS: [&str; 8] = [
    "pdf",
    "b64decode",
    "xordecode",
    "xorsearch",
    "swfcarve",
    "javaclass",
    "exif",
    "xdpcarve",
];

#[test]
fn testdata_files_have_their_listed_sha256() {
    let readme = String::from_utf8(read("README.md")).unwrap();
    let mut n = 0;
    for line in readme.lines().filter(|l| l.starts_with("- `")) {
        let cols: Vec<&str> = line.split(" | ").collect();
        let path = cols[0].trim_start_matches("- ").trim_matches('`');
        let sha = cols[1].trim_matches('`');
        assert_eq!(sha256(&read(path)), sha, "{path}");
        n += 1;
    }
    assert_eq!(n, 15);
}

/// Inputs that start like each format and then go wrong.
fn hostile_inputs() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        vec![0xFF; 64],
        noise(4096, 1),
        b"%PDF-".to_vec(),
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>".to_vec(),
        b"%PDF-1.4\nxref\n0 99999999\ntrailer<</Size 99999999/Root 1 0 R/Encrypt 5 0 R>>\nstartxref\n9\n%%EOF".to_vec(),
        [b"%PDF-1.4\n1 0 obj ".as_slice(), &b"[".repeat(100_000)].concat(),
        [b"%PDF-1.4\n1 0 obj ".as_slice(), &b"<<".repeat(50_000)].concat(),
        b"CWS\x0a\xff\xff\xff\xff\x78\x9c\x00".to_vec(),
        b"ZWS\x0d\xff\xff\xff\x7f\xff\xff\xff\xff\x5d\x00\x00\x00\xff\x00".to_vec(),
        b"FWS\x05\x00\x00\x00\x00".to_vec(),
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34\xff\xff\x01\xff\xff".to_vec(),
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x03\x07\x00\x02\x01\x00\x00\x00\x00\x00\x01\x00\x00".to_vec(),
        b"\xff\xd8\xff\xe1\xff\xffExif\0\0MM\0*\0\0\0\x08\xff\xff".to_vec(),
        b"II*\0\x08\0\0\0\xff\xff\0\0".to_vec(),
        b"\x89PNG\r\n\x1a\n\0\0\0\x08eXIfMM\0*".to_vec(),
        b"RIFF\0\0\0\0WEBPVP8X".to_vec(),
        b"\0\0\0\x18ftypheic\0\0\0\0heicmif1\xff\xff\xff\xff".to_vec(),
        b"<chunk>".to_vec(),
        [b"<a>".as_slice(), &b"<chunk>".repeat(10_000)].concat(),
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><chunk>&a;&a;</chunk>".to_vec(),
        b"====\n\n====".to_vec(),
    ];
    for name in [
        "pdf/issue-297.pdf",
        "pdf/crazyones.pdf",
        "swf/claque-beignet-cws.swf",
        "java/TestJavaClass.class",
        "images/gps.jpg",
        "images/sample.tif",
        "images/png_331x90x8_truncated.png",
    ] {
        let data = read(name);
        for n in cut_points(data.len(), 25) {
            v.push(data[..n].to_vec());
        }
        v.push(corrupt(&data, 3, 61));
    }
    v
}

#[tokio::test]
async fn every_worker_survives_hostile_input() {
    let inputs = hostile_inputs();
    for name in PLUGINS {
        let w = worker(name, &[]);
        for (i, input) in inputs.iter().enumerate() {
            let mut p = Payload::new(input.clone());
            if name == "xordecode" {
                let meta = serde_json::json!({"x": {"meta": {"xorkey": [1, 2]}}});
                p.dispatch_meta
                    .insert("yara".into(), meta.as_object().unwrap().clone());
            }
            // Ok or a plugin error are both fine; a panic fails the test.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                w.scan(&p, &Request::default()),
            )
            .await
            .unwrap_or_else(|_| panic!("{name} timed out on input {i}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_the_engine() {
    let empty = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(stoq_plugins_misc::registry())
        .base_dir(empty.path())
        .always_dispatch(["pdf", "swfcarve"])
        .max_recursion(3)
        .build()
        .unwrap();
    let response = stoq.scan(read("pdf/attachment.pdf"), None, None, &[]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    // The PDF and the PDF attached to it, both analysed.
    assert_eq!(response.results.len(), 2);
    let child = &response.results[1];
    assert_eq!(child.extracted_by, ["pdf"]);
    assert_eq!(child.payload_meta.extra_data["filename"], "jpeg.pdf");
    assert_eq!(child.size, 100898);
    assert_eq!(child.workers["pdf"]["pages"], 1);
    assert!(response.results[0].workers.contains_key("pdf"));
    assert!(!response.results[0].workers.contains_key("swfcarve"));

    // A ZWS movie is carved once; the FWS it gives is not carved again.
    let response = stoq
        .scan(read("swf/claque-beignet-zws.swf"), None, None, &[])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(response.results.len(), 2);
    assert_eq!(response.results[1].extracted_by, ["swfcarve"]);
    assert_eq!(response.results[1].size, 288769);
}
