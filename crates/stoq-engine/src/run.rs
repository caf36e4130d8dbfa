//! Run mode: providers feed a bounded queue; consumers scan what arrives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use stoq_core::{ProviderItem, ProviderQueue, Request, RequestMeta, StoqError};
use tokio::sync::{mpsc, Mutex};

use crate::engine::Stoq;
use crate::guard::Failure;

/// What a `run()` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Items taken off the queue.
    pub items: usize,
    /// Requests scanned (and handed to the connectors).
    pub scanned: usize,
    /// Items that could not be turned into a scan (a source archiver failed
    /// or returned nothing), or whose scan task failed.
    pub failed_items: usize,
    /// Responses that at least one connector failed to save.
    pub unsaved: usize,
    /// Providers that ended with an error.
    pub provider_errors: usize,
}

#[derive(Default)]
struct Counters {
    items: AtomicUsize,
    scanned: AtomicUsize,
    failed_items: AtomicUsize,
    unsaved: AtomicUsize,
}

impl Stoq {
    /// Run every loaded provider until all of them have finished and every
    /// queued item has been scanned. A provider that fails is logged and
    /// counted; the other providers go on, and what it queued before failing
    /// is still scanned. An item that fails is logged and counted; its
    /// consumer goes on with the next item.
    pub async fn run(
        &self,
        request_meta: Option<RequestMeta>,
        add_start_dispatch: &[String],
    ) -> Result<RunSummary, StoqError> {
        let inner = &self.inner;
        if inner.providers.is_empty() {
            return Err(StoqError::NoProviders);
        }
        tracing::debug!(
            "Starting provider queue: RequestMeta: {}, start_dispatches: {:?}",
            request_meta
                .as_ref()
                .map(stoq_core::to_json_compact)
                .unwrap_or_else(|| "null".into()),
            add_start_dispatch
        );
        let (tx, rx) = mpsc::channel::<ProviderItem>(inner.max_queue);
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        let start: Arc<Vec<String>> = Arc::new(add_start_dispatch.to_vec());

        let mut consumers = Vec::new();
        for _ in 0..inner.provider_consumers {
            let rx = rx.clone();
            let stoq = self.clone();
            let meta = request_meta.clone();
            let counters = counters.clone();
            let start = start.clone();
            consumers.push(tokio::spawn(async move {
                loop {
                    let item = { rx.lock().await.recv().await };
                    let Some(item) = item else { break };
                    counters.items.fetch_add(1, Ordering::Relaxed);
                    // Each item in its own task: nothing an item does can
                    // end this consumer.
                    let stoq2 = stoq.clone();
                    let meta2 = meta.clone();
                    let start2 = start.clone();
                    let handle =
                        tokio::spawn(async move { stoq2.process_item(item, meta2, &start2).await });
                    match handle.await {
                        Ok(Ok(saved_ok)) => {
                            counters.scanned.fetch_add(1, Ordering::Relaxed);
                            if !saved_ok {
                                counters.unsaved.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(Err(())) => {
                            counters.failed_items.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::error!("provider item failed: {e}");
                            counters.failed_items.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }

        let providers: Vec<_> = inner
            .providers
            .iter()
            .filter_map(|p| {
                let provider = p.instance.provider.clone()?;
                let queue = ProviderQueue::new(tx.clone());
                let name = p.name.clone();
                Some((
                    name,
                    tokio::spawn(async move { provider.ingest(queue).await }),
                ))
            })
            .collect();
        drop(tx);
        let mut provider_errors = 0;
        for (name, handle) in providers {
            let failure = match handle.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Failure::Error(e.to_string())),
                Err(e) => Some(Failure::Panic(e.to_string())),
            };
            if let Some(f) = failure {
                provider_errors += 1;
                match f {
                    Failure::Error(m) => tracing::error!("{m}"),
                    other => tracing::error!("provider {name}: {other}"),
                }
            }
        }
        for c in consumers {
            if let Err(e) = c.await {
                tracing::error!("provider consumer failed: {e}");
            }
        }
        Ok(RunSummary {
            items: counters.items.load(Ordering::Relaxed),
            scanned: counters.scanned.load(Ordering::Relaxed),
            failed_items: counters.failed_items.load(Ordering::Relaxed),
            unsaved: counters.unsaved.load(Ordering::Relaxed),
            provider_errors,
        })
    }

    /// Scan one provider item. `Ok(true)` when scanned and saved by every
    /// connector, `Ok(false)` when a connector failed, `Err` when there was
    /// nothing to scan.
    async fn process_item(
        &self,
        item: ProviderItem,
        request_meta: Option<RequestMeta>,
        start: &[String],
    ) -> Result<bool, ()> {
        let request = match item {
            ProviderItem::Payload(p) => Request::new(vec![*p], request_meta.unwrap_or_default()),
            ProviderItem::Request(mut r) => {
                if r.request_meta == RequestMeta::default() {
                    if let Some(meta) = request_meta {
                        r.request_meta = meta;
                    }
                }
                r
            }
            ProviderItem::ArchiverTask { archiver, task } => {
                tracing::debug!(
                    "Provider task received: source_archiver: {archiver}, task_meta: {}",
                    stoq_core::to_json_compact(&task.results)
                );
                match self.source_get(&archiver, task.clone()).await {
                    Ok(Some(p)) => Request::new(vec![p], request_meta.unwrap_or_default()),
                    Ok(None) => {
                        tracing::warn!(
                            "\"{}\" failed with archiver \"{archiver}\": no payload returned",
                            stoq_core::to_json_compact(&task.results)
                        );
                        return Err(());
                    }
                    Err(e) => {
                        tracing::warn!(
                            "\"{}\" failed with archiver \"{archiver}\": {e}",
                            stoq_core::to_json_compact(&task.results)
                        );
                        return Err(());
                    }
                }
            }
        };
        let response = self.scan_request(request, start).await;
        Ok(response.failed_connectors.is_empty())
    }
}
