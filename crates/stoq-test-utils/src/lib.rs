//! # stoq-test-utils
//!
//! Rust equivalents of the test plugins of the stoQ reference test suite
//! (`stoq/tests/data/plugins`), for the engine's integration tests.
//!
//! - [`test_registry`] registers every test module, each recording its
//!   calls and builds into a shared [`Probe`] (the Rust stand-in for the
//!   reference's mocks).
//! - The reference's class-level knobs (`RAISE_EXCEPTION`, `RETURN_ERRORS`,
//!   `EXTRACTED_DISPATCH_TO`, `SHOULD_SCAN`, `WORKERS`, ...) are plugin
//!   options of the same name in lower case; see [`plugins`].
//! - [`LogCapture`] collects log events, as `assertLogs` does.
//!
//! | module | classes | behaviour |
//! |---|---|---|
//! | `dummy_archiver` | Archiver | `archive`/`get` → `None` |
//! | `simple_archiver` | Archiver | `archive` → `{"file_save_id": 12345}`; `get(task)` → payload `payload` with `extra_data = task.results`; knobs `raise_exception`, `return_errors`, `payload` |
//! | `dummy_connector` | Connector | `save` does nothing; knob `raise_exception` ("Unexpected exception") |
//! | `dummy_decorator` | Decorator | `decorate` → `None` |
//! | `simple_decorator` | Decorator | `{"simple_decoration": 123}`; knobs `raise_exception`, `return_errors` |
//! | `conditional_dispatcher` | Dispatcher | `workers` (default `simple_worker`) once `conditional_dispatch_worker` (default `dummy_worker`) ran on any payload; meta `{"test_key": ...}` always |
//! | `dummy_dispatcher` | Dispatcher | `None` |
//! | `simple_dispatcher` | Dispatcher | `workers` (default `dummy_worker`), meta `{"test_key": "Useful metadata info"}`, sets `should_archive`; knobs `raise_exception`, `return_errors`, `should_archive`, `workers` |
//! | `dummy_provider` | Provider | queues nothing |
//! | `request_provider` | Provider | queues a `Request` for `b"Dummy payload"` with extra_data `{"dummy": "1"}` (or default meta with `specify_request_meta = false`) |
//! | `simple_provider` | Provider | queues `b"Important stuff"` (or, `return_payload = false`, a task for `simple_archiver`); knobs `raise_exception`, `raise_after_queueing` |
//! | `simple_provider2` | Provider | queues `b"Important stuff"`; knob `raise_exception` |
//! | `configurable_worker` | Worker | `scan` → `None`; its options are read back through [`Probe::config`] |
//! | `dummy_worker`, `dummy_worker2` | Worker | `scan` → `None` |
//! | `extract_payload` | Worker | extracts `extracted_payload` or 50 random bytes, no results |
//! | `multiclass_plugin` | Worker + Dispatcher (one instance) | worker: `{"valuable_insight": "wow"}` + extracts `b"Lorem ipsum"`; dispatcher: `workers` (default itself) with meta `{worker: {"rule0": worker}}` |
//! | `simple_worker` | Worker | `{"valuable_insight": "wow"}` + extracts `extracted_payload` (default `b"Lorem ipsum"`) with `should_scan`/`extracted_dispatch_to`; knobs `raise_exception`, `return_errors`, `additional_dispatch_to`, and (new) `panic`, `sleep` |
//! | `random_class_not_a_plugin` | none | builds an instance without any plugin class (the reference's `missing_plugin`) |

pub mod logs;
pub mod plugins;
pub mod probe;

pub use logs::{LogCapture, LogRecord};
pub use plugins::{
    descriptors, CONNECTOR_EXCEPTION, IMPORTANT_STUFF, LOREM_IPSUM, PROVIDER_EXCEPTION, TEST_PANIC,
};
pub use probe::{method, Build, Call, Probe};

use stoq_core::Registry;

/// The reference tests' `generic_content`.
pub const GENERIC_CONTENT: &[u8] = b"The quick brown fox";
/// What test plugins fail with when told to raise.
pub const TEST_EXCEPTION: &str = "Test exception please ignore";
/// What test plugins add to their errors when told to return errors.
pub const TEST_ERROR: &str = "Test error please ignore";
/// Documentation of the test plugins.
pub const AUTHOR: &str = "Marcus LaFerrera";
pub const VERSION: &str = "0.1";
pub const WEBSITE: &str = "https://github.com/PUNCH-Cyber/stoq-plugins-public";

/// The names of the reference's `DUMMY_PLUGINS`.
pub const DUMMY_PLUGINS: &[&str] = &[
    "dummy_archiver",
    "dummy_connector",
    "dummy_provider",
    "dummy_worker",
    "dummy_decorator",
];

/// A registry holding every test module, recording into `probe`.
pub fn test_registry(probe: &Probe) -> Registry {
    let mut registry = Registry::new();
    for d in descriptors(probe) {
        // The names are distinct by construction.
        registry
            .register(d)
            .unwrap_or_else(|e| panic!("test registry: {e}"));
    }
    registry
}

/// Owned plugin names, for `add_start_dispatch` arguments.
pub fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
