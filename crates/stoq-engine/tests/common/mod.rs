//! Shared helpers of the engine's integration tests (the reference's
//! `stoq/tests/utils.py`).

#![allow(dead_code)]

use std::path::PathBuf;

use stoq_engine::{Stoq, StoqBuilder};
use stoq_test_utils::{test_registry, Probe};

/// `stoq/tests/data`.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// `stoq/tests/data/plugins`.
pub fn plugins_dir() -> PathBuf {
    data_dir().join("plugins")
}

/// `stoq/tests/data/plugins2`.
pub fn plugins2_dir() -> PathBuf {
    data_dir().join("plugins2")
}

/// `stoq/tests/data/invalid_plugins`.
pub fn invalid_plugins_dir() -> PathBuf {
    data_dir().join("invalid_plugins")
}

/// The reference tests' `Stoq(base_dir=utils.get_data_dir())`: the test
/// config and the `plugins` directory, with every test module registered
/// and recording into `probe`.
pub fn builder(probe: &Probe) -> StoqBuilder {
    Stoq::builder()
        .registry(test_registry(probe))
        .base_dir(data_dir())
}

/// `builder(probe).build()`, which must succeed.
pub fn stoq(probe: &Probe) -> Stoq {
    builder(probe).build().expect("the test engine builds")
}
