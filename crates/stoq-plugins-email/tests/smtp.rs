//! `smtp` worker: the corpus e-mails against Python's `email` package (the
//! answers kept in testdata and, when python3 exists, live), hand-made
//! edge cases (RFC 2047/2231 names, text attachments, unnamed inline parts,
//! a single-part attachment), malformed input and golden output.

mod common;

use std::path::PathBuf;

use serde_json::{json, Value};
use stoq_plugins_email::smtp::{self, PartKind};
use stoq_plugins_email::{parse_message, ParsedEmail};

const EMLS: &[&str] = &[
    "attachments-zip-pdf-doc.eml",
    "exe-attachment-rfc2047.eml",
    "forwarded-rfc822.eml",
    "plain-iocs.eml",
    "winmail-tnef.eml",
];

/// Text attachments (7bit and quoted-printable), an RFC 2047 `name`, an
/// RFC 2231 continued `filename*`, an unnamed inline image in
/// multipart/related, a nameless `attachment` part, a Cc header and a
/// non-UTF-8 (Latin-1) 8-bit header.
const EDGE: &str = "From: \"Doe, John\" <john@example.com>\r
To: a@example.org\r
To: b@example.org\r
Cc: =?iso-8859-1?q?J=FCrgen?= <j@example.org>\r
Subject: edge cases\r
X-Latin1: caf\u{e9}\r
Date: Tue, 2 Feb 2021 13:14:15 +0200\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"outer\"\r
\r
preamble\r
--outer\r
Content-Type: multipart/related; boundary=\"rel\"\r
\r
--rel\r
Content-Type: text/html; charset=utf-8\r
\r
<p>logo <img src=\"cid:logo\"></p>\r
--rel\r
Content-Type: image/png\r
Content-Transfer-Encoding: base64\r
Content-ID: <logo>\r
\r
iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==\r
--rel--\r
\r
--outer\r
Content-Type: text/plain; charset=utf-8\r
Content-Disposition: attachment; filename=\"notes.txt\"\r
\r
line one\r
line two\r
--outer\r
Content-Type: text/csv; charset=utf-8; name=\"=?utf-8?q?Gr=C3=BC=C3=9Fe.csv?=\"\r
Content-Transfer-Encoding: quoted-printable\r
\r
a,b=\r
,c\r
=C3=A4,=3D\r
--outer\r
Content-Type: application/pdf\r
Content-Disposition: attachment;\r
 filename*0*=utf-8''long%20na;\r
 filename*1*=me.pdf\r
Content-Transfer-Encoding: base64\r
\r
JVBERi0xLjQKJSVFT0YK\r
--outer\r
Content-Type: application/octet-stream\r
Content-Disposition: attachment\r
Content-Transfer-Encoding: base64\r
\r
AAECAwQFBgcICQ==\r
--outer--\r
";

/// A message that is one attachment (no multipart).
const SINGLE: &str = "From: x@example.com\r
Subject: just a file\r
MIME-Version: 1.0\r
Content-Type: application/zip; name=\"a.zip\"\r
Content-Disposition: attachment; filename=\"a.zip\"\r
Content-Transfer-Encoding: base64\r
\r
UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r
";

fn edge_bytes() -> Vec<u8> {
    // The X-Latin1 header must be raw Latin-1, not UTF-8.
    EDGE.replace("caf\u{e9}", "caf\u{1}")
        .as_bytes()
        .iter()
        .map(|&b| if b == 1 { 0xe9 } else { b })
        .collect()
}

/// The attachments by Python's rule, attached messages replaced by their
/// own attachments (Python walks into them).
fn flatten(p: &ParsedEmail) -> Vec<Value> {
    let mut out = Vec::new();
    for part in &p.parts {
        if part.kind == PartKind::Message {
            let inner = parse_message(&part.content).expect("attached message parses");
            out.extend(flatten(&inner));
        } else if part.named {
            out.push(json!({
                "filename": part.filename,
                "content_type": part.content_type,
                "disposition": part.disposition,
                "size": part.content.len(),
                "sha256": common::sha256_hex(&part.content),
            }));
        }
    }
    out
}

fn header_names(p: &ParsedEmail) -> Vec<String> {
    let mut n: Vec<String> = p.headers.iter().map(|(k, _)| k.to_lowercase()).collect();
    n.sort();
    n.dedup();
    n
}

