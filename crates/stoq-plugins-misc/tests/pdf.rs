//! The `pdf` worker against pypdf (EXPECTED.json, and live when
//! STOQ_TEST_PYTHON is set), golden outputs, a synthetic document with
//! every feature, and truncated/corrupted input.

mod common;

use std::collections::BTreeSet;

use common::*;
use lopdf::{dictionary, Document, Object, Stream, StringFormat};
use serde_json::{json, Value};
use stoq_plugins_misc::pdf::{analyse_pdf, analyse_pdf_with, PdfOptions};

const PDFS: [&str; 6] = [
    "pdf/stoq-sample.pdf",
    "pdf/attachment.pdf",
    "pdf/crazyones.pdf",
    "pdf/form.pdf",
    "pdf/issue-297.pdf",
    "pdf/r6-user-password.pdf",
];

fn results(data: &[u8]) -> Value {
    Value::Object(analyse_pdf(data).expect("a PDF").results)
}

/// Name-tree names (and alternative names) as pypdf's `attachments` keys.
fn attachment_names(r: &Value) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for f in r["embedded_files"].as_array().unwrap() {
        if f["source"] == "EmbeddedFiles" {
            s.insert(f["name"].as_str().unwrap().to_string());
            if let Some(alt) = f["filename"].as_str() {
                s.insert(alt.to_string());
            }
        }
    }
    s
}

