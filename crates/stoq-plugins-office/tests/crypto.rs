//! Encrypted Office documents: oletools' encrypted test files decrypted
//! with the default passwords, compared with msoffcrypto-tool 6.1.0
//! (expected.json section `msoffcrypto`: sha256 of each stream it
//! decrypts, the OOXML package standing for the `EncryptedPackage`
//! stream) and with what oletools' olevba finds in the decrypted
//! documents; the files oletools encrypted with its test password
//! `encrypted` are compared once more with that password. Live with
//! `$STOQ_TEST_PYTHON`.

mod common;

use serde_json::{json, Value};
use stoq_core::hashing::{hex, sha256};
use stoq_core::{Payload, Request, Worker};
use stoq_plugins_office::find_vba_with;
use stoq_plugins_office::ole::{parse_ole_with, worker_response, OleOptions};
use stoq_plugins_office::olevba::{Shape, VbaWorker};

/// The password oletools' own tests use for `encrypted.*`.
const TEST_PASSWORD: &str = "encrypted";

/// msoffcrypto's `type` as our method name; for what it cannot open, the
/// type it gives with the test password.
fn method_of(want: &Value) -> &str {
    want["type"]
        .as_str()
        .or(want["with_test_password"]["type"].as_str())
        .unwrap_or("agile")
}

