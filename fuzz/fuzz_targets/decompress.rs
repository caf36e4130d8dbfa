//! Fuzz target: archives of every supported format: budgets hold, nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = stoq_plugins::decompress::Limits {
        maximum_size: 1 << 20,
        max_total_size: 4 << 20,
        max_entries: 256,
        ..Default::default()
    };
    let _ = stoq_plugins::decompress::extract(data, &limits, &["infected".to_string()]);
});
