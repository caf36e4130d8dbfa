//! Run mode: providers feed a bounded queue; consumers scan what arrives.

use std::sync::Arc;

use stoq_core::{
    Delivery, ProviderItem, ProviderQueue, QueuedItem, Request, RequestMeta, RunStats, StoqError,
};
use tokio::sync::{mpsc, watch, Mutex};

use crate::engine::Stoq;

/// What a `run()` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Items taken off the queue and finished.
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
    /// Items still queued when a shutdown stopped the run; they were not
    /// scanned (their receipts resolve to `None`).
    pub abandoned: usize,
    /// Whether the run ended because of a shutdown request.
    pub interrupted: bool,
}

/// Controls a run from outside: live statistics and shutdown.
#[derive(Clone)]
pub struct RunControl {
    stats: Arc<RunStats>,
    stop_tx: Arc<watch::Sender<bool>>,
    stop_rx: watch::Receiver<bool>,
}

impl Default for RunControl {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        RunControl {
            stats: Arc::default(),
            stop_tx: Arc::new(tx),
            stop_rx: rx,
        }
    }
}

impl RunControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// The live counters of the run.
    pub fn stats(&self) -> &Arc<RunStats> {
        &self.stats
    }

    /// Ask the run to stop: providers are stopped at once (no new intake),
    /// scans in progress finish and are saved, queued items are dropped.
    pub fn shutdown(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Whether a shutdown was asked for.
    pub fn is_shutdown(&self) -> bool {
        *self.stop_rx.borrow()
    }

    async fn stopped(mut rx: watch::Receiver<bool>) {
        // An error means every sender is gone: nobody can stop us any more.
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Stoq {
    /// Run every loaded provider until all of them have finished and every
    /// queued item has been scanned. See [`Stoq::run_with`].
    pub async fn run(
        &self,
        request_meta: Option<RequestMeta>,
        add_start_dispatch: &[String],
    ) -> Result<RunSummary, StoqError> {
        self.run_with(request_meta, add_start_dispatch, RunControl::new())
            .await
    }

    /// Run every loaded provider until all of them have finished and every
    /// queued item has been scanned, or until `control` asks for a shutdown.
    ///
    /// A provider that fails is logged and counted; the other providers go
    /// on, and what it queued before failing is still scanned. An item that
    /// fails is logged and counted; its consumer goes on with the next one.
    pub async fn run_with(
        &self,
        request_meta: Option<RequestMeta>,
        add_start_dispatch: &[String],
        control: RunControl,
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
        let (tx, rx) = mpsc::channel::<QueuedItem>(inner.max_queue);
        let rx = Arc::new(Mutex::new(rx));
        let stats = control.stats.clone();
        let start: Arc<Vec<String>> = Arc::new(add_start_dispatch.to_vec());

        let mut consumers = Vec::new();
        for _ in 0..inner.provider_consumers {
            let rx = rx.clone();
            let stoq = self.clone();
            let meta = request_meta.clone();
            let start = start.clone();
            let stop = control.stop_rx.clone();
            let stats = stats.clone();
            consumers.push(tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        biased;
                        _ = RunControl::stopped(stop.clone()) => None,
                        item = async { rx.lock().await.recv().await } => item,
                    };
                    let Some(queued) = next else { break };
                    stoq.consume(queued, meta.clone(), start.clone(), &stats)
                        .await;
                }
            }));
        }

        let budget = ProviderQueue::byte_budget(inner.max_queue_bytes.unwrap_or(0));
        let mut providers: Vec<(String, tokio::task::JoinHandle<_>)> = Vec::new();
        for p in &inner.providers {
            let Some(provider) = p.instance.provider.clone() else {
                continue;
            };
            let mut queue = ProviderQueue::new(tx.clone(), stats.clone());
            if let Some(max) = inner.max_queue_bytes {
                queue = queue.with_byte_budget(&budget, max);
            }
            providers.push((
                p.name.clone(),
                tokio::spawn(async move { provider.ingest(queue).await }),
            ));
        }
        drop(tx);

        let mut provider_errors = 0;
        let mut interrupted = false;
        for (name, handle) in &mut providers {
            let outcome = tokio::select! {
                biased;
                r = &mut *handle => Some(r),
                _ = RunControl::stopped(control.stop_rx.clone()) => None,
            };
            match outcome {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    provider_errors += 1;
                    tracing::error!("{e}");
                }
                Some(Err(e)) => {
                    provider_errors += 1;
                    tracing::error!("provider {name} failed: {e}");
                }
                None => {
                    interrupted = true;
                    break;
                }
            }
        }
        if interrupted {
            tracing::info!("Shutting down: stopping providers, finishing scans in progress");
            for (_, handle) in &providers {
                handle.abort();
            }
        }
        for c in consumers {
            if let Err(e) = c.await {
                tracing::error!("provider consumer failed: {e}");
            }
        }
        // Whatever is still queued was never scanned.
        let mut abandoned = 0;
        {
            let mut rx = rx.lock().await;
            rx.close();
            while rx.try_recv().is_ok() {
                abandoned += 1;
            }
        }
        let count = |c: &std::sync::atomic::AtomicU64| RunStats::get(c) as usize;
        Ok(RunSummary {
            items: count(&stats.done),
            scanned: count(&stats.scanned),
            failed_items: count(&stats.failed),
            unsaved: count(&stats.unsaved),
            provider_errors,
            abandoned,
            interrupted: interrupted || control.is_shutdown(),
        })
    }

    /// Scan one queued item in its own task (so nothing it does can end the
    /// consumer), count the outcome, and send its receipt.
    async fn consume(
        &self,
        queued: QueuedItem,
        request_meta: Option<RequestMeta>,
        start: Arc<Vec<String>>,
        stats: &RunStats,
    ) {
        // `_budget` is held until the scan is done: the bytes stay in use.
        let QueuedItem {
            item,
            receipt,
            budget: _budget,
        } = queued;
        let stoq = self.clone();
        let handle =
            tokio::spawn(async move { stoq.process_item(item, request_meta, &start).await });
        let outcome = match handle.await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("provider item failed: {e}");
                Outcome::failed(format!("scan task failed: {e}"))
            }
        };
        RunStats::add(&stats.done, 1);
        match &outcome.delivery {
            Delivery::Saved { .. } => RunStats::add(&stats.scanned, 1),
            Delivery::Unsaved { .. } => {
                RunStats::add(&stats.scanned, 1);
                RunStats::add(&stats.unsaved, 1);
            }
            Delivery::Failed { .. } => RunStats::add(&stats.failed, 1),
        }
        RunStats::add(&stats.payloads, outcome.payloads);
        RunStats::add(&stats.errors, outcome.errors);
        RunStats::add(&stats.bytes, outcome.bytes);
        if let Some(tx) = receipt {
            let _ = tx.send(outcome.delivery);
        }
    }

    /// Turn an item into a scan and run it.
    async fn process_item(
        &self,
        item: ProviderItem,
        request_meta: Option<RequestMeta>,
        start: &[String],
    ) -> Outcome {
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
                let task_text = stoq_core::to_json_compact(&task.results);
                tracing::debug!(
                    "Provider task received: source_archiver: {archiver}, task_meta: {task_text}"
                );
                let reason = match self.source_get(&archiver, task).await {
                    Ok(Some(p)) => {
                        return self
                            .scan_and_report(
                                Request::new(vec![p], request_meta.unwrap_or_default()),
                                start,
                            )
                            .await
                    }
                    Ok(None) => "no payload returned".to_string(),
                    Err(e) => e,
                };
                tracing::warn!("\"{task_text}\" failed with archiver \"{archiver}\": {reason}");
                return Outcome::failed(reason);
            }
        };
        self.scan_and_report(request, start).await
    }

    async fn scan_and_report(&self, request: Request, start: &[String]) -> Outcome {
        let bytes = request
            .payloads
            .iter()
            .map(|p| p.content.len() as u64)
            .sum();
        let response = self.scan_request(request, start).await;
        let payloads = response.results.len() as u64;
        let errors = response.errors.len() as u64;
        let delivery = if response.failed_connectors.is_empty() {
            Delivery::Saved {
                scan_id: response.scan_id,
            }
        } else {
            Delivery::Unsaved {
                scan_id: response.scan_id,
                failed_connectors: response.failed_connectors,
            }
        };
        Outcome {
            delivery,
            payloads,
            errors,
            bytes,
        }
    }
}

/// The outcome of one item, with what it adds to the run's counters.
struct Outcome {
    delivery: Delivery,
    payloads: u64,
    errors: u64,
    bytes: u64,
}

impl Outcome {
    fn failed(reason: String) -> Self {
        Outcome {
            delivery: Delivery::Failed { reason },
            payloads: 0,
            errors: 0,
            bytes: 0,
        }
    }
}