/// `ole` and olevba with `passwords` on `path`, against msoffcrypto's
/// answer `want` for those passwords. Whether it was decrypted.
fn check_one(path: &str, want: &Value, method: &str, passwords: &[String]) -> bool {
    let opts = OleOptions {
        passwords: passwords.to_vec(),
        ..OleOptions::default()
    };
    let r = parse_ole_with(&common::read(path), &opts).unwrap();
    let enc = r
        .encryption
        .as_ref()
        .unwrap_or_else(|| panic!("{path}: not flagged"));
    assert_eq!(enc.method, method, "{path}");
    assert_eq!(enc.password.as_deref(), want["password"].as_str(), "{path}");
    let ours: Value = r
        .decrypted
        .iter()
        .map(|(i, d)| (r.streams[*i].joined(), json!(hex(&sha256(d)))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    match want.get("decrypted_sha256") {
        Some(theirs) => assert_eq!(&ours, theirs, "{path}: decrypted streams"),
        None => {
            assert_eq!(ours, json!({}), "{path}");
            assert!(enc.note.is_some(), "{path}: says why it stays encrypted");
        }
    }
    // olevba analyses what is inside, as oletools does after decrypting.
    let v = find_vba_with(&common::read(path), passwords).unwrap();
    let o = &want["olevba"];
    assert_eq!(v.vba_macros, o["vba_macros"], "{path}");
    assert_eq!(v.xlm, o["xlm_macros"], "{path}");
    // msodde prints the field instructions untrimmed.
    let dde: Vec<&str> = o["dde"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().trim())
        .collect();
    assert_eq!(v.dde, dde, "{path}");
    if v.vba_macros {
        assert_eq!(v.verdict.flags(), o["mraptor_flags"], "{path}");
        common::assert_same_modules(&v, &o["vba_modules"], path);
    }
    assert_eq!(v.encryption.unwrap().password, enc.password, "{path}");
    want["password"].is_string()
}

fn check_against(want_all: &Value) {
    let docs = want_all.as_object().unwrap();
    assert_eq!(docs.len(), 10);
    let defaults = stoq_plugins_office::crypto::default_passwords();
    let (mut opened, mut opened_with_test_password) = (0, 0);
    for (path, want) in docs {
        let method = method_of(want);
        opened += usize::from(check_one(path, want, method, &defaults));
        if let Some(w) = want.get("with_test_password") {
            let pw = [TEST_PASSWORD.to_string()];
            opened_with_test_password += usize::from(check_one(path, w, method, &pw));
        }
    }
    assert_eq!(
        opened, 6,
        "five files use Excel's default password, dde-encrypted-1234.doc another default"
    );
    assert_eq!(
        opened_with_test_password, 4,
        "encrypted.doc, .docx, .ppt and .xls open with the test password"
    );
}

#[test]
fn decryption_equals_msoffcrypto_and_olevba_sees_inside() {
    check_against(&common::expected()["msoffcrypto"]);
}

/// Prints the `msoffcrypto` section of expected.json.
const LIVE: &str = r#"
import glob, hashlib, io, json, os, tempfile
import msoffcrypto, olefile
from oletools.olevba import VBA_Parser
from oletools.mraptor import MacroRaptor
from oletools import msodde
PW = ["VelvetSweatshop", "/01Hannes Ruescher/01", "123", "1234", "12345", "123456", "4321"]
STREAMS = {'doc97': ['WordDocument', '0Table', '1Table', 'Data'], 'xls97': ['Workbook'],
           'ppt97': ['Current User', 'PowerPoint Document']}

def attempt(p, passwords):
    of = msoffcrypto.OfficeFile(open(p, 'rb'))
    r = {'format': of.format, 'password': None}
    plain = None
    for pw in passwords:
        try:
            of.load_key(password=pw); buf = io.BytesIO(); of.decrypt(buf)
        except Exception:
            continue
        r['password'] = pw; r['type'] = of.type; plain = buf.getvalue()
        if of.format == 'ooxml':
            r['decrypted_sha256'] = {'EncryptedPackage': hashlib.sha256(plain).hexdigest()}
        elif of.format in STREAMS:
            ole = olefile.OleFileIO(plain)
            r['decrypted_sha256'] = {s: hashlib.sha256(ole.openstream(s).read()).hexdigest()
                                     for s in STREAMS[of.format] if ole.exists(s)}
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
    try:
        links = msodde.process_maybe_encrypted(target, field_filter_mode=msodde.FIELD_FILTER_DDE)
    except Exception:
        links = ''  # still encrypted: msodde reads nothing
    o['dde'] = [l for l in links.splitlines() if l.strip()]
    r['olevba'] = o
    return r

out = {}
for p in sorted(glob.glob('encrypted/*')):
    r = attempt(p, PW)
    if r['password'] is None and os.path.basename(p).startswith('encrypted.'):
        r['with_test_password'] = attempt(p, ['encrypted'])
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

/// An encrypted Word 97-2003 document: its decrypted `WordDocument` and
/// table streams replace the encrypted ones, and the decrypted FIB no
/// longer says it is encrypted.
#[test]
fn ole_worker_extracts_decrypted_word_streams() {
    let data = common::read("encrypted/encrypted.doc");
    let opts = OleOptions {
        extract_streams: false,
        passwords: vec!["wrong".into(), TEST_PASSWORD.into()],
        ..OleOptions::default()
    };
    let r = worker_response(parse_ole_with(&data, &opts).unwrap(), &opts);
    let names: Vec<&Value> = r
        .extracted
        .iter()
        .map(|p| &p.payload_meta.extra_data["name"])
        .collect();
    assert_eq!(names, ["1Table", "WordDocument"]);
    for p in &r.extracted {
        assert_eq!(
            p.payload_meta.extra_data["decrypted"],
            json!({"method": "rc4", "password": TEST_PASSWORD})
        );
    }
    let word = &r.extracted[1].content;
    assert_eq!(&word[..2], b"\xec\xa5", "FIB magic");
    assert_eq!(word[0x0B] & 0x81, 0, "fEncrypted and fObfuscation cleared");
    let e = &r.results.unwrap()["encryption"];
    assert_eq!(e["method"], "rc4");
    assert_eq!(e["password"], TEST_PASSWORD);
}

/// Decrypting is bounded work: truncated and bit-flipped encrypted files
/// give a result (or a clean "not decrypted"), never a panic.
#[tokio::test]
async fn damaged_encrypted_files_never_panic() {
    for path in [
        "encrypted/dde-test-encrypt-standardpassword.xlsx",
        "encrypted/dde-test-encrypt-standardpassword.xls",
        "encrypted/encrypted.doc",
        "encrypted/encrypted.ppt",
    ] {
        let data = common::read(path);
        let worker = VbaWorker::new(Shape::Olevba {
            include_code: false,
        });
        // The test password too, so that encrypted.doc is decrypted.
        let opts = OleOptions {
            passwords: vec!["VelvetSweatshop".into(), TEST_PASSWORD.into()],
            ..OleOptions::default()
        };
        for cut in (0..data.len()).step_by(997) {
            let _ = parse_ole_with(&data[..cut], &opts);
            let _ = find_vba_with(&data[..cut], &opts.passwords);
        }
        for i in (0..data.len()).step_by(211) {
            let mut d = data.clone();
            d[i] ^= 0x5A;
            let _ = parse_ole_with(&d, &opts);
            let _ = find_vba_with(&d, &opts.passwords);
            let _ = worker.scan(&Payload::new(d), &Request::default()).await;
        }
    }
}