/// Compare our view of `data` with Python's `info` for it.
fn assert_like_python(name: &str, data: &[u8], py: &Value) {
    let p = parse_message(data).unwrap_or_else(|| panic!("{name}: not parsed"));
    assert!(p.errors.is_empty(), "{name}: {:?}", p.errors);
    assert_eq!(json!(flatten(&p)), py["attachments"], "{name}: attachments");
    assert_eq!(json!(p.subject), py["subject"], "{name}: subject");
    assert_eq!(json!(p.from), py["from"], "{name}: from");
    assert_eq!(
        json!(header_names(&p)),
        py["header_names"],
        "{name}: header names"
    );
    assert_eq!(
        json!(p.body.is_some()),
        py["has_text_body"],
        "{name}: text body"
    );
    assert_eq!(
        json!(p.body_html.is_some()),
        py["has_html_body"],
        "{name}: html body"
    );
    let rfc822: Vec<Value> = p
        .parts
        .iter()
        .filter(|x| x.kind == PartKind::Message)
        .map(|x| {
            let inner = parse_message(&x.content).unwrap();
            json!({
                "filename": x.filename,
                "inner_subject": inner.subject,
                "inner_attachments": inner.attachments().map(|a| a.filename.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    assert_eq!(json!(rfc822), py["rfc822_parts"], "{name}: rfc822 parts");
}

#[test]
fn testdata_files_match_their_provenance() {
    let readme = String::from_utf8(common::read("README.md")).unwrap();
    let mut n = 0;
    for line in readme.lines().filter(|l| l.starts_with("- `")) {
        let fields: Vec<&str> = line.split(" | ").collect();
        let path = fields[0].trim_start_matches("- `").trim_end_matches('`');
        let sha = fields[1].trim_matches('`');
        assert_eq!(common::sha256_hex(&common::read(path)), sha, "{path}");
        n += 1;
    }
    assert_eq!(n, 8);
}

/// Every corpus e-mail against the answers Python's `email` package gave
/// (kept in testdata/email/expected.json).
#[test]
fn corpus_matches_expected_json() {
    let expected = common::expected();
    let emails = expected["email"].as_object().unwrap();
    assert_eq!(emails.len(), EMLS.len());
    for name in EMLS {
        let want = &emails[*name];
        assert_like_python(name, &common::read(name), want);
        let p = parse_message(&common::read(name)).unwrap();
        let count = flatten(&p).len();
        assert_eq!(json!(count), want["attachment_count"], "{name}");
        assert_eq!(json!(p.to), want["to"], "{name}");
    }
}

/// The same, live: Python's `email` package run now on the corpus files
/// and on the hand-made edge cases.
#[test]
fn live_python_email_package() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files: Vec<(String, PathBuf, Vec<u8>)> = EMLS
        .iter()
        .map(|n| (n.to_string(), common::dir().join(n), common::read(n)))
        .collect();
    for (name, data) in [
        ("edge.eml", edge_bytes()),
        ("single.eml", SINGLE.as_bytes().to_vec()),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, &data).unwrap();
        files.push((name.to_string(), path, data));
    }
    let paths: Vec<PathBuf> = files.iter().map(|f| f.1.clone()).collect();
    let Some(py) = common::python_email_info(&paths) else {
        return;
    };
    for (name, path, data) in &files {
        assert_like_python(name, data, &py[path.to_str().unwrap()]);
    }
}

#[test]
fn rfc2047_and_rfc2231_names() {
    let p = parse_message(&common::read("exe-attachment-rfc2047.eml")).unwrap();
    assert_eq!(
        p.subject.as_deref(),
        Some("Rechnung für März – bitte prüfen")
    );
    assert_eq!(p.from.as_deref(), Some("Jörg Müller <joerg@example.net>"));
    assert_eq!(p.to.as_deref(), Some("Zoë Test <zoe@example.org>"));
    let names: Vec<_> = p
        .parts
        .iter()
        .map(|a| a.filename.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["Rechnung_März.exe", "gps.jpg"]);
    assert_eq!(p.parts[1].disposition.as_deref(), Some("inline"));
    assert!(p.body.as_deref().unwrap().contains("Grüße aus Köln – Jörg"));

    let e = parse_message(&edge_bytes()).unwrap();
    let names: Vec<Option<&str>> = e.parts.iter().map(|a| a.filename.as_deref()).collect();
    assert_eq!(
        names,
        [
            None,
            Some("notes.txt"),
            Some("Grüße.csv"),
            Some("long name.pdf"),
            None
        ]
    );
}

#[test]
fn edge_cases_content_and_headers() {
    let e = parse_message(&edge_bytes()).unwrap();
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    // Header list: in order, names as written, 8-bit Latin-1 decoded.
    let names: Vec<&str> = e.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "From",
            "To",
            "To",
            "Cc",
            "Subject",
            "X-Latin1",
            "Date",
            "MIME-Version",
            "Content-Type"
        ]
    );
    assert_eq!(e.headers[5].1, "café");
    assert_eq!(e.from.as_deref(), Some("\"Doe, John\" <john@example.com>"));
    assert_eq!(e.to.as_deref(), Some("a@example.org, b@example.org"));
    assert_eq!(e.cc.as_deref(), Some("Jürgen <j@example.org>"));
    assert_eq!(e.date.as_deref(), Some("2021-02-02T13:14:15+02:00"));
    assert_eq!(e.body, None);
    assert_eq!(
        e.body_html.as_deref(),
        Some("<p>logo <img src=\"cid:logo\"></p>")
    );

    // The unnamed inline image is extracted but is no attachment by
    // Python's rule.
    let png = &e.parts[0];
    assert!(!png.named);
    assert_eq!(png.content_type, "image/png");
    assert!(png.content.starts_with(b"\x89PNG"));
    // Text attachments keep their bytes (line ends included, charset not
    // converted, transfer encoding undone).
    assert_eq!(e.parts[1].content, b"line one\r\nline two");
    assert_eq!(e.parts[1].charset.as_deref(), Some("utf-8"));
    assert_eq!(e.parts[2].content, "a,b,c\r\nä,=".as_bytes());
    assert_eq!(e.parts[2].disposition, None);
    assert_eq!(e.parts[3].content, b"%PDF-1.4\n%%EOF\n");
    assert_eq!(e.parts[4].content, (0u8..10).collect::<Vec<u8>>());
    assert!(e.parts[4].named);

    let s = parse_message(SINGLE.as_bytes()).unwrap();
    assert_eq!(s.parts.len(), 1);
    assert_eq!(s.parts[0].filename.as_deref(), Some("a.zip"));
    assert!(s.parts[0].content.starts_with(b"PK\x05\x06"));
    assert_eq!(s.body, None);
}

#[tokio::test]
async fn worker_extra_data_dispatch_and_options() {
    // Defaults: every part extracted, archived, rfc822 → smtp, tnef → tnef;
    // plus the IOC text for iocextract (extract_iocs is on by default), last.
    let r = common::run_worker(
        "smtp",
        &[("always_dispatch", "hash, yara")],
        &common::read("forwarded-rfc822.eml"),
    )
    .await
    .unwrap();
    assert_eq!(r.extracted.len(), 2);
    assert_eq!(r.extracted[1].payload_meta.dispatch_to, ["iocextract"]);
    assert!(!r.extracted[1].payload_meta.should_archive);
    let m = &r.extracted[0].payload_meta;
    assert_eq!(
        serde_json::Value::Object(m.extra_data.clone()),
        json!({"filename": "Protected archive.eml", "content_type": "message/rfc822", "disposition": "attachment"})
    );
    assert_eq!(m.dispatch_to, ["hash", "yara", "smtp"]);
    assert!(m.should_archive);

    let r = common::run_worker(
        "smtp",
        &[("archive_attachments", "false")],
        &common::read("winmail-tnef.eml"),
    )
    .await
    .unwrap();
    assert_eq!(r.extracted[0].payload_meta.dispatch_to, ["tnef"]);
    assert!(!r.extracted[0].payload_meta.should_archive);

    // omit_body and extract_unnamed=false.
    let r = common::run_worker(
        "smtp",
        &[
            ("omit_body", "true"),
            ("extract_unnamed", "false"),
            ("extract_iocs", "false"),
        ],
        &edge_bytes(),
    )
    .await
    .unwrap();
    let res = r.results.unwrap();
    assert!(res.get("body").is_none() && res.get("body_html").is_none());
    assert_eq!(r.extracted.len(), 4);
    assert_eq!(res["attachments"].as_array().unwrap().len(), 5);
    assert_eq!(res["attachments"][0]["filename"], Value::Null);

    // extract_iocs: one payload of the chosen headers and bodies.
    let r = common::run_worker(
        "smtp",
        &[("extract_iocs", "true")],
        &common::read("plain-iocs.eml"),
    )
    .await
    .unwrap();
    assert_eq!(r.extracted.len(), 1);
    let ioc = &r.extracted[0];
    assert_eq!(ioc.payload_meta.dispatch_to, ["iocextract"]);
    assert!(!ioc.payload_meta.should_archive);
    let text = String::from_utf8(ioc.content.to_vec()).unwrap();
    assert!(text.starts_with("from relay.example.net ([203.0.113.5])"));
    assert!(text.contains("[198.51.100.77]\nIndicators seen today:"));

    let r = common::run_worker(
        "smtp",
        &[("extract_iocs", "true"), ("ioc_keys", "Subject")],
        &common::read("plain-iocs.eml"),
    )
    .await
    .unwrap();
    assert_eq!(&r.extracted[0].content[..], b"Indicators for review");

    // Not an e-mail: no results.
    assert!(common::run_worker("smtp", &[], b"%PDF-1.4\n")
        .await
        .is_none());
}

#[test]
fn bad_option_values_name_plugin_option_and_value() {
    let registry = stoq_plugins_email::registry();
    let build = &registry.get("smtp").unwrap().build;
    let cfg = stoq_core::PluginConfig::new("smtp", [("omit_body", "maybe")]);
    let err = build(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("smtp") && err.contains("omit_body") && err.contains("maybe"),
        "{err}"
    );
}

#[tokio::test]
async fn truncated_message_gives_partial_results_and_an_error() {
    let full = common::read("attachments-zip-pdf-doc.eml");
    // Cut inside the second attachment.
    let cut = &full[..full.len() * 3 / 4];
    let p = parse_message(cut).unwrap();
    assert_eq!(p.subject.as_deref(), Some("Quarterly documents"));
    assert!(p.body.is_some() && p.body_html.is_some());
    assert!(
        p.errors.iter().any(|e| e.contains("closing boundary")),
        "{:?}",
        p.errors
    );
    // The first attachment is complete.
    assert_eq!(p.parts[0].filename.as_deref(), Some("mixed.zip"));
    assert_eq!(
        common::sha256_hex(&p.parts[0].content),
        "97a0d0a6297ac0b717c75cc304c161a21f0de9048e2852facb089eb198e59602"
    );
    let r = common::run_worker("smtp", &[], cut).await.unwrap();
    assert!(r.results.is_some());
    assert!(!r.errors.is_empty());
    assert!(!r.extracted.is_empty());

    // Cut inside the header section.
    let p = parse_message(&full[..150]).unwrap();
    assert!(
        p.errors.iter().any(|e| e.contains("header section")),
        "{:?}",
        p.errors
    );
    assert_eq!(
        p.headers[0],
        (
            "From".to_string(),
            "Alice Example <alice@example.com>".to_string()
        )
    );

    // Multipart without a boundary parameter, and with a boundary that
    // never appears.
    let p = parse_message(b"From: a@b.example\r\nContent-Type: multipart/mixed\r\n\r\nbody\r\n")
        .unwrap();
    assert!(!p.errors.is_empty(), "{p:?}");
    let p = parse_message(
        b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n",
    )
    .unwrap();
    assert!(!p.errors.is_empty(), "{p:?}");

    // Broken base64 in an attachment: kept undecoded, with an error.
    let p = parse_message(
        b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
          Content-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
          !!!not base64!!!\r\n--b--\r\n",
    )
    .unwrap();
    assert_eq!(p.parts.len(), 1);
    assert!(!p.errors.is_empty(), "{p:?}");
}

/// Truncations and byte mutations of every corpus e-mail: never a panic.
#[test]
fn truncations_and_mutations_never_panic() {
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in EMLS {
        let data = common::read(name);
        let step = (data.len() / 150).max(1);
        for cut in (0..data.len()).step_by(step) {
            let _ = parse_message(&data[..cut]);
        }
        for _ in 0..150 {
            let mut m = data.clone();
            for _ in 0..(1 + next() % 8) {
                let i = (next() as usize) % m.len();
                m[i] = match next() % 4 {
                    0 => b'\n',
                    1 => b'-',
                    2 => b'=',
                    _ => next() as u8,
                };
            }
            if let Some(p) = parse_message(&m) {
                let _ = smtp::response(&p, &smtp::SmtpOptions::default());
            }
        }
    }
    // Garbage.
    for len in [0usize, 1, 7, 100, 5000] {
        let g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = parse_message(&g);
        let mut h =
            b"From: x@y.example\r\nContent-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\n"
                .to_vec();
        h.extend_from_slice(&g);
        assert!(parse_message(&h).is_some());
    }
}

/// Golden output: the worker's exact results for two real files.
#[tokio::test]
async fn golden_worker_results() {
    for (name, file) in [
        ("smtp-exe-attachment-rfc2047", "exe-attachment-rfc2047.eml"),
        ("smtp-plain-iocs", "plain-iocs.eml"),
    ] {
        let r = common::run_worker("smtp", &[], &common::read(file))
            .await
            .unwrap();
        common::golden(name, &r.results.unwrap());
    }
}
