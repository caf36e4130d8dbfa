//! Fuzz target: PE parsing (imphash, sections, resources, version info, ...).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins::peinfo::analyse(data);
});
