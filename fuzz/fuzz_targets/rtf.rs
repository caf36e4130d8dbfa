//! Fuzz target: RTF objects, OLE 1.0 and packages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins_office::rtf::parse_rtf(data);
});
