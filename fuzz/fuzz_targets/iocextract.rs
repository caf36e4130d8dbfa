//! Fuzz target: IOC extraction with refanging.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = stoq_plugins_email::iocextract::IocOptions::default();
    let _ = stoq_plugins_email::iocextract::extract_from_bytes(data, &opts);
});
