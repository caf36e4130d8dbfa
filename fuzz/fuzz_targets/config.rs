//! stoq.cfg and plugin manifests: the INI parser, interpolation and the
//! `[core]` checks must never panic, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(ini) = stoq_core::ini::Ini::parse(text, "fuzz.cfg", true) {
        for section in ini.sections().map(String::from).collect::<Vec<_>>() {
            let _ = ini.items(&section);
        }
    }
    let _ = stoq_core::ini::Ini::parse(text, "fuzz.stoq", false);
    if let Ok(cfg) = stoq_engine::StoqConfig::parse(text, "fuzz.cfg") {
        let _ = cfg.plugin_options("hash");
    }
});
