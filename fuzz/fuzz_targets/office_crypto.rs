//! Fuzz target: encrypted Office documents, with the passwords that open
//! the test files (so mutations reach the decryption, not only the
//! password check): `ole` and olevba.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stoq_plugins_office::ole::{parse_ole_with, OleOptions};

fuzz_target!(|data: &[u8]| {
    let passwords: Vec<String> = ["VelvetSweatshop", "1234", "encrypted"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let opts = OleOptions {
        passwords: passwords.clone(),
        ..OleOptions::default()
    };
    let _ = parse_ole_with(data, &opts);
    let _ = stoq_plugins_office::find_vba_with(data, &passwords);
});
