//! `olevba` / `mraptor` workers and [`find_vba`]: container type, VBA and
//! XLM detection, module names and MacroRaptor flags compared with
//! oletools (expected.json, and live `olevba`/`mraptor`/`msodde` with
//! `$STOQ_TEST_PYTHON`), VBA source cross-checked with the `ovba` crate,
//! DDE fields, golden output, damaged inputs.

mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use stoq_core::{Payload, Request, Worker, WorkerResponse};
use stoq_plugins_office::find_vba;
use stoq_plugins_office::olevba::{Shape, VbaWorker};
use stoq_plugins_office::vba::VbaReport;

/// oletools 0.60.2 `detect_xlm_macros` does not look at OOXML files
/// without XLMMacroDeobfuscator; this crate flags their macro sheets.
const XLM_IN_OOXML: &str = "office-ooxml/excel4_sample_macro.xlsm";

/// Our view in the shape of expected.json's olevba fields.
fn olevba_view(path: &str, r: &VbaReport) -> Value {
    let mut v = json!({
        "olevba_type": r.filetype,
        "vba_macros": r.vba_macros,
        "xlm_macros": r.xlm && path != XLM_IN_OOXML,
    });
    if r.vba_macros {
        let m = &r.verdict;
        v["mraptor"] = json!({
            "suspicious": m.suspicious,
            "autoexec": m.autoexec,
            "write": m.write,
            "execute": m.execute,
            "flags": m.flags(),
            "matches": m.matches,
        });
        let modules: BTreeSet<&str> = r.modules.iter().map(|m| m.module.as_str()).collect();
        v["vba_modules"] = json!(modules);
    }
    v
}

fn expected_view(e: &Value) -> Value {
    let mut v = json!({
        "olevba_type": e["olevba_type"],
        "vba_macros": e["vba_macros"],
        "xlm_macros": e["xlm_macros"],
    });
    for k in ["mraptor", "vba_modules"] {
        if let Some(x) = e.get(k) {
            v[k] = x.clone();
        }
    }
    v
}

fn all_documents() -> Vec<(String, Value)> {
    let mut v = common::section("ole");
    v.extend(common::section("ooxml"));
    v
}

#[test]
fn macro_detection_and_flags_equal_olevba_and_mraptor() {
    let docs = all_documents();
    assert_eq!(docs.len(), 20);
    let mut with_macros = 0;
    for (path, want) in &docs {
        let data = common::read(path);
        let Some(r) = find_vba(&data) else {
            // Zips that are not OOXML (ODF, OpenOffice 1): olevba calls
            // them OpenXML and finds nothing; we do not handle them.
            assert!(path.ends_with(".odt") || path.ends_with(".sxw"), "{path}");
            assert_eq!(want["vba_macros"], false);
            continue;
        };
        assert_eq!(olevba_view(path, &r), expected_view(want), "{path}");
        if r.vba_macros {
            with_macros += 1;
        }
    }
    assert_eq!(with_macros, 2, "the corpus has two VBA documents");
    let xlsm = find_vba(&common::read(XLM_IN_OOXML)).unwrap();
    assert!(xlsm.xlm, "xl/macrosheets/ flags XLM");
}

const LIVE_SCRIPT: &str = r#"
import glob, json
from oletools.olevba import VBA_Parser
from oletools.mraptor import MacroRaptor
out = {}
for p in sorted(glob.glob('office-ole/*') + glob.glob('office-ooxml/*')):
    v = VBA_Parser(p)
    r = {'olevba_type': v.type, 'vba_macros': bool(v.detect_vba_macros()), 'xlm_macros': bool(v.detect_xlm_macros())}
    if r['vba_macros']:
        mr = MacroRaptor(v.get_vba_code_all_modules())
        mr.scan()
        r['mraptor'] = {'suspicious': mr.suspicious, 'autoexec': mr.autoexec, 'write': mr.write,
                        'execute': mr.execute, 'flags': mr.get_flags(), 'matches': mr.matches}
        r['vba_modules'] = sorted({x[2] for x in v.extract_all_macros()})
    v.close()
    out[p] = r
print(json.dumps(out))
"#;

#[test]
fn macro_flags_equal_live_mraptor() {
    let Some(live) = common::python("olevba/mraptor", LIVE_SCRIPT) else {
        return;
    };
    let live = live.as_object().unwrap();
    assert_eq!(live.len(), 25);
    for (path, want) in live {
        let Some(r) = find_vba(&common::read(path)) else {
            assert_eq!(want["vba_macros"], false, "{path}");
            continue;
        };
        assert_eq!(olevba_view(path, &r), *want, "{path} (live oletools)");
    }
}

