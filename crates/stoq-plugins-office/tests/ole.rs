//! `ole` worker and [`parse_ole`]: stream listing compared with olefile
//! (expected.json, and live with `$STOQ_TEST_PYTHON`), Ole10Native
//! packages compared with oletools' oleobj, stream contents cross-checked
//! with the `cfb` crate, golden output, partial results on damaged files.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{json, Value};
use stoq_core::hashing::{hex, sha256};
use stoq_core::{Payload, PluginConfig, Request, Worker, WorkerResponse};
use stoq_plugins_office::ole::{parse_ole_with, worker_response, OleOptions, OleWorker};
use stoq_plugins_office::parse_ole;

/// The olefile/oleobj view of one file, in expected.json's shape.
fn olefile_view(data: &[u8]) -> Value {
    let r = parse_ole(data).expect("readable OLE file");
    let mut v = json!({
        "root_clsid": r.root_clsid,
        "streams": r.streams.iter().map(|s| json!({"name": s.joined(), "size": s.size})).collect::<Vec<_>>(),
        "storages": r.storages,
    });
    if !r.ole10native.is_empty() {
        v["ole10native"] = r
            .ole10native
            .iter()
            .map(|n| {
                json!({
                    "stream": r.streams[n.stream_index].joined(),
                    "filename": n.native.label,
                    "src_path": n.native.src_path,
                    "temp_path": n.native.tmp_path,
                    "size": n.native.data.len(),
                    "sha256": hex(&sha256(&n.native.data)),
                })
            })
            .collect();
    }
    v
}

fn expected_view(e: &Value) -> Value {
    let mut v = json!({
        "root_clsid": e["root_clsid"],
        "streams": e["streams"],
        "storages": e["storages"],
    });
    if let Some(n) = e.get("ole10native") {
        v["ole10native"] = n.clone();
    }
    v
}

#[test]
fn streams_and_packages_equal_olefile_and_oleobj() {
    let files = common::section("ole");
    assert_eq!(files.len(), 10);
    for (path, want) in &files {
        let got = olefile_view(&common::read(path));
        assert_eq!(got, expected_view(want), "{path}");
    }
}

const LIVE_SCRIPT: &str = r#"
import glob, hashlib, json, olefile
from oletools import oleobj
out = {}
for p in sorted(glob.glob('office-ole/*')):
    o = olefile.OleFileIO(p)
    r = {'root_clsid': o.root.clsid,
         'streams': [{'name': '/'.join(s), 'size': o.get_size('/'.join(s))} for s in o.listdir(streams=True, storages=False)],
         'storages': ['/'.join(s) for s in o.listdir(streams=False, storages=True)]}
    nat = []
    for s in o.listdir():
        if s[-1] == '\x01Ole10Native':
            n = oleobj.OleNativeStream(o.openstream(s).read())
            nat.append({'stream': '/'.join(s), 'filename': n.filename, 'src_path': n.src_path,
                        'temp_path': n.temp_path, 'size': len(n.data), 'sha256': hashlib.sha256(n.data).hexdigest()})
    if nat:
        r['ole10native'] = nat
    o.close()
    out[p] = r
print(json.dumps(out))
"#;

#[test]
fn streams_equal_live_olefile() {
    let Some(live) = common::python("olefile/oleobj", LIVE_SCRIPT) else {
        return;
    };
    let live = live.as_object().unwrap();
    assert_eq!(live.len(), 12);
    for (path, want) in live {
        assert_eq!(
            &olefile_view(&common::read(path)),
            want,
            "{path} (live olefile)"
        );
    }
}

/// The same streams with the same content as the `cfb` crate reads them.
#[test]
fn stream_contents_equal_the_cfb_crate() {
    for (path, _) in common::section("ole") {
        let data = common::read(&path);
        let mine = parse_ole(&data).unwrap();
        let mut cf = cfb::CompoundFile::open(std::io::Cursor::new(data.clone())).unwrap();
        let paths: Vec<_> = cf
            .walk()
            .filter(|e| e.is_stream())
            .map(|e| e.path().to_path_buf())
            .collect();
        let mut theirs = BTreeMap::new();
        for p in paths {
            let mut buf = Vec::new();
            cf.open_stream(&p).unwrap().read_to_end(&mut buf).unwrap();
            let name = p.to_string_lossy().trim_start_matches('/').to_string();
            theirs.insert(name, buf);
        }
        let ours: BTreeMap<String, Vec<u8>> = mine
            .streams
            .iter()
            .map(|s| (s.joined(), s.data.clone().unwrap()))
            .collect();
        assert_eq!(ours, theirs, "{path}");
        assert!(mine.errors.is_empty(), "{path}: {:?}", mine.errors);
    }
}

/// Results plus extracted payloads, content reduced to size and sha256.
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

