//! Fuzz target: carving embedded PE files out of any buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins::pecarve::carve(data, &stoq_plugins::pecarve::CarveLimits::default());
});
