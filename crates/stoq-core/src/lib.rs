//! # stoq-core
//!
//! The data model, plugin traits and configuration primitives of stoQ in
//! Rust. Plugin authors depend on this crate only; the engine that runs
//! plugins lives in `stoq-engine`.
//!
//! - [`model`]: `Payload`, `PayloadMeta`, `PayloadResults`, `Request`,
//!   `RequestMeta`, `StoqResponse`, the plugin responses and the `Error`
//!   record, serialising to the JSON shape of stoQ v3.
//! - [`plugin`]: one async trait per plugin class and [`PluginInstance`].
//! - [`options`]: typed access to a plugin's string options.
//! - [`registry`]: module descriptors and the [`Registry`].
//! - [`ini`]: the `configparser`-compatible INI dialect of `stoq.cfg`.

pub mod error;
pub mod hashing;
pub mod ini;
pub mod model;
pub mod options;
pub mod plugin;
pub mod queue;
pub mod registry;

pub use error::{OptionError, PluginError, StoqError};
pub use model::{
    new_id, now_iso8601, to_json_compact, to_json_pretty, ArchiverResponse, DecoratorResponse,
    DispatcherResponse, Error, ExtractedPayload, Map, Payload, PayloadMeta, PayloadMetaUpdate,
    PayloadResults, PluginsRun, Request, RequestMeta, StoqResponse, WorkerResponse,
};
pub use options::PluginConfig;
pub use plugin::{
    blocking, run_cpu, Archiver, Connector, Decorator, Dispatcher, PluginClass, PluginInstance,
    PluginResult, Provider, Worker,
};
pub use queue::{Delivery, DeliveryReceipt, ProviderItem, ProviderQueue, QueuedItem, RunStats};
pub use registry::{ModuleDescriptor, OptionDoc, Registry};

/// Re-exported so plugin crates use the same version.
pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use serde_json;

/// The stoQ release whose behaviour this implementation follows. Plugin
/// manifests' `min_stoq_version` is compared with it.
pub const STOQ_COMPAT_VERSION: &str = "3.0.1";

/// This implementation's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
