//! The queue between providers and the engine in run mode, delivery
//! receipts, and live run statistics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

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
    /// The item's share of the queue's byte budget, given back when the
    /// item is dropped (after its scan).
    pub budget: Option<OwnedSemaphorePermit>,
}

impl QueuedItem {
    /// Report the outcome (ignored when nobody waits for it).
    pub fn deliver(self, outcome: Delivery) {
        if let Some(tx) = self.receipt {
            let _ = tx.send(outcome);
        }
    }
}

/// Bytes in KiB, rounded up, capped to what a semaphore can hand out.
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).min(u64::from(u32::MAX >> 3)) as u32
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
    bytes: Option<ByteBudget>,
}

/// Bounds the payload bytes queued and in scan at once, counted in KiB.
#[derive(Clone, Debug)]
struct ByteBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

/// The payload bytes an item brings with it (an archiver task: none yet).
pub fn item_bytes(item: &ProviderItem) -> u64 {
    match item {
        ProviderItem::Payload(p) => p.content.len() as u64,
        ProviderItem::Request(r) => r.payloads.iter().map(|p| p.content.len() as u64).sum(),
        ProviderItem::ArchiverTask { .. } => 0,
    }
}

impl fmt::Debug for ProviderQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderQueue").finish_non_exhaustive()
    }
}

impl ProviderQueue {
    pub fn new(tx: mpsc::Sender<QueuedItem>, stats: Arc<RunStats>) -> Self {
        ProviderQueue {
            tx,
            stats,
            bytes: None,
        }
    }

    /// Also bound the payload bytes held by queued and in-progress items:
    /// a provider waits while they exceed `max_bytes`. One item larger than
    /// the whole budget still goes through, alone. `budget` is shared by
    /// every provider of a run.
    pub fn with_byte_budget(mut self, budget: &Arc<Semaphore>, max_bytes: u64) -> Self {
        self.bytes = Some(ByteBudget {
            kib: budget.clone(),
            total_kib: kib(max_bytes),
        });
        self
    }

    /// A semaphore for [`ProviderQueue::with_byte_budget`].
    pub fn byte_budget(max_bytes: u64) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(kib(max_bytes) as usize))
    }

    async fn send(
        &self,
        item: ProviderItem,
        receipt: Option<oneshot::Sender<Delivery>>,
    ) -> PluginResult<()> {
        let budget = match &self.bytes {
            Some(b) => {
                let want = kib(item_bytes(&item)).min(b.total_kib);
                Some(
                    b.kib
                        .clone()
                        .acquire_many_owned(want)
                        .await
                        .map_err(|_| PluginError::new("the provider queue is closed"))?,
                )
            }
            None => None,
        };
        self.tx
            .send(QueuedItem {
                item,
                receipt,
                budget,
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn payload(n: usize) -> ProviderItem {
        ProviderItem::Payload(Box::new(Payload::new(vec![0u8; n])))
    }

    #[tokio::test]
    async fn the_byte_budget_holds_providers_back_until_scans_finish() {
        let (tx, mut rx) = mpsc::channel(100);
        let budget = ProviderQueue::byte_budget(3 * 1024);
        let q = ProviderQueue::new(tx, Default::default()).with_byte_budget(&budget, 3 * 1024);
        // Three 1 KiB items fit; a fourth waits although the channel has room.
        for _ in 0..3 {
            q.put(payload(1024)).await.unwrap();
        }
        let q2 = q.clone();
        let fourth = tokio::spawn(async move { q2.put(payload(1000)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!fourth.is_finished());
        // Taking an item off the queue is not enough: its scan holds the bytes...
        let first = rx.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!fourth.is_finished());
        // ...until it is done with (dropped).
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), fourth)
            .await
            .expect("the fourth put went through")
            .unwrap()
            .unwrap();
        // An item larger than the whole budget still goes, alone.
        while rx.try_recv().is_ok() {}
        tokio::time::timeout(Duration::from_secs(5), q.put(payload(10 * 1024)))
            .await
            .expect("an oversized item is not stuck")
            .unwrap();
        // Archiver tasks carry no bytes yet.
        assert_eq!(
            item_bytes(&ProviderItem::ArchiverTask {
                archiver: "a".into(),
                task: ArchiverResponse::default()
            }),
            0
        );
    }
}