async fn scan(worker: &OleWorker, data: Vec<u8>) -> Option<WorkerResponse> {
    worker
        .scan(&Payload::new(data), &Request::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn golden_worker_output() {
    let w = OleWorker::default();
    for (file, golden) in [
        (
            "office-ole/sample_with_calc_embedded.doc",
            "ole-sample_with_calc_embedded.doc.json",
        ),
        (
            "office-ole/embedded-simple-2007.xls",
            "ole-embedded-simple-2007.xls.json",
        ),
        (
            "office-ole/encrypted-ooxml-container.docx",
            "ole-encrypted-ooxml-container.docx.json",
        ),
    ] {
        let r = scan(&w, common::read(file)).await.unwrap();
        common::golden(golden, &summary(&r));
    }
}

#[tokio::test]
async fn embedded_exe_is_extracted_with_its_name() {
    let r = scan(
        &OleWorker::default(),
        common::read("office-ole/sample_with_calc_embedded.doc"),
    )
    .await
    .unwrap();
    assert_eq!(r.extracted.len(), 9, "one payload per stream");
    let exe: Vec<_> = r
        .extracted
        .iter()
        .filter(|e| e.payload_meta.extra_data.contains_key("ole10native"))
        .collect();
    assert_eq!(exe.len(), 1);
    let meta = &exe[0].payload_meta;
    assert!(!meta.should_archive);
    assert_eq!(meta.extra_data["filename"], "calc.exe");
    assert_eq!(meta.extra_data["index"], 6);
    assert_eq!(
        meta.extra_data["name"],
        "ObjectPool__1572084892_Ole10Native_calc.exe"
    );
    assert_eq!(
        meta.extra_data["ole10native"],
        json!({"label": "calc.exe", "src_path": "C:\\Windows\\System32\\calc.exe",
               "tmp_path": "C:\\Users\\xxxxx\\AppData\\Local\\Temp\\calc (2).exe"})
    );
    assert!(exe[0].content.starts_with(b"MZ"));
    assert_eq!(
        hex(&sha256(&exe[0].content)),
        "c74f41325775de4777000161a057342cc57a04e8b7be17b06576412eff574dc5"
    );
    // Every other stream, named as the public plugin names it.
    let names: Vec<&str> = r
        .extracted
        .iter()
        .map(|e| e.payload_meta.extra_data["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CompObj",
            "DocumentSummaryInformation",
            "SummaryInformation",
            "1Table",
            "Data",
            "ObjectPool__1572084892_CompObj",
            "ObjectPool__1572084892_Ole10Native_calc.exe",
            "ObjectPool__1572084892_ObjInfo",
            "WordDocument",
        ]
    );
}

#[tokio::test]
async fn options_limit_extraction() {
    let cfg = PluginConfig::new("ole", [("extract_streams", "false")]);
    let w = OleWorker {
        options: OleOptions::from_config(&cfg).unwrap(),
    };
    let r = scan(&w, common::read("office-ole/sample_with_lnk_file.doc"))
        .await
        .unwrap();
    assert_eq!(r.extracted.len(), 1, "only the embedded file");
    assert_eq!(
        r.extracted[0].payload_meta.extra_data["filename"],
        "calc.lnk"
    );
    assert_eq!(
        r.results.as_ref().unwrap()["streams"]
            .as_array()
            .unwrap()
            .len(),
        8
    );

    let cfg = PluginConfig::new("ole", [("max_stream_size", "4096")]);
    let w = OleWorker {
        options: OleOptions::from_config(&cfg).unwrap(),
    };
    let r = scan(&w, common::read("office-ole/sample_with_calc_embedded.doc"))
        .await
        .unwrap();
    // 1Table (6435 bytes) and the Ole10Native stream (31511) are skipped.
    assert_eq!(r.extracted.len(), 7);
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
}

#[tokio::test]
async fn other_formats_are_not_handled() {
    let w = OleWorker::default();
    assert!(scan(&w, common::read("office-ooxml/dde-test.docx"))
        .await
        .is_none());
    assert!(scan(&w, common::read("rtf/package-object-exe.rtf"))
        .await
        .is_none());
    assert!(scan(&w, Vec::new()).await.is_none());
    // The OLE signature on garbage is an error, not a panic.
    let mut junk = stoq_plugins_office::compound::MAGIC.to_vec();
    junk.resize(2000, 0x41);
    assert!(w
        .scan(&Payload::new(junk), &Request::default())
        .await
        .is_err());
}

#[test]
fn truncated_file_gives_partial_results_and_errors() {
    let data = common::read("office-ole/sample_with_calc_embedded.doc");
    // 1Table is in sectors 85-97 (offset 44032 on); the
    // directory (17, 18, 83) and the embedded executable (21-82) survive.
    let cut = &data[..86 * 512 + 100];
    let r = parse_ole(cut).expect("directory still readable");
    assert_eq!(r.streams.len(), 9, "every stream still listed");
    let table = r.streams.iter().find(|s| s.joined() == "1Table").unwrap();
    assert_eq!(table.size, 6435);
    assert_eq!(
        table.data.as_ref().unwrap().len(),
        100,
        "the start of sector 85 remains"
    );
    assert!(table.error.is_some());
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].starts_with("stream \"1Table\""),
        "{:?}",
        r.errors
    );
    let resp = worker_response(r, &OleOptions::default());
    assert_eq!(resp.errors.len(), 1);
    assert_eq!(resp.extracted.len(), 9);
    assert!(resp
        .extracted
        .iter()
        .any(|e| e.payload_meta.extra_data.get("filename") == Some(&json!("calc.exe"))));

    // Without the directory's last sector, nothing is listed but the
    // file is still recognised.
    let r = parse_ole(&data[..60 * 512]).unwrap();
    assert!(r.streams.is_empty());
    assert!(!r.errors.is_empty());
}

