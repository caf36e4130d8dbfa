//! Fuzz target: VBA/XLM/DDE discovery in OLE and OOXML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins_office::vba::find_vba(data);
});
