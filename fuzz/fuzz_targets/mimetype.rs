//! Fuzz target: content-based type detection (also used by the filetype dispatcher).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins::mimetype::detect(data);
});
