//! Fuzz target: RFC 5322 / MIME parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins_email::smtp::parse_message(data);
});
