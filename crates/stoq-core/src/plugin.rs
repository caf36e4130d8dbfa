//! Plugin traits: one object-safe async trait per plugin class.
//!
//! Plugin instances are shared: one instance serves every payload, every
//! round and every concurrent scan, so all methods take `&self`. A plugin
//! that needs mutable state keeps it behind a lock of its own.
//!
//! The engine wraps every call with a timeout and panic capture; plugins do
//! not need to. CPU-heavy work should run through [`blocking`] (or another
//! thread pool) so it does not stall the async runtime.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::PluginError;
use crate::model::{
    ArchiverResponse, DecoratorResponse, DispatcherResponse, Payload, Request, StoqResponse,
    WorkerResponse,
};
use crate::queue::ProviderQueue;

/// The result type of every plugin method.
pub type PluginResult<T> = Result<T, PluginError>;

/// Scans a payload and returns results and/or extracted payloads.
#[async_trait]
pub trait Worker: Send + Sync {
    /// Scan one payload. `request` holds every payload of the scan so far.
    /// Return `Ok(None)` (or a response without results) for formats the
    /// worker does not handle; errors are for real failures.
    async fn scan(
        &self,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<Option<WorkerResponse>>;

    /// Workers that must have run on a payload before this one. Added to the
    /// `required_workers` option.
    fn required_workers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Decides which workers a payload goes to.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>>;
}

/// Stores payloads (`archive`, destination archivers) and fetches them back
/// (`get`, source archivers).
#[async_trait]
pub trait Archiver: Send + Sync {
    async fn archive(
        &self,
        _payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        Ok(None)
    }

    async fn get(&self, _task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        Ok(None)
    }
}

/// Looks at a whole response and adds its own results.
#[async_trait]
pub trait Decorator: Send + Sync {
    async fn decorate(&self, response: &StoqResponse) -> PluginResult<Option<DecoratorResponse>>;
}

/// Saves a response somewhere.
#[async_trait]
pub trait Connector: Send + Sync {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()>;
}

/// Feeds work into `stoq run`.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Put items on `queue` until the source is exhausted (or forever, for a
    /// monitor). Returning ends this provider.
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()>;
}

/// The classes a plugin can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginClass {
    Provider,
    Worker,
    Archiver,
    Dispatcher,
    Decorator,
    Connector,
}

impl PluginClass {
    pub const ALL: [PluginClass; 6] = [
        PluginClass::Provider,
        PluginClass::Worker,
        PluginClass::Archiver,
        PluginClass::Dispatcher,
        PluginClass::Decorator,
        PluginClass::Connector,
    ];

    /// The name `stoq list` shows (the reference's class name minus `Plugin`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginClass::Provider => "Provider",
            PluginClass::Worker => "Worker",
            PluginClass::Archiver => "Archiver",
            PluginClass::Dispatcher => "Dispatcher",
            PluginClass::Decorator => "Decorator",
            PluginClass::Connector => "Connector",
        }
    }
}

impl fmt::Display for PluginClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A built plugin: one object placed in every class slot it implements. A
/// multiclass plugin is one `Arc` cloned into several slots.
#[derive(Clone, Default)]
pub struct PluginInstance {
    pub worker: Option<Arc<dyn Worker>>,
    pub dispatcher: Option<Arc<dyn Dispatcher>>,
    pub archiver: Option<Arc<dyn Archiver>>,
    pub decorator: Option<Arc<dyn Decorator>>,
    pub connector: Option<Arc<dyn Connector>>,
    pub provider: Option<Arc<dyn Provider>>,
}

impl fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginInstance")
            .field("classes", &self.classes())
            .finish()
    }
}

impl PluginInstance {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn worker(mut self, p: Arc<dyn Worker>) -> Self {
        self.worker = Some(p);
        self
    }

    pub fn dispatcher(mut self, p: Arc<dyn Dispatcher>) -> Self {
        self.dispatcher = Some(p);
        self
    }

    pub fn archiver(mut self, p: Arc<dyn Archiver>) -> Self {
        self.archiver = Some(p);
        self
    }

    pub fn decorator(mut self, p: Arc<dyn Decorator>) -> Self {
        self.decorator = Some(p);
        self
    }

    pub fn connector(mut self, p: Arc<dyn Connector>) -> Self {
        self.connector = Some(p);
        self
    }

    pub fn provider(mut self, p: Arc<dyn Provider>) -> Self {
        self.provider = Some(p);
        self
    }

    /// The classes this instance fills, in a fixed order.
    pub fn classes(&self) -> Vec<PluginClass> {
        PluginClass::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .collect()
    }

    pub fn has(&self, class: PluginClass) -> bool {
        match class {
            PluginClass::Provider => self.provider.is_some(),
            PluginClass::Worker => self.worker.is_some(),
            PluginClass::Archiver => self.archiver.is_some(),
            PluginClass::Dispatcher => self.dispatcher.is_some(),
            PluginClass::Decorator => self.decorator.is_some(),
            PluginClass::Connector => self.connector.is_some(),
        }
    }
}

/// Payloads below this size are processed inline by [`run_cpu`]: handing
/// them to another thread costs more than it saves.
pub const INLINE_CPU_LIMIT: usize = 256 * 1024;

/// Run `f`, which works on an input of `len` bytes: inline when the input is
/// small, on the blocking pool (see [`blocking`]) when it is large.
pub async fn run_cpu<T, F>(len: usize, f: F) -> PluginResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if len < INLINE_CPU_LIMIT {
        Ok(f())
    } else {
        blocking(f).await
    }
}

/// Run CPU-heavy work on the blocking thread pool so the async runtime stays
/// responsive, and so two payloads can be hashed or parsed on two cores at
/// once. A panic inside `f` becomes a [`PluginError`].
pub async fn blocking<T, F>(f: F) -> PluginResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PluginError::new(format!("blocking task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_cpu_inline_below_the_limit_and_off_thread_above() {
        let here = std::thread::current().id();
        let small = run_cpu(10, move || std::thread::current().id() == here).await;
        assert_eq!(small, Ok(true));
        let large = run_cpu(INLINE_CPU_LIMIT, move || {
            std::thread::current().id() == here
        })
        .await;
        assert_eq!(large, Ok(false));
    }
}
