//! # stoq-plugins-email
//!
//! Built-in stoQ plugins for e-mail, aggregated by `stoq-plugins` behind its
//! `email` feature. [`registry`] holds every plugin of this crate:
//!
//! - [`smtp`]: parse an RFC 5322/MIME message, extract its attachments,
//!   attached messages (dispatched to `smtp`) and `winmail.dat` (to `tnef`);
//! - [`tnef`]: unpack TNEF (`winmail.dat`) streams;
//! - [`iocextract`]: indicators of compromise in text, defanged forms
//!   included.
//!
//! Each plugin has a pure, panic-free entry point for tests and fuzzing:
//! [`smtp::parse_message`], [`tnef::parse_tnef`],
//! [`iocextract::extract_iocs`].

use stoq_core::Registry;

pub mod iocextract;
pub mod smtp;
pub mod text;
pub mod tnef;

pub use iocextract::{extract_iocs, IocOptions, Iocs};
pub use smtp::{parse_message, ParsedEmail};
pub use tnef::{parse_tnef, Tnef};

/// Version reported by the plugins of this crate.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Author reported by the plugins of this crate.
pub const PLUGIN_AUTHOR: &str = "stoQ Rust contributors";

/// Every plugin of this crate.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    for m in [
        smtp::descriptor(),
        tnef::descriptor(),
        iocextract::descriptor(),
    ] {
        // The names are distinct by construction.
        let _ = r.register(m);
    }
    r
}
