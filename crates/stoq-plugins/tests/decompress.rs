//! `decompress` against independent tools on real files: member names,
//! sizes and digests equal to Python zipfile/tarfile/gzip/bz2, `7z l` and
//! rarfile listings (testdata/archives/expected.json), a live cross-check
//! with python3 when it is installed, passwords, path traversal, a nested
//! archive through the engine, bombs, corrupted inputs, and a golden
//! output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoq_core::hashing::{hex, sha256};
use stoq_core::serde_json::{self, json, Value};
use stoq_core::{Payload, PayloadMeta, PluginConfig, Request, Worker};
use stoq_engine::Stoq;
use stoq_plugins::decompress::{
    self, extract, extract_with, DecompressConfig, DecompressWorker, ExternalTools, Extraction,
    Format, Limits, Options, Stop,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/archives")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn pw(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// (path, size, sha256) of the extracted members, sorted.
fn listing(ex: &Extraction) -> Vec<(String, u64, String)> {
    let mut v: Vec<_> = ex
        .extracted
        .iter()
        .map(|m| {
            (
                m.path.clone(),
                m.content.len() as u64,
                hex(&sha256(&m.content)),
            )
        })
        .collect();
    v.sort();
    v
}

/// (name, size, sha256 if known) of the regular files of an
/// expected.json member list, sorted.
fn expected_files(members: &Value) -> Vec<(String, u64, Option<String>)> {
    let mut v: Vec<_> = members
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["is_dir"] != json!(true))
        .filter(|m| m.get("type").is_none_or(|t| t == "file"))
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["size"].as_u64().unwrap(),
                m.get("sha256").and_then(Value::as_str).map(String::from),
            )
        })
        .collect();
    v.sort();
    v
}

fn assert_matches_expected(file: &str, ex: &Extraction, members: &Value) {
    let want = expected_files(members);
    let got = listing(ex);
    let names = |v: &[(String, u64)]| v.to_vec();
    assert_eq!(
        names(
            &got.iter()
                .map(|(p, s, _)| (p.clone(), *s))
                .collect::<Vec<_>>()
        ),
        names(
            &want
                .iter()
                .map(|(p, s, _)| (p.clone(), *s))
                .collect::<Vec<_>>()
        ),
        "{file}: names and sizes"
    );
    for ((path, _, digest), (_, _, want_digest)) in got.iter().zip(&want) {
        if let Some(w) = want_digest {
            assert_eq!(digest, w, "{file}: sha256 of {path}");
        }
    }
}

#[test]
fn testdata_files_match_their_readme() {
    let readme = std::fs::read_to_string(data_dir().join("README.md")).unwrap();
    let mut n = 0;
    for line in readme.lines().filter(|l| l.starts_with("- `")) {
        let parts: Vec<&str> = line.split(" | ").collect();
        let name = parts[0].trim_start_matches("- ").trim_matches('`');
        let digest = parts[1].trim_matches('`');
        assert_eq!(hex(&sha256(&read(name))), digest, "{name}");
        n += 1;
    }
    assert_eq!(n, 20);
}

#[test]
fn listings_equal_independent_tools() {
    let exp = expected();
    let cases: &[(&str, Format)] = &[
        ("mixed.zip", Format::Zip),
        ("streamed-data-descriptor.zip", Format::Zip),
        ("path-traversal.zip", Format::Zip),
        ("password-infected.zip", Format::Zip),
        ("password-infected-aes256.zip", Format::Zip),
        ("nested-10-levels.zip", Format::Zip),
        ("mixed.tar.gz", Format::TarGzip),
        ("mixed.tar.bz2", Format::TarBzip2),
        ("mixed.tar.xz", Format::TarXz),
        ("small_text.tar", Format::Tar),
        ("path-traversal.tar", Format::Tar),
        ("mixed.7z", Format::SevenZip),
        ("password-infected-encrypted-headers.7z", Format::SevenZip),
        ("mixed.cab", Format::Cab),
        ("hello_2.10-3_amd64.deb", Format::Ar),
        ("ftp-0.17-537.i586.rpm", Format::Rpm),
    ];
    for (file, format) in cases {
        let started = Instant::now();
        let ex = extract(&read(file), &Limits::default(), &pw(&["infected"]));
        assert_eq!(ex.format, Some(*format), "{file}");
        assert!(ex.errors.is_empty(), "{file}: {:?}", ex.errors);
        let entry = &exp["archives"][format!("archives/{file}")];
        assert_matches_expected(file, &ex, &entry["members"]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{file} too slow"
        );
    }
}