/// `[{filename, size, sha256}]` of file-attachment annotations.
fn annotation_files(r: &Value) -> Vec<Value> {
    r["embedded_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["source"] == "FileAttachment")
        .map(|f| json!({"filename": f["filename"], "size": f["size"], "sha256": f["sha256"]}))
        .collect()
}

/// `/Info` with pypdf's slashed keys.
fn slashed_info(r: &Value) -> Value {
    let m: serde_json::Map<String, Value> = r["info"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (format!("/{k}"), v.clone()))
        .collect();
    Value::Object(m)
}

/// Compare our results with one pypdf record (EXPECTED.json shape).
fn compare_with_pypdf(name: &str, ours: &Value, theirs: &Value) {
    assert_eq!(ours["encrypted"], theirs["encrypted"], "{name}: encrypted");
    assert_eq!(ours["pages"], theirs["pages"], "{name}: pages");
    let names: BTreeSet<String> = theirs["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(attachment_names(ours), names, "{name}: attachments");
    assert_eq!(
        Value::Array(annotation_files(ours)),
        theirs["file_attachment_annotations"],
        "{name}: file attachment annotations"
    );
    assert_eq!(slashed_info(ours), theirs["info"], "{name}: /Info");
    if let Some(counts) = theirs.get("raw_keyword_counts") {
        for (k, n) in counts.as_object().unwrap() {
            assert_eq!(&ours["keywords"][k], n, "{name}: keyword {k}");
        }
    }
}

#[test]
fn matches_pypdf_expected_json() {
    let expected = expected();
    for name in PDFS {
        let ours = results(&read(name));
        let theirs = &expected["pdf"][name];
        assert!(theirs.is_object(), "{name} missing from expected.json");
        compare_with_pypdf(name, &ours, theirs);
        assert!(ours.get("parse_error").is_none(), "{name}: {ours}");
    }
    // The encrypted one opens with the empty password, as pypdf's does.
    let r = results(&read("pdf/r6-user-password.pdf"));
    assert_eq!(
        r["encryption"],
        json!({"v": 5, "r": 6, "key_length": 256, "decrypted": true})
    );
    assert_eq!(
        expected["pdf"]["pdf/r6-user-password.pdf"]["decrypt_empty_password"],
        "OWNER_PASSWORD"
    );
}

/// pypdf, run the way EXPECTED.json was computed.
const PYPDF_SCRIPT: &str = r#"
import hashlib, json, sys
import pypdf
out = {}
for path in sys.argv[1:]:
    rd = pypdf.PdfReader(path)
    r = {'encrypted': rd.is_encrypted}
    if rd.is_encrypted:
        rd.decrypt('')
    r['pages'] = len(rd.pages)
    r['attachments'] = sorted(rd.attachments.keys())
    annots = []
    for page in rd.pages:
        for a in page.get('/Annots') or []:
            a = a.get_object()
            if a.get('/Subtype') == '/FileAttachment':
                fs = a['/FS'].get_object()
                d = fs['/EF']['/F'].get_object().get_data()
                annots.append({'filename': str(fs.get('/UF') or fs.get('/F')), 'size': len(d),
                               'sha256': hashlib.sha256(d).hexdigest()})
    r['file_attachment_annotations'] = annots
    r['info'] = {k: str(v) for k, v in (rd.metadata or {}).items()}
    out[path] = r
print(json.dumps(out))
"#;

#[test]
fn matches_live_pypdf() {
    let Some(py) = python("matches_live_pypdf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let synthetic = dir.path().join("synthetic.pdf");
    std::fs::write(&synthetic, synthetic_pdf()).unwrap();
    let mut paths: Vec<std::path::PathBuf> = PDFS.iter().map(|p| data_dir().join(p)).collect();
    paths.push(synthetic);
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let live = run_python(&py, PYPDF_SCRIPT, &refs);
    for p in &paths {
        let theirs = &live[p.to_str().unwrap()];
        let ours = results(&std::fs::read(p).unwrap());
        compare_with_pypdf(&p.display().to_string(), &ours, theirs);
    }
    // The synthetic document has a real /EmbeddedFiles name tree.
    let synthetic = &live[paths.last().unwrap().to_str().unwrap()];
    assert_eq!(
        synthetic["attachments"],
        json!(["one.txt", "second", "twö.bin"])
    );
}

/// A document with every feature the worker reports: a two-level
/// /EmbeddedFiles name tree, a file-attachment annotation, an orphan
/// embedded-file stream, JavaScript (string and stream), URI, Launch and
/// SubmitForm actions, additional actions, an AcroForm with XFA, and a
/// UTF-16 /Info value.
fn synthetic_pdf() -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let text = |s: &str| Object::String(s.as_bytes().to_vec(), StringFormat::Literal);
    let embedded = |doc: &mut Document, content: &[u8], compress: bool| {
        let mut s = Stream::new(dictionary! {"Type" => "EmbeddedFile"}, content.to_vec());
        if compress {
            s.compress().unwrap();
        }
        doc.add_object(s)
    };
    let f1 = embedded(&mut doc, b"hello from file one", false);
    let f2 = embedded(&mut doc, &b"second file, compressed ".repeat(20), true);
    let f3 = embedded(&mut doc, b"attached to the page", false);
    embedded(&mut doc, b"nobody points at me", false);
    let fs1 = doc.add_object(dictionary! {
        "Type" => "Filespec", "F" => text("one.txt"), "UF" => lopdf::text_string("one.txt"),
        "EF" => dictionary! {"F" => f1},
    });
    let fs2 = doc.add_object(dictionary! {
        "Type" => "Filespec", "F" => text("two.bin"), "UF" => lopdf::text_string("twö.bin"),
        "EF" => dictionary! {"F" => f2},
    });
    let fs3 = doc.add_object(dictionary! {
        "Type" => "Filespec", "F" => text("page.txt"), "EF" => dictionary! {"F" => f3},
    });
    let kid = doc.add_object(dictionary! {
        "Names" => vec![text("one.txt"), fs1.into(), text("second"), fs2.into()],
        "Limits" => vec![text("one.txt"), text("second")],
    });
    let js_stream = doc.add_object(Stream::new(
        dictionary! {},
        b"this.print({bUI: false});".to_vec(),
    ));
    let xfa = doc.add_object(Stream::new(dictionary! {}, b"<xdp:xdp/>".to_vec()));
    let pages_id = doc.new_object_id();
    let annots = vec![
        Object::Dictionary(dictionary! {
            "Type" => "Annot", "Subtype" => "Link", "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()],
            "A" => dictionary! {"S" => "URI", "URI" => text("http://example.com/x")},
        }),
        Object::Dictionary(dictionary! {
            "Type" => "Annot", "Subtype" => "Link", "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()],
            "A" => dictionary! {"Type" => "Action", "S" => "Launch",
                "Win" => dictionary! {"F" => text("cmd.exe"), "P" => text("/c calc")}},
        }),
        Object::Dictionary(dictionary! {
            "Type" => "Annot", "Subtype" => "Widget", "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()],
            "A" => dictionary! {"S" => "SubmitForm",
                "F" => dictionary! {"FS" => "URL", "F" => text("http://example.com/submit")}},
        }),
        Object::Dictionary(dictionary! {
            "Type" => "Annot", "Subtype" => "FileAttachment", "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()],
            "FS" => fs3,
        }),
    ];
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 200.into(), 200.into()],
        "Annots" => annots,
        "AA" => dictionary! {"O" => dictionary! {"S" => "JavaScript", "JS" => js_stream}},
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! {"Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1},
        ),
    );
    let catalog = doc.add_object(dictionary! {
        "Type" => "Catalog", "Pages" => pages_id,
        "OpenAction" => dictionary! {"S" => "JavaScript", "JS" => text("app.alert('synthetic');")},
        "Names" => dictionary! {"EmbeddedFiles" => dictionary! {"Kids" => vec![kid.into()]}},
        "AcroForm" => dictionary! {"Fields" => Vec::<Object>::new(), "XFA" => xfa},
    });
    let info = doc.add_object(dictionary! {
        "Title" => text("Synthetic"), "Author" => lopdf::text_string("Zoë"), "Trapped" => "False",
    });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn synthetic_document_features() {
    let data = synthetic_pdf();
    let a = analyse_pdf(&data).unwrap();
    let r = Value::Object(a.results.clone());
    assert_eq!(r["pages"], 1);
    assert_eq!(r["encrypted"], false);
    assert_eq!(r["acroform"], true);
    assert_eq!(r["xfa"], true);
    assert_eq!(
        r["info"],
        json!({"Title": "Synthetic", "Author": "Zoë", "Trapped": "/False"})
    );
    let js: Vec<&str> = r["javascript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["code"].as_str().unwrap())
        .collect();
    assert_eq!(js.len(), 2, "{r}");
    assert!(js.contains(&"app.alert('synthetic');"));
    assert!(js.contains(&"this.print({bUI: false});"));
    let actions = &r["actions"];
    assert_eq!(actions["open_action"], "JavaScript");
    assert_eq!(actions["uri"], json!(["http://example.com/x"]));
    assert_eq!(actions["launch"], json!(["cmd.exe /c calc"]));
    assert_eq!(actions["submit_form"], json!(["http://example.com/submit"]));
    assert_eq!(actions["additional_actions"], 1);
    assert_eq!(actions["types"]["JavaScript"], 2);
    assert_eq!(actions["types"]["URI"], 1);
    assert_eq!(actions["types"]["Launch"], 1);
    assert_eq!(actions["types"]["SubmitForm"], 1);

    let files: Vec<(Option<&str>, Option<&str>, &str)> = a
        .embedded
        .iter()
        .map(|f| (f.name.as_deref(), f.filename.as_deref(), f.source))
        .collect();
    assert_eq!(
        files,
        [
            (Some("one.txt"), Some("one.txt"), "EmbeddedFiles"),
            (Some("second"), Some("twö.bin"), "EmbeddedFiles"),
            (Some("page.txt"), Some("page.txt"), "FileAttachment"),
            (None, None, "orphan"),
        ]
    );
    let contents: Vec<&[u8]> = a
        .embedded
        .iter()
        .map(|f| f.content.as_deref().unwrap())
        .collect();
    assert_eq!(contents[0], b"hello from file one");
    assert_eq!(contents[1], &b"second file, compressed ".repeat(20)[..]);
    assert_eq!(contents[2], b"attached to the page");
    assert_eq!(contents[3], b"nobody points at me");
    assert_eq!(r["embedded_files"][1]["size"], 24 * 20);
    assert_eq!(
        r["embedded_files"][1]["sha256"],
        sha256(&b"second file, compressed ".repeat(20))
    );
}

#[test]
fn encrypted_with_a_user_password() {
    // The synthetic document, RC4-128 encrypted with user password
    // "secret": lopdf cannot open it with the empty password.
    let mut doc = Document::load_mem(&synthetic_pdf()).unwrap();
    let id = Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal);
    doc.trailer.set("ID", vec![id.clone(), id]);
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: "secret",
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    };
    let state = lopdf::EncryptionState::try_from(version).unwrap();
    doc.encrypt(&state).unwrap();
    let mut data = Vec::new();
    doc.save_to(&mut data).unwrap();

    let r = results(&data);
    assert_eq!(r["encrypted"], true);
    assert_eq!(
        r["encryption"],
        json!({"filter": "Standard", "v": 2, "r": 3, "key_length": 128, "decrypted": false})
    );
    assert_eq!(r["pages"], Value::Null);
    assert_eq!(r["info"], json!({}));
    assert_eq!(r["keywords"]["/Encrypt"], 1);
    assert!(r.get("parse_error").is_none(), "{r}");
}

