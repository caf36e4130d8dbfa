//! `peinfo` against pefile's answers (the corpus's EXPECTED.json, computed
//! with pefile 2024.8.26), on malformed input, as a worker and inside an
//! engine scan, plus one exact golden output.
//!
//! The files in `testdata/pe/` are always checked. Every PE of the shared
//! corpus is checked too when it is present (`STOQ_CORPUS`, default
//! `/work/shared/corpus`); otherwise that part is skipped with a note.

use std::path::{Path, PathBuf};

use stoq_core::serde_json::{self, json, Map, Value};
use stoq_core::{Payload, PluginConfig, Request, Worker};
use stoq_engine::Stoq;
use stoq_plugins::peinfo::{self, analyse, imphash, pe_util, PeAnalysis};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pe")
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("STOQ_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/corpus"));
    dir.join("EXPECTED.json").is_file().then_some(dir)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn results(data: &[u8]) -> Map<String, Value> {
    let a = analyse(data);
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    a.results.expect("a PE")
}

/// Compare one file's results with its pefile entry; every difference is
/// collected so a failure lists them all.
fn compare_with_pefile(name: &str, r: &Map<String, Value>, e: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |label: &str, ours: Value, theirs: &Value| {
        if &ours != theirs {
            diffs.push(format!("{name}: {label}: ours {ours} pefile {theirs}"));
        }
    };
    check("imphash", r["imphash"].clone(), &e["imphash"]);
    check(
        "number_of_sections",
        r["number_of_sections"].clone(),
        &e["number_of_sections"],
    );
    let machine = pe_util::machine_name(
        u16::from_str_radix(e["machine"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
    )
    .unwrap();
    check("machine_type", r["machine_type"].clone(), &json!(machine));
    check("pe32plus", json!(r["format"] == "PE32+"), &e["pe32plus"]);
    check(
        "compile_time_epoch",
        r["compile_time_epoch"].clone(),
        &e["timedatestamp"],
    );
    for key in ["is_dll", "is_exe", "is_driver"] {
        check(key, r[key].clone(), &e[key]);
    }
    let subsystem = pe_util::subsystem_name(e["subsystem"].as_u64().unwrap() as u16).unwrap();
    check("subsystem", r["subsystem"].clone(), &json!(subsystem));
    check(
        "image_base",
        r["image_base"]["image_base"].clone(),
        &e["image_base"],
    );
    check(
        "entry_point",
        r["entrypoint"]["entry_point"].clone(),
        &e["entry_point"],
    );
    let sections: Vec<Value> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!({
                "name": s["name"], "virtual_address": s["virtual_address"],
                "virtual_size": s["virtual_size"], "raw_size": s["raw_size"],
                "raw_offset": s["raw_offset"],
                "entropy": (s["entropy"].as_f64().unwrap() * 1e6).round() / 1e6,
                "md5": s["md5"], "sha256": s["sha256"],
            })
        })
        .collect();
    check("sections", Value::Array(sections), &e["sections"]);
    let imports = r.get("imports").cloned().unwrap_or_else(|| json!({}));
    check("imports", imports.clone(), &e["imports"]);
    let dlls = imports.as_object().map(|m| m.len()).unwrap_or(0);
    let count: usize = imports
        .as_object()
        .map(|m| m.values().map(|v| v.as_array().unwrap().len()).sum())
        .unwrap_or(0);
    check("import_dll_count", json!(dlls), &e["import_dll_count"]);
    check("import_count", json!(count), &e["import_count"]);
    let exports: Vec<Value> = r
        .get("exports")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|x| match x["name"].as_str() {
                    Some(n) => json!(n),
                    None => json!(format!("ord({})", x["ordinal"])),
                })
                .collect()
        })
        .unwrap_or_default();
    check("exports", Value::Array(exports), &e["exports"]);
    let resources = r
        .get("resources")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    check("resource_count", json!(resources), &e["resource_count"]);
    check(
        "security_directory",
        json!({"offset": r["signature"]["offset"], "size": r["signature"]["size"]}),
        &e["security_directory"],
    );
    check("dotnet", r["dotnet"].clone(), &e["dotnet_clr_header"]);
    check(
        "rich_header_clear_sha256",
        r.get("rich_header")
            .map(|h| h["sha256"].clone())
            .unwrap_or(Value::Null),
        &e["rich_header_clear_sha256"],
    );
    let (offset, size) = match r.get("overlay") {
        Some(o) => (o["offset"].clone(), o["size"].clone()),
        None => (Value::Null, json!(0)),
    };
    check("overlay_offset", offset, &e["overlay_offset"]);
    check("overlay_size", size, &e["overlay_size"]);
    diffs
}

