//! # stoq-plugins-misc
//!
//! Built-in stoQ plugins, aggregated by `stoq-plugins` behind its
//! `misc` feature. [`registry`] holds every plugin of this crate:
//!
//! | plugin | does |
//! |---|---|
//! | [`pdf`] | PDF metadata, actions, JavaScript, embedded files (extracted) |
//! | [`b64decode`] | base64-decode the whole payload |
//! | [`xordecode`] | rolling-XOR decode with the key from dispatch metadata |
//! | [`xorsearch`] | single-byte XOR brute force for a term list |
//! | [`swfcarve`] | carve FWS/CWS/ZWS Flash files, emit them uncompressed |
//! | [`javaclass`] | Java class file: provided/required API, constants |
//! | [`exif`] | EXIF tags of JPEG/TIFF/PNG/WebP/HEIF images |
//! | [`xdpcarve`] | base64 content of named XML elements (XDP/XFA) |
//!
//! Every worker returns `Ok(None)` for input it does not handle and never
//! panics, whatever the input.

use stoq_core::Registry;

pub mod b64decode;
pub mod exif;
pub mod javaclass;
pub mod pdf;
pub mod swfcarve;
pub mod xdpcarve;
pub mod xordecode;
pub mod xorsearch;

mod util;

/// Version reported by the plugins of this crate.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Author reported by the plugins of this crate.
pub const PLUGIN_AUTHOR: &str = "stoQ Rust contributors";

/// Every plugin of this crate.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    for m in [
        pdf::descriptor(),
        b64decode::descriptor(),
        xordecode::descriptor(),
        xorsearch::descriptor(),
        swfcarve::descriptor(),
        javaclass::descriptor(),
        exif::descriptor(),
        xdpcarve::descriptor(),
    ] {
        // The names above are distinct by construction.
        let _ = r.register(m);
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_lists_every_plugin() {
        let names: Vec<String> = super::registry().iter().map(|m| m.name.clone()).collect();
        assert_eq!(
            names,
            [
                "pdf",
                "b64decode",
                "xordecode",
                "xorsearch",
                "swfcarve",
                "javaclass",
                "exif",
                "xdpcarve"
            ]
        );
        for m in super::registry().iter() {
            assert!(!m.description.is_empty(), "{} has no description", m.name);
            assert_eq!(m.version, super::PLUGIN_VERSION);
        }
    }
}