#[test]
fn limits_apply() {
    let data = synthetic_pdf();
    let opts = PdfOptions {
        max_stream_size: 100,
        max_total_size: 39,
        max_javascript_chars: 5,
        keep_embedded_content: false,
    };
    let a = analyse_pdf_with(&data, &opts).unwrap();
    assert!(a.embedded.iter().all(|f| f.content.is_none()));
    let sizes: Vec<Option<usize>> = a.embedded.iter().map(|f| f.size).collect();
    // 19 bytes; 480 (over max_stream_size); 20 (exactly the rest of the
    // budget); then nothing left.
    assert_eq!(sizes, [Some(19), None, Some(20), None]);
    assert!(a.embedded[1].error.is_some());
    assert_eq!(
        a.embedded[3].error.as_deref(),
        Some("over max_total_size: not decoded")
    );
    for j in a.results["javascript"].as_array().unwrap() {
        assert_eq!(j["truncated"], true);
        assert_eq!(j["code"].as_str().unwrap().chars().count(), 5);
    }
}

#[test]
fn obfuscated_names_are_counted_and_still_parsed() {
    // Hex-escape every /JavaScript name. The file grows, so its
    // cross-reference offsets go wrong and lopdf has to rebuild them.
    let data = synthetic_pdf();
    let mut out = Vec::new();
    let mut rest = &data[..];
    let mut n = 0;
    while let Some(p) = memchr::memmem::find(rest, b"/JavaScript") {
        out.extend_from_slice(&rest[..p]);
        out.extend_from_slice(b"/J#61vaScript");
        rest = &rest[p + 11..];
        n += 1;
    }
    out.extend_from_slice(rest);
    assert_eq!(n, 2);
    let r = results(&out);
    assert_eq!(r["keywords"]["/JavaScript"], 0);
    assert_eq!(r["obfuscated_keywords"], json!({"/JavaScript": 2}));
    // The parser decodes the names: the JavaScript is still found.
    assert_eq!(r["actions"]["open_action"], "JavaScript", "{r}");
    assert_eq!(r["javascript"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn golden_issue_297() {
    let w = worker("pdf", &[]);
    let r = scan_bytes(&w, &read("pdf/issue-297.pdf")).await.unwrap();
    assert!(r.extracted.is_empty() && r.errors.is_empty());
    assert_eq!(
        r.results.unwrap(),
        json!({
            "version": "1.1",
            "encrypted": false,
            "pages": 1,
            "info": {},
            "acroform": false,
            "xfa": false,
            "javascript": [{
                "object": "7 0",
                "length": 66,
                "truncated": false,
                "code": "app.alert({cMsg: 'Hello alert', cTitle: 'Testing PDF', nIcon: 3});"
            }],
            "actions": {
                "open_action": "JavaScript",
                "types": {"JavaScript": 1},
                "launch": [],
                "uri": [],
                "submit_form": [],
                "goto_remote": [],
                "import_data": [],
                "additional_actions": 0
            },
            "embedded_files": [],
            "keywords": {
                "/JS": 1, "/JavaScript": 1, "/OpenAction": 1, "/AA": 0, "/Launch": 0,
                "/EmbeddedFile": 0, "/URI": 0, "/AcroForm": 0, "/XFA": 0, "/ObjStm": 0,
                "/Encrypt": 0
            },
            "obfuscated_keywords": {}
        })
    );
}

#[tokio::test]
async fn golden_attachment_extracts_the_file() {
    let w = worker("pdf", &[]);
    let r = scan_bytes(&w, &read("pdf/attachment.pdf")).await.unwrap();
    let results = r.results.unwrap();
    assert_eq!(
        results["embedded_files"],
        json!([{
            "name": "jpeg.pdf",
            "filename": "jpeg.pdf",
            "source": "FileAttachment",
            "size": 100898,
            "sha256": "b65ead3923590619dff1f91c3a07302f38c53598b3031aec619042c206257c22"
        }])
    );
    assert_eq!(r.extracted.len(), 1);
    let x = &r.extracted[0];
    assert_eq!(x.payload_meta.extra_data["filename"], "jpeg.pdf");
    assert_eq!(
        sha256(&x.content),
        "b65ead3923590619dff1f91c3a07302f38c53598b3031aec619042c206257c22"
    );
    // Without extraction the files are still listed.
    let w = worker("pdf", &[("extract_embedded", "false")]);
    let r = scan_bytes(&w, &read("pdf/attachment.pdf")).await.unwrap();
    assert!(r.extracted.is_empty());
    assert_eq!(r.results.unwrap()["embedded_files"][0]["size"], 100898);
}

#[tokio::test]
async fn options_and_non_pdfs() {
    let registry = stoq_plugins_misc::registry();
    let build = &registry.get("pdf").unwrap().build;
    for (k, v) in [
        ("extract_embedded", "maybe"),
        ("max_stream_size", "0"),
        ("max_stream_size", "lots"),
        ("max_total_size", "0"),
        ("max_javascript_chars", "-1"),
    ] {
        let e = build(&stoq_core::PluginConfig::new("pdf", [(k, v)])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("pdf") && msg.contains(k) && msg.contains(v),
            "{msg}"
        );
    }
    let w = worker("pdf", &[]);
    assert!(scan_bytes(&w, b"").await.is_none());
    assert!(scan_bytes(&w, b"PK\x03\x04 not a pdf").await.is_none());
}

#[test]
fn truncated_and_corrupted_pdfs_never_panic() {
    let mut panics = 0;
    let mut runs = 0;
    for name in PDFS {
        let data = read(name);
        let steps = if data.len() > 50_000 { 40 } else { 150 };
        let mut inputs: Vec<Vec<u8>> = cut_points(data.len(), steps)
            .into_iter()
            .map(|n| data[..n].to_vec())
            .collect();
        for (from, every) in [(0, 97), (13, 501), (200, 4099), (7, 31)] {
            inputs.push(corrupt(&data, from, every));
        }
        for input in inputs {
            runs += 1;
            if let Some(a) = analyse_pdf(&input) {
                if a.results.get("parse_error").and_then(Value::as_str)
                    == Some("the PDF parser panicked")
                {
                    panics += 1;
                }
                // Every result has the raw counts.
                assert_eq!(a.results["keywords"].as_object().unwrap().len(), 11);
            }
        }
    }
    eprintln!("{runs} truncated/corrupted PDFs analysed; lopdf panicked (caught) on {panics}");
}