#[test]
fn testdata_pes_match_pefile() {
    let expected: Value = serde_json::from_slice(&read(&testdata().join("expected.json"))).unwrap();
    let entries = expected["pe"].as_object().unwrap();
    assert_eq!(entries.len(), 6);
    let mut diffs = Vec::new();
    for (path, e) in entries {
        let file = testdata().join(path.trim_start_matches("pe/"));
        diffs.extend(compare_with_pefile(path, &results(&read(&file)), e));
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn every_corpus_pe_matches_pefile() {
    let Some(dir) = corpus() else {
        eprintln!("note: the shared corpus is absent; corpus comparison skipped");
        return;
    };
    let expected: Value = serde_json::from_slice(&read(&dir.join("EXPECTED.json"))).unwrap();
    let mut diffs = Vec::new();
    let (mut pes, mut refused) = (0, 0);
    for (path, e) in expected["pe"].as_object().unwrap() {
        let data = read(&dir.join(path));
        if e.get("pefile_error").is_some() {
            // NE and DOS programs: pefile refuses them, peinfo says nothing.
            assert_eq!(analyse(&data), PeAnalysis::default(), "{path}");
            refused += 1;
        } else {
            diffs.extend(compare_with_pefile(path, &results(&data), e));
            pes += 1;
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    assert!(pes >= 8 && refused >= 2, "{pes} PEs, {refused} refused");
}

/// A DOS program: `MZ`, e_lfanew pointing at `sig`.
fn mz_with(sig: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 256];
    d[..2].copy_from_slice(b"MZ");
    d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    d[0x80..0x80 + sig.len()].copy_from_slice(sig);
    d
}

#[tokio::test]
async fn ne_and_dos_files_give_no_results_and_no_error() {
    let mut inputs = vec![
        mz_with(b"NE\x05\x0a"),
        mz_with(b"LE\0\0"),
        mz_with(b"\xb8\x01\x4c\xcd"),
        b"MZ too short".to_vec(),
    ];
    // e_lfanew past the end.
    let mut far = mz_with(b"");
    far[0x3c..0x40].copy_from_slice(&0x10000u32.to_le_bytes());
    inputs.push(far);
    if let Some(dir) = corpus() {
        inputs.push(read(&dir.join("pe/twunk_16.exe")));
        inputs.push(read(&dir.join("pe/cercle.exe")));
    }
    let worker = build(&[]);
    for data in inputs {
        assert_eq!(analyse(&data), PeAnalysis::default());
        let r = worker
            .scan(&Payload::new(data), &Request::default())
            .await
            .unwrap();
        assert!(r.is_none());
    }
}

#[tokio::test]
async fn truncated_pe_gives_partial_results_and_an_error() {
    let full = read(&testdata().join("t64.exe"));
    // Cut inside the section data: headers, sections and imports that lie
    // before the cut are still reported.
    let cut = &full[..60_000];
    let a = analyse(cut);
    let r = a.results.as_ref().unwrap();
    assert_eq!(r["number_of_sections"], 6);
    assert_eq!(r["sections"].as_array().unwrap().len(), 6);
    assert_eq!(r["machine_type"], "IMAGE_FILE_MACHINE_AMD64");
    assert!(
        a.errors
            .iter()
            .any(|e| e.contains("truncated PE: section data")),
        "{:?}",
        a.errors
    );
    let worker = build(&[]);
    let resp = worker
        .scan(&Payload::new(cut.to_vec()), &Request::default())
        .await
        .unwrap()
        .unwrap();
    assert!(resp.results.is_some());
    assert_eq!(resp.errors.len(), a.errors.len());

    // Cut inside the section table / optional header / COFF header.
    let e_lfanew = u32::from_le_bytes(full[0x3c..0x40].try_into().unwrap()) as usize;
    for (len, what) in [
        (e_lfanew + 24 + 0xf0 + 50, "section header"),
        (e_lfanew + 24 + 40, "optional header"),
        (e_lfanew + 10, "COFF file header"),
    ] {
        let a = analyse(&full[..len]);
        assert!(a.results.is_some(), "{what}");
        assert!(
            a.errors.iter().any(|e| e.contains(what)),
            "{what}: {:?}",
            a.errors
        );
    }
}

/// Every PE in testdata/pe.
fn testdata_pes() -> Vec<(String, Vec<u8>)> {
    [
        "cli-32.exe",
        "cli-arm64.exe",
        "gui-64.exe",
        "t64.exe",
        "Microsoft.VisualC.dll",
        "nsDialogs.dll",
    ]
    .iter()
    .map(|n| (n.to_string(), read(&testdata().join(n))))
    .collect()
}

#[test]
fn truncations_at_every_97th_length_never_panic() {
    for (name, data) in testdata_pes() {
        let e_lfanew = u32::from_le_bytes(data[0x3c..0x40].try_into().unwrap()) as usize;
        for len in (0..=data.len()).step_by(97) {
            let a = analyse(&data[..len]);
            // A PE as soon as the signature is there; never silent when cut.
            assert_eq!(a.results.is_some(), len >= e_lfanew + 4, "{name} at {len}");
            if a.results.is_some() && len < data.len() {
                let overlay_free = a.errors.is_empty();
                // Only a cut inside trailing padding may go unnoticed.
                if overlay_free {
                    assert!(len > data.len() - 4096, "{name} at {len}: no error");
                }
            }
            let _ = stoq_plugins::pecarve::carve(&data[..len], &Default::default());
        }
    }
}

/// Deterministic byte mutations (a poor man's fuzzer; the fuzz targets
/// run the same two entry points).
#[test]
fn mutated_pes_never_panic() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (_, data) in testdata_pes() {
        // Debug builds hash slowly: fewer rounds for the 100 KiB file.
        let rounds = if data.len() > 50_000 { 20 } else { 100 };
        for _ in 0..rounds {
            let mut d = data.clone();
            for _ in 0..(next() % 8 + 1) {
                let pos = if next() % 4 == 0 {
                    next() as usize % d.len()
                } else {
                    next() as usize % d.len().min(0x600)
                };
                match next() % 3 {
                    0 => d[pos] = next() as u8,
                    1 => d[pos] = [0, 0xff, 0x7f, 0x80][next() as usize % 4],
                    _ => {
                        let v = [0u32, u32::MAX, 0x7fff_ffff, 0x8000_0000, next() as u32];
                        let v = v[next() as usize % v.len()].to_le_bytes();
                        let end = (pos + 4).min(d.len());
                        d[pos..end].copy_from_slice(&v[..end - pos]);
                    }
                }
            }
            if next() % 5 == 0 {
                d.truncate(next() as usize % d.len());
            }
            let _ = analyse(&d);
            let _ = stoq_plugins::pecarve::carve(&d, &Default::default());
        }
    }
}

#[test]
fn imphash_rules() {
    use pe_util::{ImportedDll, ImportedSymbol};
    let sym = |name: Option<&str>, ordinal: Option<u16>| ImportedSymbol {
        name: name.map(|n| n.as_bytes().to_vec()),
        ordinal,
        by_ordinal: name.is_none(),
    };
    let imports = vec![
        ImportedDll {
            dll: b"WS2_32.dll".to_vec(),
            symbols: vec![sym(None, Some(115)), sym(None, Some(1000))],
        },
        ImportedDll {
            dll: b"OLEAUT32.DLL".to_vec(),
            symbols: vec![sym(None, Some(2))],
        },
        ImportedDll {
            dll: b"wsock32.dll".to_vec(),
            symbols: vec![sym(None, Some(3))],
        },
        ImportedDll {
            dll: b"MSVBVM60.DLL".to_vec(),
            symbols: vec![sym(None, Some(595)), sym(Some("__vbaEnd"), None)],
        },
        ImportedDll {
            dll: b"driver.SYS".to_vec(),
            symbols: vec![sym(Some("A"), None)],
        },
        ImportedDll {
            dll: b"comctl32.ocx".to_vec(),
            symbols: vec![sym(Some("B"), None)],
        },
        ImportedDll {
            dll: b"lib.exe".to_vec(),
            symbols: vec![sym(Some("C"), None)],
        },
        ImportedDll {
            dll: b"noext".to_vec(),
            symbols: vec![sym(Some("D"), None)],
        },
    ];
    // md5 of "ws2_32.wsastartup,ws2_32.ord1000,oleaut32.sysallocstring,
    // wsock32.closesocket,msvbvm60.ord595,msvbvm60.__vbaend,driver.a,
    // comctl32.b,lib.exe.c,noext.d" (computed with Python's hashlib).
    assert_eq!(imphash(&imports), "b4f4cdab0417290b8a6c435832da2a8c");
    assert_eq!(imphash(&[]), "");
    assert_eq!(pe_util::ordinal_table_name(b"ws2_32.dll", 500), Some("WEP"));
    assert_eq!(
        pe_util::ordinal_table_name(b"wsock32.dll", 151),
        Some("__WSAFDIsSet")
    );
    assert_eq!(
        pe_util::ordinal_table_name(b"oleaut32.dll", 300),
        Some("DllUnregisterServer")
    );
    assert_eq!(pe_util::ordinal_table_name(b"oleaut32.dll", 302), None);
    assert_eq!(pe_util::ordinal_table_name(b"ws2_32", 1), None);
}

fn build(options: &[(&str, &str)]) -> std::sync::Arc<dyn Worker> {
    let cfg = PluginConfig::new("peinfo", options.iter().copied());
    (peinfo::descriptor().build)(&cfg).unwrap().worker.unwrap()
}

#[test]
fn bad_option_values_are_refused_at_build_time() {
    let cfg = PluginConfig::new("peinfo", [("extract_resources", "perhaps")]);
    let err = (peinfo::descriptor().build)(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("peinfo") && err.contains("extract_resources") && err.contains("perhaps"),
        "{err}"
    );
    let documented: Vec<&str> = peinfo::descriptor()
        .options
        .iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(
        documented,
        ["extract_resources", "extract_certificates", "max_extracted"]
    );
}

/// Exact JSON of the results for t64.exe. `STOQ_UPDATE_GOLDEN=1`
/// rewrites the golden file.
#[tokio::test]
async fn golden_output_t64() {
    let data = read(&testdata().join("t64.exe"));
    let resp = build(&[])
        .scan(&Payload::new(data), &Request::default())
        .await
        .unwrap()
        .unwrap();
    assert!(resp.errors.is_empty() && resp.extracted.is_empty());
    let got = serde_json::to_string_pretty(&resp.results.unwrap()).unwrap() + "\n";
    let path = testdata().join("golden/peinfo-t64.exe.json");
    if std::env::var_os("STOQ_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = String::from_utf8(read(&path)).unwrap();
    assert_eq!(
        got,
        want,
        "peinfo output for t64.exe changed (see {})",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_scan_extracts_resources_when_asked() {
    let data = read(&testdata().join("t64.exe"));
    let empty = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(empty.path())
        .plugin_opt("peinfo", "extract_resources", "true")
        .plugin_opt("peinfo", "max_extracted", "4")
        .build()
        .unwrap();
    let response = stoq
        .scan(data.clone(), None, None, &["peinfo".to_string()])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let root = &response.results[0];
    let resources = root.workers["peinfo"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 10);
    // Four extracted (the cap), each the bytes its entry describes.
    let children = &response.results[1..];
    assert_eq!(children.len(), 4);
    for (child, entry) in children.iter().zip(resources) {
        assert_eq!(child.extracted_by, ["peinfo"]);
        let meta = &child.payload_meta.extra_data;
        assert_eq!(meta["offset"], entry["offset"]);
        assert_eq!(child.size, entry["size"].as_u64().unwrap());
        assert!(meta["filename"].as_str().unwrap().starts_with("resource_"));
        // peinfo ran on the children too and found no PE there.
        assert!(!child.workers.contains_key("peinfo"));
    }
}

#[tokio::test]
async fn signed_file_certificate_and_overlay() {
    let Some(dir) = corpus() else {
        eprintln!("note: the shared corpus is absent; verdan32.exe checks skipped");
        return;
    };
    let data = read(&dir.join("pe/verdan32.exe"));
    let r = results(&data);
    let sig = &r["signature"];
    assert_eq!(sig["present"], true);
    assert_eq!(
        (sig["offset"].as_u64(), sig["size"].as_u64()),
        (Some(346_848), Some(5144))
    );
    let certs = sig["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["revision"], "0x0200");
    assert_eq!(certs[0]["cert_type"], 2);
    assert_eq!(r["overlay"]["offset"], 344_064);
    assert_eq!(r["overlay"]["size"], 7928);
    assert_eq!(r["version_info"]["Translation"], "0x0409 0x04b0");
    let resp = build(&[("extract_certificates", "true")])
        .scan(&Payload::new(data.clone()), &Request::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.extracted.len(), 1);
    let blob = &resp.extracted[0];
    assert_eq!(&blob.content[..], &data[346_848 + 8..346_848 + 5144]);
    assert_eq!(blob.payload_meta.extra_data["filename"], certs[0]["sha256"]);
}

/// Throughput of `analyse` over real PEs, in process (no engine, no I/O).
/// Run by `bench/peinfo.sh`; by hand:
/// `cargo test --release -p stoq-plugins --test peinfo -- --ignored --nocapture bench_peinfo`.
/// `BENCH_PE_DIR` (default: the corpus's `pe/`, else `testdata/pe/`),
/// `BENCH_ROUNDS` (default 200).
#[test]
#[ignore]
fn bench_peinfo_files_per_second() {
    use std::time::Instant;
    let dir = std::env::var_os("BENCH_PE_DIR")
        .map(PathBuf::from)
        .or_else(|| corpus().map(|c| c.join("pe")))
        .unwrap_or_else(testdata);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let data = std::fs::read(&p).ok()?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            analyse(&data).results.is_some().then_some((name, data))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no PE files in {}", dir.display());
    let bytes: usize = files.iter().map(|(_, d)| d.len()).sum();
    for (_, d) in &files {
        std::hint::black_box(analyse(d));
    }
    let start = Instant::now();
    for _ in 0..rounds {
        for (_, d) in &files {
            std::hint::black_box(analyse(d));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (rounds * files.len()) as f64;
    println!(
        "peinfo analyse: {} PE files ({} bytes) from {} x {rounds} rounds: {:.0} files/s, \
         {:.1} MB/s, {:.1} us/file",
        files.len(),
        bytes,
        dir.display(),
        n / secs,
        (rounds * bytes) as f64 / secs / 1e6,
        secs / n * 1e6
    );
    for (name, d) in &files {
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(analyse(d));
        }
        let per = start.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "  {name:<24} {:>8} bytes {:>9.1} us/file",
            d.len(),
            per * 1e6
        );
    }

    // pecarve over all of them embedded in one buffer.
    let mut buffer = vec![0x90u8; 4096];
    for (_, d) in &files {
        buffer.extend_from_slice(d);
        buffer.extend_from_slice(&[0x41; 1000]);
    }
    let limits = stoq_plugins::pecarve::CarveLimits::default();
    let found = stoq_plugins::pecarve::carve(&buffer, &limits).carved.len();
    let start = Instant::now();
    let reps = rounds.max(10) / 10;
    for _ in 0..reps {
        std::hint::black_box(stoq_plugins::pecarve::carve(&buffer, &limits));
    }
    let secs = start.elapsed().as_secs_f64() / reps as f64;
    println!(
        "pecarve carve: {} bytes holding {} PEs ({found} carved): {:.1} MB/s, {:.2} ms per buffer",
        buffer.len(),
        files.len(),
        buffer.len() as f64 / secs / 1e6,
        secs * 1e3
    );
}

/// A PE32 image built by hand: `sections` are (name, rva, raw offset, raw
/// size), `dirs` (index, rva, size), `patches` (file offset, bytes).
fn synthetic_pe(
    sections: &[(&str, u32, u32, u32)],
    dirs: &[(usize, u32, u32)],
    patches: &[(usize, Vec<u8>)],
    len: usize,
) -> Vec<u8> {
    let mut d = vec![0u8; len];
    let put = |d: &mut Vec<u8>, at: usize, b: &[u8]| d[at..at + b.len()].copy_from_slice(b);
    put(&mut d, 0, b"MZ");
    put(&mut d, 0x3c, &0x80u32.to_le_bytes());
    put(&mut d, 0x80, b"PE\0\0");
    let coff = 0x84;
    put(&mut d, coff, &0x14cu16.to_le_bytes());
    put(&mut d, coff + 2, &(sections.len() as u16).to_le_bytes());
    put(&mut d, coff + 4, &1_600_000_000u32.to_le_bytes());
    put(&mut d, coff + 16, &0xe0u16.to_le_bytes());
    put(&mut d, coff + 18, &0x0102u16.to_le_bytes());
    let opt = coff + 20;
    put(&mut d, opt, &0x10bu16.to_le_bytes());
    put(&mut d, opt + 16, &0x1000u32.to_le_bytes()); // entry point
    put(&mut d, opt + 28, &0x40_0000u32.to_le_bytes()); // image base
    put(&mut d, opt + 32, &0x1000u32.to_le_bytes()); // section alignment
    put(&mut d, opt + 36, &0x200u32.to_le_bytes()); // file alignment
    put(&mut d, opt + 56, &0x10_0000u32.to_le_bytes()); // size of image
    put(&mut d, opt + 60, &0x200u32.to_le_bytes()); // size of headers
    put(&mut d, opt + 68, &3u16.to_le_bytes()); // console
    put(&mut d, opt + 92, &16u32.to_le_bytes());
    for &(i, rva, size) in dirs {
        put(&mut d, opt + 96 + 8 * i, &rva.to_le_bytes());
        put(&mut d, opt + 100 + 8 * i, &size.to_le_bytes());
    }
    for (i, &(name, rva, raw, size)) in sections.iter().enumerate() {
        let h = opt + 0xe0 + 40 * i;
        put(&mut d, h, name.as_bytes());
        put(&mut d, h + 8, &size.to_le_bytes());
        put(&mut d, h + 12, &rva.to_le_bytes());
        put(&mut d, h + 16, &size.to_le_bytes());
        put(&mut d, h + 20, &raw.to_le_bytes());
        put(&mut d, h + 36, &0x6000_0020u32.to_le_bytes());
    }
    for (at, bytes) in patches {
        put(&mut d, *at, bytes);
    }
    d
}

fn dwords(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Ordinal imports from ws2_32 and oleaut32 resolve through the ordinal
/// tables, an unknown ordinal becomes `ord<N>`, TLS callbacks are read.
#[test]
fn synthetic_ordinal_imports_and_tls_callbacks() {
    // .text at RVA 0x1000 = file 0x200.
    let f = |rva: u32| (rva - 0x1000 + 0x200) as usize;
    let mut patches = vec![
        // Import descriptors: OFT, time, forwarder, name, FT.
        (f(0x1000), dwords(&[0x1040, 0, 0, 0x10e0, 0x1060])),
        (f(0x1014), dwords(&[0x1080, 0, 0, 0x10f0, 0x10a0])),
        (
            f(0x1040),
            dwords(&[0x8000_0073, 0x8000_0003, 0x8000_03e8, 0]),
        ),
        (
            f(0x1060),
            dwords(&[0x8000_0073, 0x8000_0003, 0x8000_03e8, 0]),
        ),
        (f(0x1080), dwords(&[0x8000_0002, 0x10c0, 0])),
        (f(0x10a0), dwords(&[0x8000_0002, 0x10c0, 0])),
        (f(0x10e0), b"WS2_32.dll\0".to_vec()),
        (f(0x10f0), b"OLEAUT32.dll\0".to_vec()),
        // TLS directory: AddressOfCallBacks = VA 0x401140.
        (f(0x1100), dwords(&[0, 0, 0x40_1180, 0x40_1140, 0, 0])),
        (f(0x1140), dwords(&[0x40_1000, 0x40_1010, 0])),
    ];
    patches.push((f(0x10c2), b"VariantInit\0".to_vec()));
    let pe = synthetic_pe(
        &[(".text", 0x1000, 0x200, 0x200)],
        &[(1, 0x1000, 40), (9, 0x1100, 24)],
        &patches,
        0x400,
    );
    let r = results(&pe);
    assert_eq!(
        r["imports"],
        json!({
            "WS2_32.dll": ["WSAStartup", "closesocket", "ord(1000)"],
            "OLEAUT32.dll": ["SysAllocString", "VariantInit"],
        })
    );
    // md5("ws2_32.wsastartup,ws2_32.closesocket,ws2_32.ord1000,
    //      oleaut32.sysallocstring,oleaut32.variantinit"); pefile 2024.8.26
    // gives the same for this file (it lists the unknown ordinal as
    // "ord1000" where peinfo says "ord(1000)").
    assert_eq!(r["imphash"], "da001959684c2ae5e229bc1e3aa708f3");
    assert_eq!(r["tls_callbacks"], json!([0x40_1000, 0x40_1010]));
    assert_eq!(r["is_exe"], true);
    assert!(r.get("overlay").is_none());
}

/// Sections that all map the same bytes cannot make peinfo hash far more
/// than the file: past 4x its size (+1 MiB) digests are null.
#[test]
fn overlapping_sections_have_a_hashing_budget() {
    let sections: Vec<(String, u32)> = (0..24u32)
        .map(|i| (format!("s{i}"), 0x1000 * (i + 1)))
        .collect();
    let spec: Vec<(&str, u32, u32, u32)> = sections
        .iter()
        .map(|(n, rva)| (n.as_str(), *rva, 0x200, 0x4_0000))
        .collect();
    let pe = synthetic_pe(&spec, &[], &[], 0x4_0200);
    let r = results(&pe);
    let list = r["sections"].as_array().unwrap();
    assert_eq!(list.len(), 24);
    let hashed = list.iter().filter(|s| !s["md5"].is_null()).count();
    // 4 * 0x4_0200 + 1 MiB = 2_099_200 bytes: 8 sections of 256 KiB.
    assert_eq!(hashed, 8);
    assert!(r["warnings"].to_string().contains("digests are null"));
}
