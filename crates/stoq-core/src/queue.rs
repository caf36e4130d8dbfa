//! The queue between providers and the engine in run mode, delivery
//! receipts, and live run statistics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::error::PluginError;
use crate::model::{ArchiverResponse, Payload, Request};
use crate::plugin::PluginResult;

/// One unit of work a provider hands to the engine.
#[derive(Debug, Clone)]
pub enum ProviderItem {
    /// Scan this payload.
    Payload(Box<Payload>),
    /// Scan this request. When its `request_meta` is all defaults, the
    /// run-level request meta replaces it. A `scan_id` set on the request is
    /// kept, which makes results of a re-delivered item land under the same
    /// id.
    Request(Request),
    /// Ask the named source archiver to fetch a payload, then scan it.
    ArchiverTask {
        archiver: String,
        task: ArchiverResponse,
    },
}

/// What became of a queued item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Scanned, and every connector saved the response.
    Saved { scan_id: String },
    /// Scanned, but these connectors failed to save the response.
    Unsaved {
        scan_id: String,
        failed_connectors: Vec<String>,
    },
    /// Not scanned: the source archiver failed or returned nothing, or the
    /// scan task itself failed.
    Failed { reason: String },
}

/// Resolves when the engine is done with a queued item.
#[derive(Debug)]
pub struct DeliveryReceipt(oneshot::Receiver<Delivery>);

impl DeliveryReceipt {
    /// The outcome, or `None` when the item was dropped unscanned (the run
    /// was shut down while it waited in the queue).
    pub async fn wait(self) -> Option<Delivery> {
        self.0.await.ok()
    }
}

/// An item on the queue, with the sender of its receipt if one was asked
/// for. The engine's side of [`ProviderQueue`].
#[derive(Debug)]
pub struct QueuedItem {
    pub item: ProviderItem,
    pub receipt: Option<oneshot::Sender<Delivery>>,
}

impl QueuedItem {
    /// Report the outcome (ignored when nobody waits for it).
    pub fn deliver(self, outcome: Delivery) {
        if let Some(tx) = self.receipt {
            let _ = tx.send(outcome);
        }
    }
}

/// Counters of a run, updated live; read them for progress output.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Items providers have queued.
    pub queued: AtomicU64,
    /// Items providers announced in advance (0: unknown).
    pub expected: AtomicU64,
    /// Items taken off the queue and finished, whatever the outcome.
    pub done: AtomicU64,
    /// Requests scanned.
    pub scanned: AtomicU64,
    /// Payloads in all scanned requests (initial and extracted).
    pub payloads: AtomicU64,
    /// Error records in all scanned requests.
    pub errors: AtomicU64,
    /// Items that could not be scanned.
    pub failed: AtomicU64,
    /// Responses at least one connector failed to save.
    pub unsaved: AtomicU64,
    /// Bytes of the initial payloads scanned.
    pub bytes: AtomicU64,
}

impl RunStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The bounded queue providers put work on. Sending waits while the queue
/// is full (back-pressure).
#[derive(Clone)]
pub struct ProviderQueue {
    tx: mpsc::Sender<QueuedItem>,
    stats: Arc<RunStats>,
}

impl fmt::Debug for ProviderQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderQueue").finish_non_exhaustive()
    }
}

impl ProviderQueue {
    pub fn new(tx: mpsc::Sender<QueuedItem>, stats: Arc<RunStats>) -> Self {
        ProviderQueue { tx, stats }
    }

    async fn send(
        &self,
        item: ProviderItem,
        receipt: Option<oneshot::Sender<Delivery>>,
    ) -> PluginResult<()> {
        self.tx
            .send(QueuedItem { item, receipt })
            .await
            .map_err(|_| PluginError::new("the provider queue is closed"))?;
        RunStats::add(&self.stats.queued, 1);
        Ok(())
    }

    /// Queue one item; fails only when the engine has stopped consuming.
    pub async fn put(&self, item: ProviderItem) -> PluginResult<()> {
        self.send(item, None).await
    }

    /// Queue one item and get a receipt that resolves when the item has been
    /// scanned and saved (or has failed). Providers that acknowledge work to
    /// a broker, or keep a journal, wait on it.
    pub async fn put_tracked(&self, item: ProviderItem) -> PluginResult<DeliveryReceipt> {
        let (tx, rx) = oneshot::channel();
        self.send(item, Some(tx)).await?;
        Ok(DeliveryReceipt(rx))
    }

    /// Queue a payload.
    pub async fn put_payload(&self, payload: Payload) -> PluginResult<()> {
        self.put(ProviderItem::Payload(Box::new(payload))).await
    }

    /// Queue a request.
    pub async fn put_request(&self, request: Request) -> PluginResult<()> {
        self.put(ProviderItem::Request(request)).await
    }

    /// Queue a task for a source archiver.
    pub async fn put_task(
        &self,
        archiver: impl Into<String>,
        task: ArchiverResponse,
    ) -> PluginResult<()> {
        self.put(ProviderItem::ArchiverTask {
            archiver: archiver.into(),
            task,
        })
        .await
    }

    /// Announce that `n` more items will come (for progress output).
    pub fn expect(&self, n: u64) {
        RunStats::add(&self.stats.expected, n);
    }

    /// The run's live counters.
    pub fn stats(&self) -> &Arc<RunStats> {
        &self.stats
    }
}
