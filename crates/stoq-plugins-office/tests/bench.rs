//! Throughput figures (not a test of anything): `bash bench/office.sh`, or
//! `cargo test --release -p stoq-plugins-office --test bench -- --ignored --nocapture`.

mod common;

use std::time::{Duration, Instant};

fn measure(what: &str, files: &[(String, Vec<u8>)], f: impl Fn(&[u8])) {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let bytes: usize = files.iter().map(|(_, d)| d.len()).sum::<usize>() * rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        for (_, d) in files {
            f(d);
        }
    }
    let t = start.elapsed().max(Duration::from_nanos(1));
    println!(
        "{what:<13} {:>5} files x {rounds} rounds: {:>8.1} ms, {:>8.1} files/s, {:>7.1} MB/s",
        files.len(),
        t.as_secs_f64() * 1e3,
        (files.len() * rounds) as f64 / t.as_secs_f64(),
        bytes as f64 / t.as_secs_f64() / 1e6
    );
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture in release mode"]
fn throughput() {
    let load = |dirs: &[&str]| -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for d in dirs {
            let mut names: Vec<_> = std::fs::read_dir(common::testdata().join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let rel = format!("{d}/{n}");
                v.push((rel.clone(), common::read(&rel)));
            }
        }
        v
    };
    let ole = load(&["office-ole"]);
    let office = load(&["office-ole", "office-ooxml"]);
    let rtf = load(&["rtf"]);
    measure("ole", &ole, |d| {
        let _ = stoq_plugins_office::parse_ole(d);
    });
    // The same without passwords: what parsing costs apart from trying
    // the default passwords on the one encrypted container.
    let no_passwords = stoq_plugins_office::ole::OleOptions {
        passwords: Vec::new(),
        ..Default::default()
    };
    measure("ole-nopw", &ole, |d| {
        let _ = stoq_plugins_office::ole::parse_ole_with(d, &no_passwords);
    });
    measure("olevba", &office, |d| {
        let _ = stoq_plugins_office::find_vba(d);
    });
    measure("olevba-nopw", &office, |d| {
        let _ = stoq_plugins_office::vba::find_vba_with(d, &[]);
    });
    measure("rtf", &rtf, |d| {
        let _ = stoq_plugins_office::parse_rtf(d);
    });
    // Encrypted documents: five open with the first default password, one
    // with the fourth; two Agile, one RC4 .xls, one RC4 .doc and one RC4
    // CryptoAPI .ppt open with none of the seven (every password is tried).
    let encrypted = load(&["encrypted"]);
    measure("encrypted", &encrypted, |d| {
        let _ = stoq_plugins_office::parse_ole(d);
    });
    // The RC4 files (xls, doc, ppt) opened with their password: the cost
    // of decrypting rather than of trying passwords.
    let rc4: Vec<_> = encrypted
        .iter()
        .filter(|(n, _)| {
            ["encrypted.doc", "encrypted.ppt", "encrypted.xls"]
                .iter()
                .any(|f| n.ends_with(f))
        })
        .cloned()
        .collect();
    let test_password = stoq_plugins_office::ole::OleOptions {
        passwords: vec!["encrypted".into()],
        ..Default::default()
    };
    measure("encrypted-rc4", &rc4, |d| {
        let r = stoq_plugins_office::ole::parse_ole_with(d, &test_password).unwrap();
        assert!(!r.decrypted.is_empty());
    });
    // One Agile password attempt (100,000 SHA-512 rounds).
    let docx = common::read("encrypted/encrypted.docx");
    let cf = stoq_plugins_office::compound::CompoundFile::open(&docx).unwrap();
    let info = cf.read_path("EncryptionInfo").unwrap().data;
    let package = cf.read_path("EncryptedPackage").unwrap().data;
    let tries = 20;
    let start = Instant::now();
    for i in 0..tries {
        let out = stoq_plugins_office::crypto::decrypt_ooxml(&info, &package, &[format!("x{i}")]);
        assert!(out.package.is_none());
    }
    println!(
        "agile    one password attempt: {:>6.1} ms",
        start.elapsed().as_secs_f64() * 1e3 / f64::from(tries)
    );
}
