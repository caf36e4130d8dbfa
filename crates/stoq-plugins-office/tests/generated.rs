//! Compound files built here with the `cfb` crate as the writer, for
//! layouts the corpus lacks: a Word 97-2003-style `Macros/VBA` project
//! holding a suspicious macro (checked against fixed answers and, live,
//! against oletools' olevba + MacroRaptor reading the very same bytes), and
//! a version 4 (4096-byte sector) file (checked against olefile).

mod common;

use std::io::Write;

use serde_json::json;
use stoq_plugins_office::find_vba;

/// MS-OVBA CompressedContainer using literal tokens only (valid for any
/// decompressor: 8 literals per flag byte, chunks of 3584 bytes).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x01];
    for chunk in data.chunks(3584) {
        let mut body = Vec::new();
        for group in chunk.chunks(8) {
            body.push(0);
            body.extend_from_slice(group);
        }
        let header = 0xB000u16 | (body.len() as u16 + 2 - 3);
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn rec(out: &mut Vec<u8>, id: u16, data: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// The `dir` stream of a project with one procedural module.
fn dir_stream(module: &str) -> Vec<u8> {
    let mut d = Vec::new();
    rec(&mut d, 0x0001, &1u32.to_le_bytes());
    rec(&mut d, 0x0002, &0x409u32.to_le_bytes());
    rec(&mut d, 0x0014, &0x409u32.to_le_bytes());
    rec(&mut d, 0x0003, &1252u16.to_le_bytes());
    rec(&mut d, 0x0004, b"Project");
    rec(&mut d, 0x0005, b"");
    rec(&mut d, 0x0040, b"");
    rec(&mut d, 0x0006, b"");
    rec(&mut d, 0x003D, b"");
    rec(&mut d, 0x0007, &0u32.to_le_bytes());
    rec(&mut d, 0x0008, &0u32.to_le_bytes());
    // PROJECTVERSION: reserved 4, major u32, minor u16.
    d.extend_from_slice(&0x0009u16.to_le_bytes());
    d.extend_from_slice(&4u32.to_le_bytes());
    d.extend_from_slice(&1u32.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    rec(&mut d, 0x000C, b"");
    rec(&mut d, 0x003C, b"");
    rec(&mut d, 0x000F, &1u16.to_le_bytes());
    rec(&mut d, 0x0013, &0xFFFFu16.to_le_bytes());
    rec(&mut d, 0x0019, module.as_bytes());
    rec(&mut d, 0x0047, &utf16(module));
    rec(&mut d, 0x001A, module.as_bytes());
    rec(&mut d, 0x0032, &utf16(module));
    rec(&mut d, 0x001C, b"");
    rec(&mut d, 0x0048, b"");
    rec(&mut d, 0x0031, &0u32.to_le_bytes());
    rec(&mut d, 0x001E, &0u32.to_le_bytes());
    rec(&mut d, 0x002C, &0xFFFFu16.to_le_bytes());
    rec(&mut d, 0x0021, b"");
    rec(&mut d, 0x002B, b"");
    rec(&mut d, 0x0010, b"");
    d
}

const CODE: &str = "Attribute VB_Name = \"Payload\"\r\nSub AutoOpen()\r\n    Dim s\r\n    Set s = CreateObject(\"WScript.Shell\")\r\n    s.Run \"calc.exe\"\r\n    Open \"C:\\x.txt\" For Output As #1\r\nEnd Sub\r\n";

type Cfb = cfb::CompoundFile<std::io::Cursor<Vec<u8>>>;

fn put(cf: &mut Cfb, path: &str, data: &[u8]) {
    cf.create_stream(path).unwrap().write_all(data).unwrap();
}

fn build_doc() -> Vec<u8> {
    let mut cf = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
    put(&mut cf, "/WordDocument", &[0u8; 1024]);
    cf.create_storage("/Macros").unwrap();
    cf.create_storage("/Macros/VBA").unwrap();
    put(
        &mut cf,
        "/Macros/PROJECT",
        b"ID=\"{00000000-0000-0000-0000-000000000000}\"\r\nModule=Payload\r\nName=\"Project\"\r\n",
    );
    put(
        &mut cf,
        "/Macros/VBA/_VBA_PROJECT",
        &[0xCC, 0x61, 0xFF, 0xFF, 0x00, 0x00, 0x00],
    );
    put(
        &mut cf,
        "/Macros/VBA/dir",
        &compress(&dir_stream("Payload")),
    );
    put(&mut cf, "/Macros/VBA/Payload", &compress(CODE.as_bytes()));
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

/// A version 4 (4096-byte sector) file with mini and regular streams,
/// nested storages and names that sort differently by length and by code
/// point: listed as olefile lists it.
fn build_v4() -> Vec<u8> {
    let mut cf =
        cfb::CompoundFile::create_with_version(cfb::Version::V4, std::io::Cursor::new(Vec::new()))
            .unwrap();
    put(&mut cf, "/zeta", &[7u8; 10_000]);
    put(&mut cf, "/Alpha", b"small");
    put(&mut cf, "/\u{5}Info", &[1u8; 300]);
    cf.create_storage("/b").unwrap();
    cf.create_storage("/b/Inner").unwrap();
    put(&mut cf, "/b/Inner/x", &[2u8; 5000]);
    put(&mut cf, "/b/y", b"");
    cf.create_storage("/Empty").unwrap();
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

#[test]
fn version_4_file() {
    let r = stoq_plugins_office::parse_ole(&build_v4()).unwrap();
    let streams: Vec<(String, u64, usize)> = r
        .streams
        .iter()
        .map(|s| (s.joined(), s.size, s.data.as_ref().unwrap().len()))
        .collect();
    assert_eq!(
        streams,
        [
            ("\u{5}Info".to_string(), 300, 300),
            ("Alpha".to_string(), 5, 5),
            ("b/Inner/x".to_string(), 5000, 5000),
            ("b/y".to_string(), 0, 0),
            ("zeta".to_string(), 10_000, 10_000),
        ]
    );
    assert_eq!(r.storages, ["Empty", "b", "b/Inner"]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.bin");
    std::fs::write(&path, build_v4()).unwrap();
    let script = format!(
        "import json, olefile\no = olefile.OleFileIO({:?})\nprint(json.dumps({{'streams': [['/'.join(s), o.get_size('/'.join(s)), len(o.openstream(s).read())] for s in o.listdir()], 'storages': ['/'.join(s) for s in o.listdir(streams=False, storages=True)]}}))\n",
        path.display().to_string()
    );
    if let Some(live) = common::python("olefile (version 4 file)", &script) {
        assert_eq!(json!({"streams": streams, "storages": r.storages}), live);
    }
}

#[test]
fn word_macros_storage() {
    let doc = build_doc();
    let r = find_vba(&doc).unwrap();
    assert_eq!(r.filetype, "OLE");
    assert!(r.vba_macros);
    assert_eq!(r.modules.len(), 1, "{:?}", r.errors);
    let m = &r.modules[0];
    assert_eq!(m.module, "Payload.bas");
    assert_eq!(m.stream, "Macros/VBA/Payload");
    assert_eq!(m.container, None);
    assert_eq!(m.code, CODE);
    assert_eq!(r.verdict.flags(), "AWX");
    assert!(r.verdict.suspicious);
    assert_eq!(
        r.verdict.matches,
        ["AutoOpen", "Open \"C:\\x.txt\" For Output", "CreateObject"]
    );
    assert_eq!(r.verdict.execute_keywords, ["CreateObject", "Shell", "Run"]);
    assert_eq!(
        r.mraptor_json().unwrap(),
        json!({"suspicous": true, "flags": ["AutoExec", "Write", "Execute"], "filetype": "OLE",
               "matches": ["AutoOpen", "Open \"C:\\x.txt\" For Output", "CreateObject"]})
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn word_macros_storage_equals_live_oletools() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generated-macro.doc");
    std::fs::write(&path, build_doc()).unwrap();
    let script = format!(
        r#"
import json
from oletools.olevba import VBA_Parser
from oletools.mraptor import MacroRaptor
v = VBA_Parser({path:?})
mr = MacroRaptor(v.get_vba_code_all_modules())
mr.scan()
mods = [[m[1], m[2], m[3]] for m in v.extract_all_macros()]
print(json.dumps({{'type': v.type, 'vba': bool(v.detect_vba_macros()), 'flags': mr.get_flags(),
                  'suspicious': mr.suspicious, 'matches': mr.matches, 'modules': mods}}))
"#,
        path = path.display().to_string()
    );
    let Some(live) = common::python("olevba/mraptor (generated macro document)", &script) else {
        return;
    };
    let r = find_vba(&build_doc()).unwrap();
    let ours = json!({
        "type": r.filetype,
        "vba": r.vba_macros,
        "flags": r.verdict.flags(),
        "suspicious": r.verdict.suspicious,
        "matches": r.verdict.matches,
        "modules": r.modules.iter().map(|m| json!([m.stream, m.module, m.code])).collect::<Vec<_>>(),
    });
    assert_eq!(ours, live);
}
