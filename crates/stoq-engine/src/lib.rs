//! # stoq-engine
//!
//! The stoQ orchestrator. Build a [`Stoq`] with [`Stoq::builder`], then scan
//! bytes, a [`Payload`] or a whole [`Request`]; every extracted payload goes
//! round again until nothing new is found or `max_recursion` rounds have
//! run. Dest archivers, decorators and connectors follow.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stoq_core::StoqError> {
//! use stoq_engine::Stoq;
//! let stoq = Stoq::builder()
//!     .registry(my_plugins())
//!     .always_dispatch(["hash"])
//!     .build()?;
//! let response = stoq.scan(&b"The quick brown fox"[..], None, None, &[]).await;
//! println!("{response}");
//! # Ok(()) }
//! # fn my_plugins() -> stoq_core::Registry { stoq_core::Registry::new() }
//! ```
//!
//! Scans must run inside a Tokio runtime (multi-threaded for plugins to use
//! several cores): every plugin call is spawned as its own task, with a time
//! limit and panic capture.
//!
//! The algorithm follows stoQ v3 (see `docs/ARCHITECTURE.md`), with the
//! deviations listed in `docs/COMPATIBILITY.md`: deterministic ordering,
//! per-plugin time limits, panics caught, dispatcher and connector errors
//! recorded.

pub mod config;
mod engine;
pub mod external;
pub mod guard;
pub mod plugin_manager;
mod run;

pub use config::{CoreConfig, LogSyntax, StoqConfig};
pub use engine::{Stoq, StoqBuilder, DEFAULT_MAX_QUEUE_BYTES, DEFAULT_PLUGIN_TIMEOUT};
pub use plugin_manager::{Launch, LoadedPlugin, PluginEntry, PluginInfo, PluginManager};
pub use run::{RunControl, RunSummary};

pub use stoq_core::{Payload, PayloadMeta, Request, RequestMeta, StoqResponse};
