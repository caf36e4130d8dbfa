//! Per-call cost of an external worker against the same work built in.
//!
//! Scans the same payload many times with the built-in `hash` worker and
//! with `v3_hash` (a stoQ v3 Python plugin computing the same four digests,
//! run by the compatibility host over the plugin protocol), for a 1 KiB and
//! a 10 MiB payload, and prints the median time per scan of each and their
//! difference. `v3_hang` on harmless input (returns `{"ok": true}`) gives
//! the floor: a call that does no work.
//!
//! ```text
//! cargo run --release -p stoq-cli --example external_overhead [ITERATIONS]
//! ```

use std::time::{Duration, Instant};

use stoq_engine::Stoq;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let stoq = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .plugin_dirs([repo.join("testdata/plugins/v3")])
        .build()?;
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>12}",
        "payload", "hash", "v3_hash", "difference", "v3 no-op"
    );
    for (label, size) in [("1 KiB", 1usize << 10), ("10 MiB", 10usize << 20)] {
        // Not "hang": v3_hang answers at once.
        let content: Vec<u8> = (0..size).map(|i| b"stoq"[i % 4]).collect();
        let runs = if size > 1 << 20 {
            iterations / 10
        } else {
            iterations
        }
        .max(5);
        let mut times = Vec::new();
        for worker in ["hash", "v3_hash", "v3_hang"] {
            let start_dispatch = vec![worker.to_string()];
            // Warm-up: starts the plugin process, fills caches.
            for _ in 0..3 {
                let r = stoq
                    .scan(content.clone(), None, None, &start_dispatch)
                    .await;
                assert!(r.errors.is_empty(), "{worker}: {:?}", r.errors);
            }
            let mut samples = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                let r = stoq
                    .scan(content.clone(), None, None, &start_dispatch)
                    .await;
                samples.push(t.elapsed());
                assert!(r.results[0].workers.contains_key(worker));
            }
            times.push(median(samples));
        }
        println!(
            "{:<10} {:>12} {:>12} {:>12} {:>12}",
            label,
            fmt(times[0]),
            fmt(times[1]),
            fmt(times[1].saturating_sub(times[0])),
            fmt(times[2]),
        );
    }
    Ok(())
}
