//! # stoq-plugins
//!
//! The plugins built into the `stoq` binary. Each lives in its own module
//! behind a Cargo feature of the same name; [`builtin_registry`] registers
//! every enabled one.

use stoq_core::Registry;

#[cfg(feature = "dirmon")]
pub mod dirmon;
#[cfg(feature = "filedir")]
pub mod filedir;
#[cfg(feature = "hash")]
pub mod hash;
#[cfg(feature = "jinja")]
pub mod jinja;
#[cfg(feature = "stdin")]
pub mod stdin;
#[cfg(feature = "stdout")]
pub mod stdout;
#[cfg(feature = "summary")]
pub mod summary;

/// Version reported by the built-in plugins.
pub(crate) const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
pub(crate) const PLUGIN_AUTHOR: &str = "stoQ Rust contributors";

/// A registry holding every built-in plugin enabled at compile time.
pub fn builtin_registry() -> Registry {
    let mut r = Registry::new();
    let modules = [
        #[cfg(feature = "hash")]
        hash::descriptor(),
        #[cfg(feature = "filedir")]
        filedir::descriptor(),
        #[cfg(feature = "dirmon")]
        dirmon::descriptor(),
        #[cfg(feature = "stdin")]
        stdin::descriptor(),
        #[cfg(feature = "summary")]
        summary::descriptor(),
        #[cfg(feature = "jinja")]
        jinja::descriptor(),
        #[cfg(feature = "stdout")]
        stdout::descriptor(),
    ];
    for m in modules {
        // Built-in names are distinct by construction.
        let _ = r.register(m);
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_has_the_enabled_plugins() {
        let r = super::builtin_registry();
        let names: Vec<&str> = r.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["hash", "filedir", "dirmon", "stdin", "summary", "jinja", "stdout"]
        );
    }
}
