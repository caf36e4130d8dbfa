//! Fuzz target: PDF analysis and embedded files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins_misc::pdf::analyse_pdf(data);
});