/// The module source equals what the `ovba` crate decompresses from the
/// same vbaProject.bin.
#[test]
fn module_source_equals_the_ovba_crate() {
    let data = common::read("office-ooxml/oleform-PR314.docm");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&data[..])).unwrap();
    let mut bin = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("word/vbaProject.bin").unwrap(), &mut bin).unwrap();
    let project = ovba::open_project(bin).unwrap();
    let r = find_vba(&data).unwrap();
    assert_eq!(r.modules.len(), project.modules.len());
    for m in &project.modules {
        let theirs = project.module_source(&m.name).unwrap();
        let ours = r
            .modules
            .iter()
            .find(|x| x.module.starts_with(&format!("{}.", m.name)))
            .unwrap_or_else(|| panic!("module {} missing", m.name));
        assert_eq!(ours.code, theirs, "module {}", m.name);
        assert_eq!(ours.container.as_deref(), Some("word/vbaProject.bin"));
    }
}

#[test]
fn powerpoint_vba_is_found_in_the_compressed_storage() {
    let r = find_vba(&common::read("office-ole/sample_with_vba.ppt")).unwrap();
    assert_eq!(r.filetype, "PPT");
    assert_eq!(r.modules.len(), 1);
    let m = &r.modules[0];
    assert_eq!(m.module, "Module1.bas");
    assert_eq!(m.stream, "VBA/Module1");
    assert!(m
        .container
        .as_deref()
        .unwrap()
        .starts_with("PowerPoint Document@"));
    assert!(m.code.contains("Action_Click"), "{}", m.code);
}

#[test]
fn excel4_macro_sheets() {
    let r = find_vba(&common::read("office-ole/excel4_sample_macro.xls")).unwrap();
    assert!(r.xlm);
    assert!(!r.vba_macros);
    assert_eq!(
        r.xlm_sheets
            .iter()
            .map(|s| (s.name.as_str(), s.visibility))
            .collect::<Vec<_>>(),
        [("Macro1", Some("visible"))]
    );
}

/// msodde's DDE links of the DDE test documents.
#[test]
fn dde_fields_are_found() {
    let doc = find_vba(&common::read("office-ole/dde-test-from-office2016.doc")).unwrap();
    assert_eq!(
        doc.dde,
        [
            "DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe \"/k calc.exe\"",
            "DDE c:\\\\windows\\\\system32\\\\cmd.exe \"/k calc.exe\"",
            "ddeauto ünicöde-test",
        ]
    );
    let docx = find_vba(&common::read("office-ooxml/dde-test.docx")).unwrap();
    assert_eq!(docx.dde, doc.dde);
    for clean in [
        "office-ooxml/harmless-clean.docm",
        "office-ole/embedded-simple-2007.doc",
        "office-ooxml/oleform-PR314.docm",
    ] {
        assert!(
            find_vba(&common::read(clean)).unwrap().dde.is_empty(),
            "{clean}"
        );
    }
}

/// Our DDE links of `path` the way msodde prints them: trimmed, a set
/// (msodde repeats a field per stream it is found in); for Word 97
/// binaries non-ASCII shown as '?' (msodde reads that text byte by byte),
/// for RTF as the `'xx` left of a `\'xx` escape (msodde keeps the escape's
/// text). RTF comes from the `rtf` worker's parser, the rest from olevba's.
fn ours_as_msodde(path: &str) -> BTreeSet<String> {
    let data = common::read(path);
    let dde = if path.ends_with(".rtf") {
        stoq_plugins_office::parse_rtf(&data).dde
    } else {
        find_vba(&data)
            .unwrap_or_else(|| panic!("{path}: no report"))
            .dde
    };
    dde.iter()
        .map(|f| {
            f.chars()
                .map(|c| match c {
                    c if c.is_ascii() => c.to_string(),
                    _ if path.ends_with(".doc") => "?".to_string(),
                    c if path.ends_with(".rtf") && u32::from(c) < 0x100 => {
                        format!("'{:02x}", u32::from(c))
                    }
                    c => c.to_string(),
                })
                .collect()
        })
        .collect()
}

fn as_set(lines: &Value) -> BTreeSet<String> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().trim().to_string())
        .collect()
}