#[test]
fn truncations_and_mutations_never_panic() {
    for (path, _) in common::section("ole") {
        let data = common::read(&path);
        for m in common::mutations(&data, 40) {
            if let Ok(r) = parse_ole_with(&m, &OleOptions::default()) {
                let _ = worker_response(r, &OleOptions::default());
            }
        }
    }
}

/// A version 3 compound file whose `n` streams all point at one chain of
/// `len` sectors (a crafted directory, legal to parse, costly to read).
fn shared_chain_file(n: usize, len: usize) -> Vec<u8> {
    const END: u32 = 0xFFFF_FFFE;
    const FREE: u32 = 0xFFFF_FFFF;
    let dir = (n + 1).div_ceil(4);
    let mut fat_sectors = 1;
    while fat_sectors * 128 < fat_sectors + dir + len {
        fat_sectors += 1;
    }
    assert!(fat_sectors <= 109);
    let total = fat_sectors + dir + len;
    let mut fat = vec![FREE; fat_sectors * 128];
    for f in fat.iter_mut().take(fat_sectors) {
        *f = 0xFFFF_FFFD;
    }
    for (start, count) in [(fat_sectors, dir), (fat_sectors + dir, len)] {
        for i in 0..count {
            fat[start + i] = if i + 1 == count {
                END
            } else {
                (start + i + 1) as u32
            };
        }
    }
    let mut out = vec![0u8; 512 * (1 + total)];
    out[..8].copy_from_slice(&stoq_plugins_office::compound::MAGIC);
    let put32 =
        |out: &mut Vec<u8>, off: usize, v: u32| out[off..off + 4].copy_from_slice(&v.to_le_bytes());
    out[24..30].copy_from_slice(&[0x3E, 0, 3, 0, 0xFE, 0xFF]);
    out[30] = 9;
    out[32] = 6;
    put32(&mut out, 44, fat_sectors as u32);
    put32(&mut out, 48, fat_sectors as u32);
    put32(&mut out, 56, 4096);
    put32(&mut out, 60, END);
    put32(&mut out, 68, END);
    for i in 0..109 {
        put32(
            &mut out,
            76 + 4 * i,
            if i < fat_sectors { i as u32 } else { FREE },
        );
    }
    for (i, v) in fat.iter().enumerate() {
        put32(&mut out, 512 + 4 * i, *v);
    }
    let dir_at = 512 * (1 + fat_sectors);
    for sid in 0..=n {
        let e = dir_at + 128 * sid;
        let name = if sid == 0 {
            "Root Entry".to_string()
        } else {
            format!("s{sid}")
        };
        let units: Vec<u16> = name.encode_utf16().collect();
        for (k, u) in units.iter().enumerate() {
            out[e + 2 * k..e + 2 * k + 2].copy_from_slice(&u.to_le_bytes());
        }
        out[e + 64..e + 66].copy_from_slice(&((units.len() as u16 + 1) * 2).to_le_bytes());
        out[e + 66] = if sid == 0 { 5 } else { 2 };
        out[e + 67] = 1;
        put32(&mut out, e + 68, FREE);
        let right = if sid == 0 || sid == n {
            FREE
        } else {
            (sid + 1) as u32
        };
        put32(&mut out, e + 72, right);
        put32(&mut out, e + 76, if sid == 0 { 1 } else { FREE });
        put32(
            &mut out,
            e + 116,
            if sid == 0 {
                END
            } else {
                (fat_sectors + dir) as u32
            },
        );
        put32(
            &mut out,
            e + 120,
            if sid == 0 { 0 } else { (len * 512) as u32 },
        );
    }
    out
}

#[test]
fn streams_sharing_one_chain_are_read_within_a_budget() {
    let data = shared_chain_file(2000, 4000);
    let start = std::time::Instant::now();
    let r = parse_ole(&data).unwrap();
    assert_eq!(
        r.streams.len(),
        2000,
        "{:?}",
        &r.errors[..3.min(r.errors.len())]
    );
    let total: usize = r
        .streams
        .iter()
        .map(|s| s.data.as_ref().map_or(0, Vec::len))
        .sum();
    // 2000 x 2 MB without a budget; at most 8 x the file + 16 MiB with it.
    assert!(total <= data.len() * 8 + (16 << 20), "{total}");
    assert!(r.errors.iter().any(|e| e.contains("budget")));
    let resp = worker_response(r, &OleOptions::default());
    assert!(resp.errors.len() <= 51);
    assert!(start.elapsed().as_secs() < 20);
}
