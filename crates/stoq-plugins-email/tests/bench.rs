//! Throughput of smtp + iocextract, in-process. Ignored by default; run by
//! `bench/email.sh` (which generates real-shaped messages) or by hand:
//!
//! ```sh
//! STOQ_EMAIL_BENCH_DIR=/dir/of/emls cargo test --release -p stoq-plugins-email \
//!     --test bench -- --ignored --nocapture
//! ```
//!
//! Without `STOQ_EMAIL_BENCH_DIR` the five corpus e-mails are used, 60
//! times each.

mod common;

use std::time::Instant;

use stoq_engine::Stoq;
use stoq_plugins_email::iocextract::{extract_from_bytes, IocOptions};
use stoq_plugins_email::parse_message;
use stoq_plugins_email::smtp::{self, SmtpOptions};

fn messages() -> Vec<Vec<u8>> {
    match std::env::var_os("STOQ_EMAIL_BENCH_DIR") {
        Some(dir) => {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            paths.sort();
            paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
        }
        None => {
            let names = [
                "attachments-zip-pdf-doc.eml",
                "exe-attachment-rfc2047.eml",
                "forwarded-rfc822.eml",
                "plain-iocs.eml",
                "winmail-tnef.eml",
            ];
            (0..60)
                .flat_map(|_| names.iter().map(|n| common::read(n)))
                .collect()
        }
    }
}

fn report(label: &str, n: usize, bytes: usize, secs: f64) {
    println!(
        "   {label:<52} {secs:7.3} s {:9.1} messages/s {:7.2} MB/s",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run by bench/email.sh"]
async fn throughput() {
    let msgs = messages();
    let n = msgs.len();
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    println!(
        "   {n} messages, {bytes} bytes{}",
        if cfg!(debug_assertions) {
            " (debug build: figures are not representative)"
        } else {
            ""
        }
    );

    // The pure functions, one thread: parse, build the response (hashing
    // every part), extract indicators from the raw message and from every
    // text-like part.
    let opts = SmtpOptions::default();
    let iocs = IocOptions::default();
    let start = Instant::now();
    let mut parts = 0;
    for m in &msgs {
        let p = parse_message(m).expect("an e-mail");
        let r = smtp::response(&p, &opts);
        let _ = extract_from_bytes(m, &iocs);
        for e in &r.extracted {
            let _ = extract_from_bytes(&e.content, &iocs);
        }
        parts += r.extracted.len();
    }
    report(
        "parse_message + response + extract_iocs (1 thread)",
        n,
        bytes,
        start.elapsed().as_secs_f64(),
    );
    println!("   ({parts} parts extracted)");

    let start = Instant::now();
    for m in &msgs {
        let _ = parse_message(m);
    }
    report(
        "parse_message only (1 thread)",
        n,
        bytes,
        start.elapsed().as_secs_f64(),
    );

    // A Stoq engine, smtp and iocextract on every payload (as
    // `stoq run -a smtp iocextract`), 1 and 8 scans at a time.
    let empty = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(stoq_plugins_email::registry())
        .base_dir(empty.path())
        .always_dispatch(["smtp", "iocextract"])
        .build()
        .unwrap();
    for concurrent in [1usize, 8] {
        let start = Instant::now();
        let mut payloads = 0;
        for chunk in msgs.chunks(concurrent) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|m| {
                    let stoq = stoq.clone();
                    let m = m.clone();
                    tokio::spawn(async move { stoq.scan(m, None, None, &[]).await })
                })
                .collect();
            for h in handles {
                payloads += h.await.unwrap().results.len();
            }
        }
        report(
            &format!("Stoq engine, always_dispatch smtp iocextract, {concurrent} at a time"),
            n,
            bytes,
            start.elapsed().as_secs_f64(),
        );
        println!("   ({payloads} payloads)");
    }
}