/// Every DDE test document (Word binary/OOXML/XML, RTF, Excel BIFF8/xlsx/
/// xlsb/xlsm/XML, CSV, clean ones) gives msodde's links (expected.json).
#[test]
fn dde_links_equal_msodde() {
    let expected = common::expected();
    let docs = expected["msodde"].as_object().unwrap();
    assert!(docs.len() >= 14);
    for (path, want) in docs {
        assert_eq!(ours_as_msodde(path), as_set(want), "{path}");
    }
    // The report says what kind of file it read.
    for (path, kind) in [
        ("office-ole/dde-test-decrypted.xls", "OLE"),
        ("office-ooxml/dde-test.xlsb", "OpenXML"),
        ("office-xml/dde-in-word2003.xml", "Word2003_XML"),
        ("office-xml/dde-in-word2007.xml", "FlatOPC_XML"),
        ("office-xml/dde-in-excel2003.xml", "Excel2003_XML"),
        ("csv/dde-in-csv.csv", "CSV"),
    ] {
        assert_eq!(
            find_vba(&common::read(path)).unwrap().filetype,
            kind,
            "{path}"
        );
    }
}

const LIVE_DDE: &str = r#"
import json
from oletools import msodde
out = {}
for p in json.load(open('expected.json'))['msodde']:
    out[p] = msodde.process_maybe_encrypted(p, field_filter_mode=msodde.FIELD_FILTER_DDE).split('\n')
print(json.dumps(out))
"#;

#[test]
fn dde_links_equal_live_msodde() {
    let Some(live) = common::python("msodde", LIVE_DDE) else {
        return;
    };
    for (path, want) in live.as_object().unwrap() {
        let mut want = as_set(want);
        want.remove("");
        assert_eq!(ours_as_msodde(path), want, "{path} (live msodde)");
    }
}

