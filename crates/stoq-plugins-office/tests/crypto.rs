//! Encrypted Office documents: oletools' encrypted test files decrypted
//! with the default passwords, compared with msoffcrypto-tool 6.1.0
//! (expected.json section `msoffcrypto`: sha256 of the decrypted OOXML
//! package or of the decrypted Workbook stream) and with what oletools'
//! olevba finds in the decrypted documents; live with `$STOQ_TEST_PYTHON`.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use stoq_core::hashing::{hex, sha256};
use stoq_core::{Payload, Request, Worker};
use stoq_plugins_office::find_vba;
use stoq_plugins_office::ole::{parse_ole, parse_ole_with, worker_response, OleOptions};
use stoq_plugins_office::olevba::{Shape, VbaWorker};

/// msoffcrypto's `type` (or format, for what it cannot open) as our
/// method names.
fn method_of(want: &Value) -> &str {
    match (want["type"].as_str(), want["format"].as_str()) {
        (Some(t), _) => t,
        (None, Some("doc97")) => "word",
        (None, Some("ppt97")) => "powerpoint",
        (None, Some("xls97")) => "rc4",
        (None, _) => "agile",
    }
}

fn check_against(want_all: &Value) {
    let docs = want_all.as_object().unwrap();
    assert_eq!(docs.len(), 9);
    let mut opened = 0;
    for (path, want) in docs {
        let r = parse_ole(&common::read(path)).unwrap();
        let enc = r
            .encryption
            .as_ref()
            .unwrap_or_else(|| panic!("{path}: not flagged"));
        assert_eq!(enc.method, method_of(want), "{path}");
        assert_eq!(enc.password.as_deref(), want["password"].as_str(), "{path}");
        let stream = r
            .decrypted
            .as_ref()
            .map(|(i, d)| (r.streams[*i].joined(), d));
        if let Some(sha) = want["package_sha256"].as_str() {
            let (name, data) = stream.unwrap();
            assert_eq!(name, "EncryptedPackage", "{path}");
            assert_eq!(hex(&sha256(data)), sha, "{path}: decrypted package");
            opened += 1;
        } else if let Some(sha) = want["workbook_sha256"].as_str() {
            let (name, data) = stream.unwrap();
            assert_eq!(name, "Workbook", "{path}");
            assert_eq!(hex(&sha256(data)), sha, "{path}: decrypted workbook");
            opened += 1;
        } else {
            assert!(stream.is_none(), "{path}");
            assert!(enc.note.is_some(), "{path}: says why it stays encrypted");
        }
        // olevba analyses what is inside, as oletools does after decrypting.
        let v = find_vba(&common::read(path)).unwrap();
        let o = &want["olevba"];
        assert_eq!(v.vba_macros, o["vba_macros"], "{path}");
        assert_eq!(v.xlm, o["xlm_macros"], "{path}");
        if v.vba_macros {
            assert_eq!(v.verdict.flags(), o["mraptor_flags"], "{path}");
            let ours: BTreeSet<&str> = v.modules.iter().map(|m| m.module.as_str()).collect();
            // olevba lists its BIFF plugin's output as a pseudo-module.
            let theirs: BTreeSet<&str> = o["vba_modules"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .filter(|m| *m != "xlm_macro.txt")
                .collect();
            assert_eq!(ours, theirs, "{path}");
        }
        if want["password"].is_string() {
            assert_eq!(v.encryption.unwrap().password, enc.password, "{path}");
        }
    }
    assert_eq!(opened, 5, "five of the files use Excel's default password");
}

#[test]
fn decryption_equals_msoffcrypto_and_olevba_sees_inside() {
    check_against(&common::expected()["msoffcrypto"]);
}

const LIVE: &str = r#"
import glob, hashlib, io, json, os, tempfile
import msoffcrypto, olefile
from oletools.olevba import VBA_Parser
from oletools.mraptor import MacroRaptor
PW = ["VelvetSweatshop", "/01Hannes Ruescher/01", "123", "1234", "12345", "123456", "4321"]
out = {}
for p in sorted(glob.glob('encrypted/*')):
    of = msoffcrypto.OfficeFile(open(p, 'rb'))
    r = {'format': of.format, 'password': None}
    plain = None
    for pw in PW:
        try:
            of.load_key(password=pw); buf = io.BytesIO(); of.decrypt(buf)
        except Exception:
            continue
        r['password'] = pw; r['type'] = of.type; plain = buf.getvalue()
        if of.format == 'ooxml':
            r['package_sha256'] = hashlib.sha256(plain).hexdigest()
        else:
            wb = olefile.OleFileIO(plain).openstream('Workbook').read()
            r['workbook_sha256'] = hashlib.sha256(wb).hexdigest()
        break
    target = p
    if plain is not None:
        fd, target = tempfile.mkstemp(suffix=os.path.splitext(p)[1]); os.close(fd)
        open(target, 'wb').write(plain)
    v = VBA_Parser(target)
    o = {'vba_macros': bool(v.detect_vba_macros()), 'xlm_macros': bool(v.detect_xlm_macros())}
    if o['vba_macros']:
        mr = MacroRaptor(v.get_vba_code_all_modules()); mr.scan()
        o['mraptor_flags'] = mr.get_flags()
        o['vba_modules'] = sorted({x[2] for x in v.extract_all_macros()})
    v.close()
    r['olevba'] = o
    out[p] = r
print(json.dumps(out))
"#;

#[test]
fn decryption_equals_live_msoffcrypto() {
    let Some(live) = common::python("msoffcrypto", LIVE) else {
        return;
    };
    check_against(&live);
}

/// The `ole` worker extracts the decrypted package in place of the
/// `EncryptedPackage` stream, even with `extract_streams` off; the
/// `passwords` option decides what is tried.
#[test]
fn ole_worker_extracts_the_decrypted_document() {
    let data = common::read("encrypted/autostart-encrypt-standardpassword.xlsm");
    let opts = OleOptions {
        extract_streams: false,
        ..OleOptions::default()
    };
    let r = worker_response(parse_ole_with(&data, &opts).unwrap(), &opts);
    assert_eq!(r.extracted.len(), 1);
    let p = &r.extracted[0];
    assert!(p.content.starts_with(b"PK\x03\x04"));
    assert_eq!(p.payload_meta.extra_data["name"], "EncryptedPackage");
    assert_eq!(p.payload_meta.extra_data["decrypted"]["method"], "agile");
    assert_eq!(
        p.payload_meta.extra_data["decrypted"]["password"],
        "VelvetSweatshop"
    );
    let results = r.results.unwrap();
    assert_eq!(results["encryption"]["decrypted"], true);
    // Without the right password: flagged, nothing decrypted.
    let opts = OleOptions {
        passwords: vec!["wrong".into()],
        ..opts
    };
    let r = worker_response(parse_ole_with(&data, &opts).unwrap(), &opts);
    assert!(r.extracted.is_empty());
    let e = &r.results.unwrap()["encryption"];
    assert_eq!(e["decrypted"], false);
    assert_eq!(e["note"], "none of the 1 passwords tried opened it");
}

/// Decrypting is bounded work: truncated and bit-flipped encrypted files
/// give a result (or a clean "not decrypted"), never a panic.
#[tokio::test]
async fn damaged_encrypted_files_never_panic() {
    for path in [
        "encrypted/dde-test-encrypt-standardpassword.xlsx",
        "encrypted/dde-test-encrypt-standardpassword.xls",
    ] {
        let data = common::read(path);
        let worker = VbaWorker::new(Shape::Olevba {
            include_code: false,
        });
        for cut in (0..data.len()).step_by(997) {
            let _ = parse_ole(&data[..cut]);
            let _ = find_vba(&data[..cut]);
        }
        for i in (0..data.len()).step_by(211) {
            let mut d = data.clone();
            d[i] ^= 0x5A;
            let _ = parse_ole(&d);
            let _ = worker.scan(&Payload::new(d), &Request::default()).await;
        }
    }
}
