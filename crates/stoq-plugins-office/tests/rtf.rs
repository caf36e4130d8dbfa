//! `rtf` worker and [`parse_rtf`]: objects compared with oletools' rtfobj
//! (expected.json, and live with `$STOQ_TEST_PYTHON`), including the
//! malformed issue_185/issue_251 files; obfuscation tricks; golden output;
//! damaged inputs.

mod common;

use serde_json::{json, Value};
use stoq_core::hashing::{hex, sha256};
use stoq_core::{Payload, Request, Worker, WorkerResponse};
use stoq_plugins_office::rtf::{worker_response, RtfWorker};
use stoq_plugins_office::{parse_ole, parse_rtf};

/// Our objects in expected.json's rtfobj shape.
fn rtfobj_view(data: &[u8]) -> Value {
    let r = parse_rtf(data);
    let objects: Vec<Value> = r
        .objects
        .iter()
        .map(|o| {
            let mut v = json!({
                "start": o.raw.start,
                "rawdata_size": o.raw.data.len(),
                "rawdata_sha256": hex(&sha256(&o.raw.data)),
                "is_ole": o.ole.is_some(),
            });
            if let Some(ole) = &o.ole {
                let d = ole.data.as_deref().unwrap();
                v["class_name"] = json!(ole.class_name_str());
                v["format_id"] = json!(ole.format_id);
                v["oledata_size"] = json!(d.len());
                v["oledata_sha256"] = json!(hex(&sha256(d)));
                v["is_package"] = json!(o.package.is_some());
                if let Some(p) = &o.package {
                    v["filename"] = json!(p.label);
                    v["src_path"] = json!(p.src_path);
                    v["temp_path"] = json!(p.tmp_path);
                    v["package_size"] = json!(p.data.len());
                    v["package_sha256"] = json!(hex(&sha256(&p.data)));
                }
            }
            v
        })
        .collect();
    json!({"tool": "oletools rtfobj", "object_count": objects.len(), "objects": objects})
}

#[test]
fn objects_equal_rtfobj() {
    let files = common::section("rtf");
    assert_eq!(files.len(), 6);
    for (path, want) in &files {
        assert_eq!(rtfobj_view(&common::read(path)), *want, "{path}");
    }
}

const LIVE_SCRIPT: &str = r#"
import glob, hashlib, json
from oletools import rtfobj
out = {}
for path in sorted(glob.glob('rtf/*.rtf')):
    p = rtfobj.RtfObjParser(open(path, 'rb').read())
    p.parse()
    objs = []
    for o in p.objects:
        e = {'start': o.start, 'rawdata_size': len(o.rawdata), 'rawdata_sha256': hashlib.sha256(o.rawdata).hexdigest(),
             'is_ole': bool(o.is_ole)}
        if o.is_ole:
            e.update({'class_name': o.class_name.decode('latin-1') if o.class_name else None,
                      'format_id': o.format_id, 'oledata_size': len(o.oledata),
                      'oledata_sha256': hashlib.sha256(o.oledata).hexdigest(), 'is_package': bool(o.is_package)})
            if o.is_package:
                e.update({'filename': o.filename, 'src_path': o.src_path, 'temp_path': o.temp_path,
                          'package_size': len(o.olepkgdata),
                          'package_sha256': hashlib.sha256(o.olepkgdata).hexdigest()})
        objs.append(e)
    out[path] = {'tool': 'oletools rtfobj', 'object_count': len(objs), 'objects': objs}
print(json.dumps(out))
"#;

#[test]
fn objects_equal_live_rtfobj() {
    let Some(live) = common::python("rtfobj", LIVE_SCRIPT) else {
        return;
    };
    let live = live.as_object().unwrap();
    assert_eq!(live.len(), 7);
    for (path, want) in live {
        assert_eq!(
            rtfobj_view(&common::read(path)),
            *want,
            "{path} (live rtfobj)"
        );
    }
}