/// Text that is not CSV with a DDE formula gets no olevba report.
#[test]
fn plain_text_gets_no_report() {
    for text in [
        &b"just text | with a pipe and a bang!"[..],
        b"=SUM(A1:A3),x\n1,2\n",
        b"<?xml version=\"1.0\"?><a>=cmd|'x'!A0</a>",
        b"=cmd|'/c calc'!A0\0binary",
    ] {
        assert!(
            find_vba(text).is_none(),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
    // The same formula alone is a CSV DDE link.
    assert_eq!(
        find_vba(b"=cmd|'/c calc'!A0").unwrap().dde,
        ["cmd '/c calc'"]
    );
}

async fn scan(shape: Shape, data: Vec<u8>) -> Option<WorkerResponse> {
    VbaWorker::new(shape)
        .scan(&Payload::new(data), &Request::default())
        .await
        .unwrap()
}

const OLEVBA: Shape = Shape::Olevba { include_code: true };

#[tokio::test]
async fn golden_worker_output() {
    for (file, name) in [
        ("office-ooxml/oleform-PR314.docm", "oleform-PR314.docm"),
        ("office-ole/sample_with_vba.ppt", "sample_with_vba.ppt"),
        (
            "office-ole/dde-test-from-office2016.doc",
            "dde-test-from-office2016.doc",
        ),
        (
            "office-ole/excel4_sample_macro.xls",
            "excel4_sample_macro.xls",
        ),
        ("office-ooxml/dde-test.xlsb", "dde-test.xlsb"),
        (
            "encrypted/autostart-encrypt-standardpassword.xlsm",
            "autostart-encrypt-standardpassword.xlsm",
        ),
        ("office-xml/dde-in-excel2003.xml", "dde-in-excel2003.xml"),
    ] {
        let data = common::read(file);
        let r = scan(OLEVBA, data.clone()).await.unwrap();
        common::golden(&format!("olevba-{name}.json"), r.results.as_ref().unwrap());
        let m = scan(Shape::Mraptor, data).await;
        if let Some(m) = m {
            common::golden(&format!("mraptor-{name}.json"), m.results.as_ref().unwrap());
        }
    }
}

#[tokio::test]
async fn mraptor_shape_only_with_macros() {
    let r = scan(
        Shape::Mraptor,
        common::read("office-ooxml/oleform-PR314.docm"),
    )
    .await
    .unwrap();
    assert_eq!(
        r.results.unwrap(),
        json!({"suspicous": false, "flags": ["AutoExec"], "filetype": "OpenXML", "matches": ["Frame1_Click"]})
    );
    for no_macros in [
        "office-ole/embedded-simple-2007.doc",
        "office-ooxml/harmless-clean.docm",
        "office-ole/excel4_sample_macro.xls",
    ] {
        assert!(
            scan(Shape::Mraptor, common::read(no_macros))
                .await
                .is_none(),
            "{no_macros}"
        );
    }
    assert!(scan(Shape::Mraptor, b"plain text".to_vec()).await.is_none());
    assert!(scan(OLEVBA, b"plain text".to_vec()).await.is_none());
    assert!(scan(OLEVBA, common::read("rtf/package-object-exe.rtf"))
        .await
        .is_none());
    // Without code.
    let r = scan(
        Shape::Olevba {
            include_code: false,
        },
        common::read("office-ole/sample_with_vba.ppt"),
    )
    .await
    .unwrap();
    let m = &r.results.unwrap()["macros"][0];
    assert!(m.get("code").is_none() && m["module"] == "Module1.bas");
}

/// A suspicious macro: MacroRaptor's verdict through a real VBA project
/// whose module source is rewritten in place.
#[test]
fn suspicious_verdict() {
    let r = find_vba(&common::read("office-ooxml/oleform-PR314.docm")).unwrap();
    let mut code = r.all_code();
    code.push_str("Sub AutoOpen()\nShell \"calc\"\nEnd Sub\n");
    let v = stoq_plugins_office::mraptor::scan(&code);
    assert_eq!(v.flags(), "A-X");
    assert!(v.suspicious);
}

#[test]
fn truncations_and_mutations_never_panic() {
    for (path, _) in all_documents() {
        let data = common::read(&path);
        for m in common::mutations(&data, 30) {
            if let Some(r) = find_vba(&m) {
                let _ = r.to_json(true);
            }
        }
    }
}

#[test]
fn truncated_documents_give_partial_results() {
    // The VBA project of the PPT is in the middle of the PowerPoint
    // Document stream; cutting the file keeps the OLE file readable.
    let data = common::read("office-ooxml/oleform-PR314.docm");
    let cut = &data[..data.len() - 200];
    // Central directory gone: not a readable zip.
    assert!(find_vba(cut).is_none() || !find_vba(cut).unwrap().errors.is_empty());
    let data = common::read("office-ole/dde-test-from-office2016.doc");
    let r = find_vba(&data[..data.len() / 2]).unwrap();
    assert_eq!(r.filetype, "OLE");
    assert!(!r.errors.is_empty());
}

/// The ActiveMime part of an MHTML file (what the `smtp` worker extracts
/// from it in a full scan).
fn mht_active_mime(mht: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8_lossy(mht);
    let start = text.find("Content-Type: application/x-mso").unwrap();
    let body = &text[start..];
    let body = &body[body.find("\r\n\r\n").unwrap() + 4..];
    let body = &body[..body.find("\r\n\r\n").unwrap()];
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// VBA kept base64-encoded inside XML (Word flat OPC `binaryData`, Word
/// 2003 `binData` holding an ActiveMime container) and ActiveMime itself
/// (from MHTML): the same modules and MacroRaptor flags as oletools'
/// olevba (expected.json section `olevba_xml`).
#[test]
fn vba_in_xml_and_activemime_equals_olevba() {
    let expected = common::expected();
    let docs = expected["olevba_xml"].as_object().unwrap();
    assert_eq!(docs.len(), 3);
    for (path, want) in docs {
        let data = common::read(path);
        let (data, kind) = if path.ends_with(".mht") {
            (mht_active_mime(&data), "ActiveMime")
        } else {
            (data, want["olevba_type"].as_str().unwrap())
        };
        let r = find_vba(&data).unwrap_or_else(|| panic!("{path}: no report"));
        assert_eq!(r.filetype, kind, "{path}");
        assert_eq!(r.vba_macros, want["vba_macros"], "{path}");
        assert_eq!(r.verdict.flags(), want["mraptor_flags"], "{path}");
        common::assert_same_modules(&r, &want["vba_modules"], path);
        assert!(r.errors.is_empty(), "{path}: {:?}", r.errors);
    }
    // The same modules and code as the .docm they were made from.
    let docm = find_vba(&common::read("office-ooxml/oleform-PR314.docm")).unwrap();
    let flat = find_vba(&common::read("office-xml/vba-flatopc.xml")).unwrap();
    let code = |r: &VbaReport| r.modules.iter().map(|m| m.code.clone()).collect::<Vec<_>>();
    assert_eq!(code(&flat), code(&docm));
}

/// Damaged ActiveMime: no zlib data, or zlib data that is not OLE, is an
/// error in the report; never a panic.
#[test]
fn damaged_activemime_is_reported() {
    let r = find_vba(b"ActiveMime\x00\x00\x01\xf0 nothing compressed here").unwrap();
    assert!(!r.vba_macros);
    assert!(r.errors[0].contains("no zlib data"), "{:?}", r.errors);
    let mime = mht_active_mime(&common::read("office-xml/vba-activemime.mht"));
    for cut in (0..mime.len()).step_by(101) {
        let _ = find_vba(&mime[..cut]);
    }
}
