//! Fuzz target: TNEF (winmail.dat) parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stoq_plugins_email::tnef::parse_tnef(data);
});