#[test]
fn single_streams_and_the_rpm_payload() {
    let exp = expected();
    // gzip: the header's original name.
    let ex = extract(&read("test.txt.gz"), &Limits::default(), &[]);
    let want = &exp["archives"]["archives/test.txt.gz"]["single_stream"];
    assert_eq!(ex.format, Some(Format::Gzip));
    assert_eq!(
        listing(&ex),
        [(
            want["original_name"].as_str().unwrap().to_string(),
            want["size"].as_u64().unwrap(),
            want["sha256"].as_str().unwrap().to_string()
        )]
    );
    // bzip2 has no name: the payload's name minus the extension.
    let ex = extract_with(
        &read("free-software-song.midi.bz2"),
        &Options {
            name_hint: Some("dir/free-software-song.midi.bz2"),
            ..Options::default()
        },
    );
    let want = &exp["archives"]["archives/free-software-song.midi.bz2"]["single_stream"];
    assert_eq!(ex.format, Some(Format::Bzip2));
    assert_eq!(
        listing(&ex),
        [(
            "free-software-song.midi".to_string(),
            want["size"].as_u64().unwrap(),
            want["sha256"].as_str().unwrap().to_string()
        )]
    );
    // rpm → its cpio.bz2 payload → cpio → the files of the package.
    let rpm = extract(&read("ftp-0.17-537.i586.rpm"), &Limits::default(), &[]);
    let bz2 = extract(&rpm.extracted[0].content, &Limits::default(), &[]);
    assert_eq!(bz2.format, Some(Format::Bzip2));
    let cpio = extract(&bz2.extracted[0].content, &Limits::default(), &[]);
    assert_eq!(cpio.format, Some(Format::Cpio));
    let entry = &exp["archives"]["archives/ftp-0.17-537.i586.rpm"]["cpio_payload"];
    assert_matches_expected("rpm cpio payload", &cpio, &entry["members"]);
    // The two symlinks are recorded, not extracted.
    let links: Vec<&str> = cpio
        .skipped
        .iter()
        .filter(|s| s.reason.starts_with("symlink"))
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(links, ["./usr/bin/pftp", "./usr/share/man/man1/pftp.1.gz"]);
}