/// Hand-made obfuscations, each checked against a live rtfobj run when
/// available and against fixed answers always.
const TRICKS: &[(&str, &[u8], &str)] = &[
    (
        "whitespace in hex",
        b"{\\rtf1{\\object\\objemb{\\*\\objdata 01\n02\r\n 03\t04}}}",
        "01020304",
    ),
    (
        "odd digit count",
        b"{\\rtf1{\\*\\objdata 0102030}}",
        "010203",
    ),
    (
        "\\'hh after an odd count",
        b"{\\rtf1{\\*\\objdata 010\\'41203}}",
        "0120",
    ),
    (
        "\\bin raw bytes",
        b"{\\rtf1{\\*\\objdata 01\\bin3 \x02\x03\x04 05}}",
        "0102030405",
    ),
    (
        "\\bin negative",
        b"{\\rtf1{\\*\\objdata 01\\bin-99 02}}",
        "0102",
    ),
    (
        "junk control words",
        b"{\\rtf1{\\*\\objdata 01\\objupdate\\par\\foo123 02\\*03}}",
        "010203",
    ),
    (
        "nested destination",
        b"{\\rtf1{\\*\\objdata 01{\\*\\pict 0a0b}02{\\junk 0c}03}}",
        "01020c03",
    ),
    (
        "missing braces",
        b"{\\rtf1{\\object{\\*\\objdata 0102",
        "0102",
    ),
    (
        "stray closing braces",
        b"}}{\\rtf1{\\*\\objdata 0102}}}}",
        "0102",
    ),
    (
        "non-hex text",
        b"{\\rtf1{\\*\\objdata 0x01,zz02;03}}",
        "001020",
    ),
];

#[test]
fn obfuscation_tricks() {
    for (what, rtf, want_hex) in TRICKS {
        let r = parse_rtf(rtf);
        assert_eq!(r.objects.len(), 1, "{what}");
        assert_eq!(hex(&r.objects[0].raw.data), *want_hex, "{what}");
    }
}

