//! Fuzz target: OLE2 compound files and Ole10Native.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins_office::ole::parse_ole(data);
});
