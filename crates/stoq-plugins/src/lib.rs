//! # stoq-plugins
//!
//! The plugins built into the `stoq` binary. Each lives in its own module
//! behind a Cargo feature of the same name; [`builtin_registry`] registers
//! every enabled one.

use stoq_core::Registry;

#[cfg(feature = "decompress")]
pub mod decompress;
#[cfg(feature = "dirmon")]
pub mod dirmon;
#[cfg(feature = "entropy")]
pub mod entropy;
#[cfg(feature = "filedir")]
pub mod filedir;
#[cfg(feature = "filetype")]
pub mod filetype;
#[cfg(feature = "hash")]
pub mod hash;
#[cfg(feature = "jinja")]
pub mod jinja;
#[cfg(feature = "mimetype")]
pub mod mimetype;
#[cfg(feature = "pecarve")]
pub mod pecarve;
#[cfg(feature = "peinfo")]
pub mod peinfo;
#[cfg(feature = "stdin")]
pub mod stdin;
#[cfg(feature = "stdout")]
pub mod stdout;
#[cfg(feature = "summary")]
pub mod summary;
#[cfg(feature = "yara")]
pub mod yara;

/// Version reported by the built-in plugins.
pub(crate) const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
pub(crate) const PLUGIN_AUTHOR: &str = "stoQ Rust contributors";

/// A registry holding every built-in plugin enabled at compile time.
pub fn builtin_registry() -> Registry {
    let mut r = Registry::new();
    let modules = [
        #[cfg(feature = "hash")]
        hash::descriptor(),
        #[cfg(feature = "mimetype")]
        mimetype::descriptor(),
        #[cfg(feature = "filetype")]
        filetype::descriptor(),
        #[cfg(feature = "entropy")]
        entropy::descriptor(),
        #[cfg(feature = "yara")]
        yara::descriptor(),
        #[cfg(feature = "decompress")]
        decompress::descriptor(),
        #[cfg(feature = "peinfo")]
        peinfo::descriptor(),
        #[cfg(feature = "pecarve")]
        pecarve::descriptor(),
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
    let families: Vec<Registry> = vec![
        #[cfg(feature = "email")]
        stoq_plugins_email::registry(),
        #[cfg(feature = "office")]
        stoq_plugins_office::registry(),
        #[cfg(feature = "misc")]
        stoq_plugins_misc::registry(),
        #[cfg(feature = "broker")]
        stoq_plugins_broker::registry(),
    ];
    for family in families {
        for m in family.iter() {
            let _ = r.register(m.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_has_the_enabled_plugins() {
        let r = super::builtin_registry();
        let names: Vec<&str> = r.iter().map(|m| m.name.as_str()).collect();
        // This crate's own plugins first, then the plugin families.
        let own = [
            "hash",
            "mimetype",
            "filetype",
            "entropy",
            "yara",
            "decompress",
            "peinfo",
            "pecarve",
            "filedir",
            "dirmon",
            "stdin",
            "summary",
            "jinja",
            "stdout",
        ];
        assert_eq!(&names[..own.len()], own);
    }
}