/// The names and sizes Python's zipfile / tarfile give on the same files
/// (one python3 run for all of them).
fn python_listings(files: &[PathBuf]) -> Option<Vec<Vec<(String, u64)>>> {
    const SCRIPT: &str = r#"
import json, sys, tarfile, zipfile
res = []
for p in sys.argv[1:]:
    out = []
    if p.endswith('.zip'):
        for i in zipfile.ZipFile(p).infolist():
            if not i.is_dir():
                out.append([i.filename, i.file_size])
    else:
        with tarfile.open(p) as t:
            for m in t.getmembers():
                if m.isfile():
                    out.append([m.name, m.size])
    res.append(sorted(out))
print(json.dumps(res))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args(files)
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn cross_check_with_python_zipfile_and_tarfile() {
    let files = [
        "mixed.zip",
        "streamed-data-descriptor.zip",
        "path-traversal.zip",
        "nested-10-levels.zip",
        "mixed.tar.gz",
        "mixed.tar.bz2",
        "mixed.tar.xz",
        "small_text.tar",
        "path-traversal.tar",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| data_dir().join(f)).collect();
    let Some(all) = python_listings(&paths) else {
        eprintln!("note: python3 not found; zipfile/tarfile cross-check skipped");
        return;
    };
    for (file, want) in files.iter().zip(all) {
        let ex = extract(&read(file), &Limits::default(), &[]);
        let got: Vec<(String, u64)> = listing(&ex).into_iter().map(|(p, s, _)| (p, s)).collect();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn passwords_zipcrypto_aes_and_7z_encrypted_headers() {
    for file in [
        "password-infected.zip",
        "password-infected-aes256.zip",
        "password-infected-encrypted-headers.7z",
    ] {
        // The right password after a wrong one.
        let ex = extract(&read(file), &Limits::default(), &pw(&["wrong", "infected"]));
        assert!(ex.errors.is_empty(), "{file}: {:?}", ex.errors);
        assert_eq!(ex.password.as_deref(), Some("infected"), "{file}");
        assert_eq!(ex.extracted.len(), 2, "{file}");
        assert!(ex.extracted.iter().all(|m| m.encrypted), "{file}");
        let digests: Vec<String> = listing(&ex).into_iter().map(|(_, _, d)| d).collect();
        assert_eq!(
            digests,
            [
                "9c59fa59b3e5ac73f8fa894a11bd17f8c92030dcf6d91924f133f8887456b3bc",
                "32acc1bc543116cbe2cff10cb867772df2f254ff2634c870aef0b46c4b696fdb"
            ],
            "{file}"
        );
    }
}

#[test]
fn wrong_password_is_recorded_not_fatal() {
    // Password "infected-test" is not in the defaults.
    let data = read("dde-test-from-office2003.doc.zip");
    let ex = extract(&data, &Limits::default(), &pw(&["infected", "password"]));
    assert_eq!(ex.format, Some(Format::Zip));
    assert_eq!((ex.members, ex.extracted.len()), (1, 0));
    assert_eq!(ex.skipped[0].path, "dde-test-from-office2003.doc");
    assert_eq!(
        ex.skipped[0].reason,
        "encrypted: none of 2 passwords matched"
    );
    assert_eq!(
        ex.errors,
        ["decompress: 1 encrypted member not extracted: none of the 2 configured passwords matched"]
    );
    let ex = extract(
        &data,
        &Limits::default(),
        &pw(&["infected", "infected-test"]),
    );
    assert_eq!(ex.password.as_deref(), Some("infected-test"));
    assert_eq!(
        hex(&sha256(&ex.extracted[0].content)),
        "8887ee7ce4b3c65479402a0635dfff32c7274e56228661a18b9ea508724f27c0"
    );
    // AES and 7z with no right password: recorded per member, nothing
    // extracted, no panic.
    for file in [
        "password-infected-aes256.zip",
        "password-infected-encrypted-headers.7z",
    ] {
        let ex = extract(&read(file), &Limits::default(), &pw(&["nope"]));
        assert!(ex.extracted.is_empty(), "{file}");
        assert!(!ex.errors.is_empty(), "{file}");
        assert!(ex.password.is_none(), "{file}");
    }
}

#[test]
fn path_traversal_names_are_metadata_only() {
    let cwd = std::env::current_dir().unwrap();
    let escape = cwd.join("../../evil.txt");
    let before = escape.exists();
    for (file, format) in [
        ("path-traversal.zip", Format::Zip),
        ("path-traversal.tar", Format::Tar),
    ] {
        let ex = extract(&read(file), &Limits::default(), &[]);
        assert_eq!(ex.format, Some(format));
        let evil = ex
            .extracted
            .iter()
            .find(|m| m.path == "../../evil.txt")
            .unwrap_or_else(|| panic!("{file}: no ../../evil.txt member"));
        assert_eq!(evil.filename, "evil.txt");
        assert_eq!(
            hex(&sha256(&evil.content)),
            "db3c06284bc4bed08e79be6ff4dd2b1829c7fa8db511da0929a42b54a2ea0ac1"
        );
    }
    // Nothing was written: not where the entry points, not in the cwd.
    assert_eq!(escape.exists(), before);
    assert!(!cwd.join("evil.txt").exists() && !cwd.join("good.txt").exists());
    let tar = extract(&read("path-traversal.tar"), &Limits::default(), &[]);
    assert_eq!(tar.skipped.len(), 1);
    assert_eq!(tar.skipped[0].path, "evil-link");
    assert_eq!(tar.skipped[0].reason, "symlink to ../../../outside");
}

fn engine(opts: &[(&str, &str)]) -> Stoq {
    let empty = tempfile::tempdir().unwrap();
    let mut b = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(empty.path())
        .always_dispatch(["decompress"])
        .max_recursion(12);
    for (k, v) in opts {
        b = b.plugin_opt("decompress", k, *v);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_ten_levels_through_the_engine() {
    let data = read("nested-10-levels.zip");
    let stoq = engine(&[("external_tools", "none")]);
    let r = stoq
        .scan(
            data.clone(),
            Some(PayloadMeta::with_extra("filename", "nested-10-levels.zip")),
            None,
            &[],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let by_name: BTreeMap<String, u64> = r
        .results
        .iter()
        .filter_map(|p| {
            Some((
                p.payload_meta.extra_data.get("path")?.as_str()?.to_string(),
                p.size,
            ))
        })
        .collect();
    for level in 2..=10 {
        assert!(
            by_name.contains_key(&format!("level-{level:02}.zip")),
            "level {level}"
        );
    }
    assert_eq!(by_name["zeros-8MiB.bin"], 8 << 20);
    assert_eq!(by_name["vim.lnk"], 1510);
    let zeros = r
        .results
        .iter()
        .find(|p| p.payload_meta.extra_data["filename"] == "zeros-8MiB.bin")
        .unwrap();
    assert_eq!(zeros.payload_meta.extra_data["archive_format"], "zip");
    assert_eq!(zeros.extracted_by, ["decompress"]);
    // Root + 9 nested zips + the two innermost files.
    assert_eq!(r.results.len(), 12);

    // A small total budget stops the innermost archive, and says so.
    let stoq = engine(&[("max_total_size", "1000000"), ("external_tools", "none")]);
    let r = stoq.scan(data, None, None, &[]).await;
    assert!(r.results.iter().all(|p| p.size < 1_000_000));
    let budget: Vec<&str> = r
        .errors
        .iter()
        .map(|e| e.error.as_str())
        .filter(|e| e.contains("budget max_total_size (1000000 bytes) reached"))
        .collect();
    assert_eq!(budget.len(), 1, "{:?}", r.errors);
    assert!(
        budget[0].starts_with("decompress: budget max_total_size (1000000 bytes) reached after")
    );
    let rec = r
        .errors
        .iter()
        .find(|e| e.error.contains("budget"))
        .unwrap();
    assert_eq!(rec.plugin_name.as_deref(), Some("decompress"));
}

// ---------------------------------------------------------------- bombs --

/// Raw deflate of `total` zero bytes without making them: one fully
/// flushed 1 MiB block of zeros repeated, then an empty final block.
fn deflate_zeros(total: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut c = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(64 << 10);
    c.compress_vec(&zeros, &mut block, FlushCompress::Full)
        .unwrap();
    assert_eq!(c.total_in(), CHUNK as u64);
    let n = (total / CHUNK as u64) as usize;
    let mut out = Vec::with_capacity(block.len() * n + 8);
    for _ in 0..n {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    out
}

/// A zip of `count` deflated members of `size` zero bytes each, written by
/// hand. Above 16 MiB the CRCs are left wrong: reading stops long before
/// they are checked.
fn zip_bomb(count: usize, size: u32) -> Vec<u8> {
    let data = deflate_zeros(size as u64);
    let crc = if size <= 16 << 20 {
        let mut c = flate2::Crc::new();
        c.update(&vec![0u8; size as usize]);
        c.sum()
    } else {
        0
    };
    let mut out = Vec::new();
    let mut central = Vec::new();
    for i in 0..count {
        let name = format!("bomb-{i}.bin");
        let offset = out.len() as u32;
        let header = |sig: u32, central_dir: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central_dir {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            for v in [20u16, 0, 8, 0, 0x21] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, data.len() as u32, size] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central_dir {
                for v in [0u16, 0, 0] {
                    h.extend_from_slice(&v.to_le_bytes());
                }
                h.extend_from_slice(&0u32.to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        let local = header(0x04034b50, false);
        central.extend(header(0x02014b50, true));
        out.extend(local);
        out.extend_from_slice(&data);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    for v in [0u16, 0, count as u16, count as u16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn zip_bomb_stops_at_the_budgets_quickly() {
    let bomb = zip_bomb(1, 1 << 30); // 1 GiB of zeros in ~1 MB
    assert!(bomb.len() < 2 << 20);

    // Defaults: the ratio budget stops the member after 16 MiB.
    let started = Instant::now();
    let ex = extract(&bomb, &Limits::default(), &[]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(ex.extracted.is_empty());
    // The decoder reads its input ahead: the stop comes a little after the
    // 16 MiB floor.
    assert!(ex.decoded < 32 << 20, "decoded {}", ex.decoded);
    assert_eq!(
        ex.errors,
        ["decompress: bomb-0.bin: compression ratio above max_ratio (200); not extracted"]
    );

    // Without the ratio budget: maximum_size stops it.
    let limits = Limits {
        max_ratio: 0,
        maximum_size: 8 << 20,
        ..Limits::default()
    };
    let ex = extract(&bomb, &limits, &[]);
    assert_eq!(
        ex.skipped[0].reason,
        "larger than maximum_size (8388608 bytes)"
    );
    assert!(ex.decoded <= (8 << 20) + (1 << 20));

    // Many members: the total budget stops the archive.
    let many = zip_bomb(50, 1 << 30);
    let limits = Limits {
        max_ratio: 0,
        maximum_size: 4 << 20,
        max_total_size: 32 << 20,
        ..Limits::default()
    };
    let started = Instant::now();
    let ex = extract(&many, &limits, &[]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(ex.stopped, Some(Stop::TotalSize));
    assert!(ex.decoded <= (32 << 20) + (1 << 20));
    assert_eq!(
        ex.errors[0],
        "decompress: budget max_total_size (33554432 bytes) reached after 0 members; remaining members skipped"
    );

    // Entry count.
    let limits = Limits {
        max_entries: 3,
        maximum_size: 1 << 20,
        ..Limits::default()
    };
    let ex = extract(&zip_bomb(10, 1 << 20), &limits, &[]);
    assert_eq!(ex.stopped, Some(Stop::Entries));
    assert_eq!(ex.extracted.len(), 3);
    assert!(ex.errors[0].starts_with("decompress: budget max_entries (3) reached after 3 members"));
}

#[test]
fn gzip_bomb_stops_on_the_stream_ratio() {
    let deflated = deflate_zeros(1 << 30);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend_from_slice(&deflated);
    gz.extend_from_slice(&[0; 8]);
    let started = Instant::now();
    let ex = extract(&gz, &Limits::default(), &[]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(ex.format, Some(Format::Gzip));
    assert_eq!(ex.stopped, Some(Stop::Ratio));
    assert!(ex.extracted.is_empty());
    // The decoder reads its input ahead, so the stop comes a little after
    // the 16 MiB floor (about 32 MiB here).
    assert!(ex.decoded < 64 << 20, "decoded {}", ex.decoded);
    assert!(ex.errors[0].starts_with("decompress: budget max_ratio (200) exceeded"));
}

// ------------------------------------------------------------ robustness --

#[test]
fn truncated_and_corrupted_inputs_never_panic() {
    let files = [
        "mixed.zip",
        "streamed-data-descriptor.zip",
        "password-infected.zip",
        "password-infected-aes256.zip",
        "mixed.tar.gz",
        "mixed.tar.bz2",
        "mixed.tar.xz",
        "small_text.tar",
        "mixed.7z",
        "password-infected-encrypted-headers.7z",
        "mixed.cab",
        "hello_2.10-3_amd64.deb",
        "ftp-0.17-537.i586.rpm",
        "test.txt.gz",
        "free-software-song.midi.bz2",
    ];
    let limits = Limits {
        max_total_size: 4 << 20,
        ..Limits::default()
    };
    let passwords = pw(&["infected"]);
    let started = Instant::now();
    let mut runs = 0;
    for file in files {
        let data = read(file);
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for cut in [1, 2, 7, 16, 40, 100, 300, 513, 1100] {
            if cut < data.len() {
                variants.push(data[..cut].to_vec());
            }
        }
        for frac in [4, 2] {
            variants.push(data[..data.len() / frac * (frac - 1)].to_vec());
        }
        // Flip bytes through the headers and the data.
        let mut x: u32 = 0x9e3779b9;
        for _ in 0..12 {
            let mut v = data.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = if x.is_multiple_of(2) {
                    (x as usize) % v.len().min(600)
                } else {
                    (x as usize) % v.len()
                };
                v[i] ^= (x >> 8) as u8 | 1;
            }
            variants.push(v);
        }
        for v in variants {
            let ex = extract(&v, &limits, &passwords);
            runs += 1;
            assert!(
                !ex.errors.iter().any(|e| e.contains("panicked")),
                "{file}: a decoder panicked: {:?}",
                ex.errors
            );
        }
    }
    assert!(runs > 300);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn unknown_data_is_not_an_archive() {
    for data in [&b""[..], b"hello world", &read("../pe/cli-32.exe")] {
        let ex = extract(data, &Limits::default(), &[]);
        assert_eq!(ex.format, None);
        assert!(ex.errors.is_empty() && ex.extracted.is_empty());
    }
}

// ------------------------------------------------------- external tools --

#[test]
fn rar_through_an_external_tool() {
    let tools = ExternalTools::from_option("auto").unwrap();
    let data = read("hachoir-core.rar");
    if tools.tool_for(Format::Rar).is_none() {
        let ex = extract_with(
            &data,
            &Options {
                external: Some(&tools),
                ..Options::default()
            },
        );
        assert_eq!(ex.format, Some(Format::Rar));
        assert!(ex.errors[0].contains("no external tool"), "{:?}", ex.errors);
        eprintln!("note: no 7z/unar/unrar on PATH; RAR extraction check skipped");
        return;
    }
    let ex = extract_with(
        &data,
        &Options {
            external: Some(&tools),
            passwords: &pw(&["infected"]),
            ..Options::default()
        },
    );
    assert!(ex.errors.is_empty(), "{:?}", ex.errors);
    assert!(ex.tool.is_some());
    let exp = expected();
    assert_matches_expected(
        "hachoir-core.rar",
        &ex,
        &exp["archives"]["archives/hachoir-core.rar"]["members"],
    );
    // Without tools the format is still recognised and the gap reported.
    let ex = extract(&data, &Limits::default(), &[]);
    assert_eq!(ex.format, Some(Format::Rar));
    assert!(ex.extracted.is_empty());
    assert!(ex.errors[0].contains("no external tool"));
}

#[test]
fn external_tool_output_is_capped() {
    let tools = ExternalTools::from_option("auto").unwrap();
    if tools.tool_for(Format::Rar).is_none() {
        eprintln!("note: no 7z/unar/unrar on PATH; external budget check skipped");
        return;
    }
    let limits = Limits {
        max_total_size: 100_000,
        ..Limits::default()
    };
    let ex = extract_with(
        &read("hachoir-core.rar"),
        &Options {
            limits,
            external: Some(&tools),
            ..Options::default()
        },
    );
    assert_eq!(ex.stopped, Some(Stop::TotalSize));
    assert!(ex.extracted.iter().map(|m| m.content.len()).sum::<usize>() <= 100_000);
    assert!(ex.errors[0].starts_with("decompress: budget max_total_size (100000 bytes) reached"));
}

// ---------------------------------------------------------------- worker --

#[test]
fn options_are_parsed_and_bad_values_named() {
    let build = |pairs: &[(&str, &str)]| {
        let cfg = PluginConfig::new("decompress", pairs.iter().map(|(k, v)| (*k, *v)));
        DecompressConfig::from_config(&cfg)
    };
    let d = build(&[("external_tools", "none")]).unwrap();
    assert_eq!(d.passwords, ["infected", "password"]);
    assert_eq!(d.limits, Limits::default());
    assert!(d.archive_extracted && d.always_dispatch.is_empty());
    let c = build(&[
        ("passwords", "a, b"),
        ("maximum_size", "10"),
        ("max_ratio", "0"),
        ("archive_extracted", "false"),
        ("always_dispatch", "hash,yara"),
        ("external_tools", "none"),
    ])
    .unwrap();
    assert_eq!(c.passwords, ["a", "b"]);
    assert_eq!((c.limits.maximum_size, c.limits.max_ratio), (10, 0));
    assert!(!c.archive_extracted);
    assert_eq!(c.always_dispatch, ["hash", "yara"]);
    for (k, v) in [
        ("max_entries", "abc"),
        ("maximum_size", "0"),
        ("archive_extracted", "maybe"),
        ("external_tools", "no-such-tool"),
    ] {
        let e = build(&[(k, v)]).unwrap_err().to_string();
        assert!(
            e.contains("decompress") && e.contains(k) && e.contains(v),
            "{e}"
        );
    }
    let built = (decompress::descriptor().build)(&PluginConfig::new(
        "decompress",
        [("max_total_size", "-5")],
    ));
    assert!(built.is_err());
}

/// The golden output of the worker on a real archive: its results object
/// and the sorted (path, size, sha256) of the extracted payloads.
#[tokio::test]
async fn golden_output_mixed_zip() {
    let cfg = DecompressConfig {
        always_dispatch: vec!["hash".into()],
        archive_extracted: false,
        ..DecompressConfig::default()
    };
    let worker = DecompressWorker::new(cfg);
    let payload = Payload::new(read("mixed.zip"));
    let resp = worker
        .scan(&payload, &Request::default())
        .await
        .unwrap()
        .unwrap();
    assert!(resp.errors.is_empty());
    assert_eq!(
        resp.results.unwrap(),
        json!({"format": "zip", "members": 6, "extracted": 6, "skipped": []})
    );
    let mut got: Vec<(String, String, u64, String)> = resp
        .extracted
        .iter()
        .map(|e| {
            let x = &e.payload_meta.extra_data;
            assert_eq!(x["archive_format"], "zip");
            assert!(!e.payload_meta.should_archive);
            assert_eq!(e.payload_meta.dispatch_to, ["hash"]);
            (
                x["path"].as_str().unwrap().to_string(),
                x["filename"].as_str().unwrap().to_string(),
                e.content.len() as u64,
                hex(&sha256(&e.content)),
            )
        })
        .collect();
    got.sort();
    let golden: Vec<(String, String, u64, String)> = [
        (
            "elf/hello",
            "hello",
            31448,
            "1aab5d66fba9313733ca534dc9693f262532ab696eb9d29cc70978c5e1c7078c",
        ),
        (
            "images/gps.jpg",
            "gps.jpg",
            8271,
            "1668330d4a2efe3baaf2509e4f73af14b9ec0ca45dcc54b3ca9af72aa1d9a388",
        ),
        (
            "misc/vim.lnk",
            "vim.lnk",
            1510,
            "b3ad6192b9258054067fc0ce00b12da9be89ca55626407d1e6ca9ec58f364179",
        ),
        (
            "office-ole/sample_with_lnk_file.doc",
            "sample_with_lnk_file.doc",
            16896,
            "2f226f9332ebeadde64984238600ff62f75c7407f2c508e1ce953d4e1c9422b2",
        ),
        (
            "pdf/crazyones.pdf",
            "crazyones.pdf",
            11448,
            "9c59fa59b3e5ac73f8fa894a11bd17f8c92030dcf6d91924f133f8887456b3bc",
        ),
        (
            "pe/cli-32.exe",
            "cli-32.exe",
            11776,
            "32acc1bc543116cbe2cff10cb867772df2f254ff2634c870aef0b46c4b696fdb",
        ),
    ]
    .iter()
    .map(|(p, f, s, d)| (p.to_string(), f.to_string(), *s, d.to_string()))
    .collect();
    assert_eq!(got, golden);

    // Not an archive: no results at all.
    let none = worker
        .scan(&Payload::new(&b"plain text"[..]), &Request::default())
        .await
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn payload_passwords_and_archiver_override() {
    let worker = DecompressWorker::new(DecompressConfig {
        passwords: vec![],
        ..DecompressConfig::default()
    });
    let mut meta = PayloadMeta::default();
    meta.extra_data
        .insert("passwords".into(), json!(["infected-test"]));
    let payload = Payload::with_meta(read("dde-test-from-office2003.doc.zip"), meta);
    let resp = worker
        .scan(&payload, &Request::default())
        .await
        .unwrap()
        .unwrap();
    let r = resp.results.unwrap();
    assert_eq!(r["password"], "infected-test");
    assert_eq!(r["extracted"], 1);
    let x = &resp.extracted[0].payload_meta.extra_data;
    assert_eq!(x["encrypted"], true);
    assert_eq!(x["filename"], "dde-test-from-office2003.doc");

    // An unknown archiver name is reported; detection still works.
    let meta = PayloadMeta::with_extra("archiver", "upx");
    let payload = Payload::with_meta(read("mixed.tar.gz"), meta);
    let resp = worker
        .scan(&payload, &Request::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.results.unwrap()["format"], "tar.gz");
    assert_eq!(resp.errors.len(), 1);
    assert!(resp.errors[0]
        .error
        .contains("\"upx\" is not a known format"));
}

#[tokio::test]
async fn a_cancelled_scan_stops_the_extraction() {
    // The engine drops the scan future on timeout; the flag then stops the
    // blocking extraction at its next read.
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ex = extract_with(
        &read("mixed.zip"),
        &Options {
            cancel: Some(flag),
            ..Options::default()
        },
    );
    assert_eq!(ex.stopped, Some(Stop::Cancelled));
    assert!(ex.extracted.is_empty());
    assert!(ex.errors[0].starts_with("decompress: cancelled (plugin timeout)"));
}

#[test]
fn ar_gnu_long_names_synthetic() {
    // GNU ar with a "//" long-name table, built here.
    let mut ar = b"!<arch>\n".to_vec();
    let mut member = |name: &str, data: &[u8]| {
        let h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            644,
            data.len()
        );
        assert_eq!(h.len(), 60);
        ar.extend_from_slice(h.as_bytes());
        ar.extend_from_slice(data);
        if data.len() % 2 == 1 {
            ar.push(b'\n');
        }
    };
    member("//", b"a-very-long-member-name.txt/\n");
    member("/0", b"long");
    member("short.txt/", b"odd");
    let ex = extract(&ar, &Limits::default(), &[]);
    assert_eq!(ex.format, Some(Format::Ar));
    let names: Vec<&str> = ex.extracted.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(names, ["a-very-long-member-name.txt", "short.txt"]);
    assert_eq!(ex.extracted[1].content, b"odd");
}