#[test]
fn obfuscation_tricks_equal_live_rtfobj() {
    let inputs: Vec<Value> = TRICKS
        .iter()
        .map(|(_, rtf, _)| json!(rtf.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        .collect();
    let script = format!(
        "import json\nfrom oletools import rtfobj\nout = []\nfor h in {}:\n    p = rtfobj.RtfObjParser(bytes.fromhex(h))\n    p.parse()\n    out.append([[o.start, o.rawdata.hex()] for o in p.objects])\nprint(json.dumps(out))\n",
        serde_json::to_string(&inputs).unwrap()
    );
    let Some(live) = common::python("rtfobj (tricks)", &script) else {
        return;
    };
    for ((what, rtf, _), want) in TRICKS.iter().zip(live.as_array().unwrap()) {
        let got: Vec<Value> = parse_rtf(rtf)
            .objects
            .iter()
            .map(|o| json!([o.raw.start, hex(&o.raw.data)]))
            .collect();
        assert_eq!(&json!(got), want, "{what} (live rtfobj)");
    }
}

fn summary(r: &WorkerResponse) -> Value {
    json!({
        "results": r.results,
        "extracted": r.extracted.iter().map(|e| json!({
            "payload_meta": e.payload_meta,
            "size": e.content.len(),
            "sha256": hex(&sha256(&e.content)),
        })).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|e| e.error.clone()).collect::<Vec<_>>(),
    })
}

async fn scan(data: Vec<u8>) -> Option<WorkerResponse> {
    RtfWorker
        .scan(&Payload::new(data), &Request::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn golden_worker_output() {
    for name in [
        "package-object-exe.rtf",
        "package-object-textfile.rtf",
        "word-document-object.rtf",
        "issue_185.rtf",
        "issue_251.rtf",
        "embedded-simple-2007.libreoffice.rtf",
    ] {
        let r = scan(common::read(&format!("rtf/{name}"))).await.unwrap();
        common::golden(&format!("rtf-{name}.json"), &summary(&r));
    }
}

#[tokio::test]
async fn extraction() {
    // A package: the embedded executable with its name.
    let r = scan(common::read("rtf/package-object-exe.rtf"))
        .await
        .unwrap();
    assert_eq!(r.extracted.len(), 1);
    let e = &r.extracted[0];
    assert_eq!(e.payload_meta.extra_data["filename"], "invoice.exe");
    assert_eq!(e.payload_meta.extra_data["index"], 0);
    assert!(e.payload_meta.should_archive);
    assert_eq!(
        hex(&sha256(&e.content)),
        "32acc1bc543116cbe2cff10cb867772df2f254ff2634c870aef0b46c4b696fdb"
    );
    // An embedded Word document: the OLE2 file, which the ole worker reads.
    let r = scan(common::read("rtf/word-document-object.rtf"))
        .await
        .unwrap();
    let results = r.results.unwrap();
    assert_eq!(results["objects"][0]["is_ole2"], true);
    assert_eq!(
        results["objects"][0]["clsid"],
        "00020906-0000-0000-C000-000000000046"
    );
    let doc = &r.extracted[0];
    assert_eq!(doc.payload_meta.extra_data["class_name"], "Word.Document.8");
    assert_eq!(
        doc.content,
        common::read("office-ole/dde-test-from-office2016.doc")
    );
    assert_eq!(parse_ole(&doc.content).unwrap().streams.len(), 5);
    // A non-OLE object: the raw bytes.
    let r = scan(common::read("rtf/issue_251.rtf")).await.unwrap();
    assert_eq!(r.extracted.len(), 1);
    assert_eq!(r.extracted[0].content.len(), 43);
    // No objects, no payloads; non-RTF is not handled.
    let r = scan(common::read("rtf/embedded-simple-2007.libreoffice.rtf"))
        .await
        .unwrap();
    assert!(r.extracted.is_empty());
    assert_eq!(r.results.unwrap(), json!({"objects": [], "anomalies": []}));
    assert!(scan(b"not rtf".to_vec()).await.is_none());
    assert!(scan(common::read("office-ole/encrypted.doc"))
        .await
        .is_none());
}

#[test]
fn truncated_package_gives_partial_results_and_errors() {
    let data = common::read("rtf/package-object-exe.rtf");
    // Cut inside the hex of the executable: the OLE 1.0 object is now
    // shorter than declared, so only raw bytes remain, as rtfobj reports.
    let r = parse_rtf(&data[..data.len() / 2]);
    assert_eq!(r.objects.len(), 1);
    assert!(r.objects[0].ole.is_none());
    assert!(!r.objects[0].raw.data.is_empty());
    let resp = worker_response(&r);
    assert_eq!(resp.extracted.len(), 1);
    // Declared package size larger than the data: partial file + error.
    let mut package = vec![2, 0];
    package.extend_from_slice(b"a.txt\0C:\\a.txt\0\0\0\0\0\0\0\0\0C:\\tmp\\a.txt\0");
    package.extend_from_slice(&100u32.to_le_bytes());
    package.extend_from_slice(b"hello");
    let mut obj = vec![1, 5, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0];
    obj.extend_from_slice(b"Package\0");
    obj.extend_from_slice(&[0; 8]);
    obj.extend_from_slice(&(package.len() as u32).to_le_bytes());
    obj.extend_from_slice(&package);
    let rtf = format!(
        "{{\\rtf1{{\\object\\objemb{{\\*\\objdata {}}}}}}}",
        obj.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let r = parse_rtf(rtf.as_bytes());
    let p = r.objects[0].package.as_ref().expect("package still parsed");
    assert!(p.is_truncated());
    assert_eq!(p.data, b"hello");
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let resp = worker_response(&r);
    assert_eq!(resp.errors.len(), 1);
    assert_eq!(resp.extracted[0].content, &b"hello"[..]);
    assert_eq!(
        resp.extracted[0].payload_meta.extra_data["filename"],
        "a.txt"
    );
}

#[test]
fn truncations_and_mutations_never_panic() {
    for (path, _) in common::section("rtf") {
        let data = common::read(&path);
        for m in common::mutations(&data, 60) {
            let r = parse_rtf(&m);
            let _ = worker_response(&r);
        }
    }
}
