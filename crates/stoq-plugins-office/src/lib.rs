//! # stoq-plugins-office
//!
//! Built-in stoQ plugins for Office documents, aggregated by `stoq-plugins`
//! behind its `office` feature. [`registry`] holds every plugin of this
//! crate:
//!
//! - [`ole`]: streams and storages of OLE2 compound files, every stream
//!   carved, `\x01Ole10Native` packages unpacked to their file;
//! - [`olevba`]: `olevba` (VBA source from OLE, OOXML and PowerPoint
//!   files, MacroRaptor flags, Excel 4 macro sheets, DDE fields) and
//!   `mraptor` (the public plugin's MacroRaptor verdict);
//! - [`rtf`]: embedded objects of RTF documents, decoded the way MS Word
//!   reads obfuscated RTF, OLE 1.0 objects and packages unpacked.
//!
//! The parsing is in pure functions that take any bytes and never panic
//! (fuzzing entry points): [`parse_ole`], [`find_vba`], [`parse_rtf`].
//!
//! Design notes:
//!
//! - OLE2 files are read by [`compound`], a tolerant reader written for
//!   this crate after olefile's behaviour, not by the `cfb` crate, which
//!   refuses a whole file on the first inconsistency (every truncated
//!   corpus document, for one). `cfb` and `ovba` are dev-dependencies: the
//!   tests check that they read the same streams and VBA source.
//! - VBA decompression and the `dir` stream are in [`ovba`]; MacroRaptor's
//!   rules in [`mraptor`]; OLE 1.0 / OLE Packager structures in
//!   [`oleobj`].
//! - Every reader has budgets (bytes read per compound file, bytes
//!   inflated from zip members and PowerPoint storages, VBA source
//!   decompressed, RTF objects decoded) so crafted files cannot make a
//!   scan use memory or time far beyond their size.

pub mod compound;
pub mod crypto;
mod dde;
pub mod mraptor;
pub mod ole;
pub mod oleobj;
pub mod olevba;
pub mod ovba;
pub mod rtf;
mod util;
pub mod vba;

use stoq_core::Registry;

pub use ole::{parse_ole, OleReport};
pub use rtf::{parse_rtf, RtfReport};
pub use vba::{find_vba, find_vba_with, VbaReport};

/// Version reported by the plugins of this crate.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Author reported by the plugins of this crate.
pub const PLUGIN_AUTHOR: &str = "stoQ Rust contributors";

/// Every plugin of this crate: `ole`, `olevba`, `mraptor`, `rtf`.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    for m in [
        ole::descriptor(),
        olevba::olevba_descriptor(),
        olevba::mraptor_descriptor(),
        rtf::descriptor(),
    ] {
        // The names are distinct by construction.
        let _ = r.register(m);
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_names() {
        let names: Vec<String> = super::registry().iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, ["ole", "olevba", "mraptor", "rtf"]);
    }
}
