//! # stoq-plugins-broker
//!
//! Built-in stoQ plugins for running many workers on shared brokers and
//! storage, aggregated by `stoq-plugins` behind its `broker` feature:
//!
//! - [`redis_queue`] (`redis-queue`): Redis Streams provider, connector and
//!   archiver;
//! - [`rabbitmq`] (`rabbitmq`): AMQP 0-9-1 provider and connector;
//! - [`s3`] (`s3`): S3-compatible archiver and connector;
//! - [`es_search`] (`es-search`): Elasticsearch/OpenSearch `_bulk`
//!   connector.
//!
//! Every provider here acknowledges a message only after every connector
//! has saved its result (at-least-once delivery); see docs/DEPLOYMENT.md.

use stoq_core::Registry;

pub mod common;
pub mod es_search;
pub mod rabbitmq;
pub mod redis_queue;
pub mod s3;
pub mod sigv4;

/// Version reported by the plugins of this crate.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Author reported by the plugins of this crate.
pub const PLUGIN_AUTHOR: &str = "stoQ Rust contributors";

/// Every plugin of this crate.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    for d in [
        redis_queue::descriptor(),
        rabbitmq::descriptor(),
        s3::descriptor(),
        es_search::descriptor(),
    ] {
        r.register(d).expect("unique plugin names");
    }
    r
}
