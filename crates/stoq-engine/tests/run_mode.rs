//! Run mode beyond the reference: delivery receipts, provider-chosen scan
//! ids, shutdown, live counters, the byte bound on queued payloads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stoq_core::{
    async_trait, ArchiverResponse, Connector, Delivery, ModuleDescriptor, Payload, PluginClass,
    PluginError, PluginInstance, PluginResult, Provider, ProviderItem, ProviderQueue, Request,
    RequestMeta, RunStats, StoqResponse, Worker, WorkerResponse,
};
use stoq_engine::{RunControl, Stoq};

/// Queues `count` payloads with receipts, or forever when `count` is None,
/// and records every receipt's outcome.
struct Feeder {
    count: Option<usize>,
    outcomes: Arc<Mutex<Vec<Option<Delivery>>>>,
    with_scan_ids: bool,
}

#[async_trait]
impl Provider for Feeder {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        if let Some(n) = self.count {
            queue.expect(n as u64);
        }
        let mut i = 0usize;
        let mut receipts = Vec::new();
        while self.count.is_none_or(|n| i < n) {
            let mut request = Request::new(
                vec![Payload::new(format!("item {i}").into_bytes())],
                RequestMeta::default(),
            );
            if self.with_scan_ids {
                request = request.with_scan_id(format!("scan-{i}"));
            }
            let receipt = queue.put_tracked(ProviderItem::Request(request)).await?;
            let outcomes = self.outcomes.clone();
            receipts.push(tokio::spawn(async move {
                let d = receipt.wait().await;
                outcomes.lock().unwrap().push(d);
            }));
            i += 1;
        }
        // Queue a task for an archiver that is not loaded: it fails.
        let receipt = queue
            .put_tracked(ProviderItem::ArchiverTask {
                archiver: "nowhere".into(),
                task: ArchiverResponse::default(),
            })
            .await?;
        let d = receipt.wait().await;
        self.outcomes.lock().unwrap().push(d);
        for r in receipts {
            let _ = r.await;
        }
        Ok(())
    }
}

/// Sleeps on every payload (to keep scans in flight).
struct Slow(Duration);

#[async_trait]
impl Worker for Slow {
    async fn scan(&self, _p: &Payload, _r: &Request) -> PluginResult<Option<WorkerResponse>> {
        tokio::time::sleep(self.0).await;
        Ok(Some(WorkerResponse::with_results(
            stoq_core::serde_json::json!({"slept": true}),
        )))
    }
}

/// Records saved scan ids; fails on ids ending in "3" when `fail_3`.
struct Sink {
    saved: Arc<Mutex<Vec<String>>>,
    fail_3: bool,
}

#[async_trait]
impl Connector for Sink {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        if self.fail_3 && response.scan_id.ends_with('3') {
            return Err(PluginError::new("disk full"));
        }
        self.saved.lock().unwrap().push(response.scan_id.clone());
        Ok(())
    }
}

struct Setup {
    stoq: Stoq,
    outcomes: Arc<Mutex<Vec<Option<Delivery>>>>,
    saved: Arc<Mutex<Vec<String>>>,
}

fn setup(count: Option<usize>, sleep: Duration, fail_3: bool) -> Setup {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let saved = Arc::new(Mutex::new(Vec::new()));
    let mut r = stoq_core::Registry::new();
    let o = outcomes.clone();
    r.register(ModuleDescriptor::new(
        "feeder",
        &[PluginClass::Provider],
        move |_| {
            Ok(PluginInstance::new().provider(Arc::new(Feeder {
                count,
                outcomes: o.clone(),
                with_scan_ids: true,
            })))
        },
    ))
    .unwrap();
    r.register(ModuleDescriptor::new(
        "slow",
        &[PluginClass::Worker],
        move |_| Ok(PluginInstance::new().worker(Arc::new(Slow(sleep)))),
    ))
    .unwrap();
    let s = saved.clone();
    r.register(ModuleDescriptor::new(
        "sink",
        &[PluginClass::Connector],
        move |_| {
            Ok(PluginInstance::new().connector(Arc::new(Sink {
                saved: s.clone(),
                fail_3,
            })))
        },
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(r)
        .base_dir(dir.path())
        .providers(["feeder"])
        .connectors(["sink"])
        .always_dispatch(["slow"])
        .provider_consumers(2)
        .max_queue(4)
        .build()
        .unwrap();
    Setup {
        stoq,
        outcomes,
        saved,
    }
}

/// Every item's receipt reports what happened to it; provider-chosen scan
/// ids are the ids of the responses; counters add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_scan_ids_and_counters() {
    let s = setup(Some(6), Duration::from_millis(1), true);
    let control = RunControl::new();
    let summary = s.stoq.run_with(None, &[], control.clone()).await.unwrap();

    assert_eq!(summary.items, 7);
    assert_eq!(summary.scanned, 6);
    assert_eq!(summary.unsaved, 1);
    assert_eq!(summary.failed_items, 1);
    assert_eq!(summary.abandoned, 0);
    assert!(!summary.interrupted);

    let stats = control.stats();
    assert_eq!(RunStats::get(&stats.queued), 7);
    assert_eq!(RunStats::get(&stats.expected), 6);
    assert_eq!(RunStats::get(&stats.payloads), 6);
    assert_eq!(RunStats::get(&stats.bytes), 6 * "item 0".len() as u64);
    // The failed save is one error record.
    assert_eq!(RunStats::get(&stats.errors), 1);

    let outcomes = s.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 7);
    let mut saved_ids: Vec<String> = Vec::new();
    for o in &outcomes {
        match o {
            Some(Delivery::Saved { scan_id }) => saved_ids.push(scan_id.clone()),
            Some(Delivery::Unsaved {
                scan_id,
                failed_connectors,
            }) => {
                assert_eq!(scan_id, "scan-3");
                assert_eq!(failed_connectors, &["sink"]);
            }
            Some(Delivery::Failed { reason }) => assert!(reason.contains("nowhere"), "{reason}"),
            None => panic!("no item was abandoned"),
        }
    }
    saved_ids.sort();
    assert_eq!(
        saved_ids,
        ["scan-0", "scan-1", "scan-2", "scan-4", "scan-5"]
    );
    let mut saved = s.saved.lock().unwrap().clone();
    saved.sort();
    assert_eq!(saved, saved_ids);
}

/// A shutdown stops an endless provider, lets the scans in progress finish
/// and be saved, and drops (and counts) what was still queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_scans_and_counts_the_rest() {
    let s = setup(None, Duration::from_millis(200), false);
    let control = RunControl::new();
    let c = control.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.shutdown();
    });
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        s.stoq.run_with(None, &[], control.clone()),
    )
    .await
    .expect("run ends after a shutdown")
    .unwrap();
    assert!(summary.interrupted);
    assert!(summary.scanned >= 2, "{summary:?}");
    // Everything that was scanned was also saved: nothing half-done.
    assert_eq!(s.saved.lock().unwrap().len(), summary.scanned);
    // max_queue = 4: the queue was full when the run stopped.
    assert!(
        summary.abandoned >= 1 && summary.abandoned <= 4,
        "{summary:?}"
    );
    assert_eq!(
        RunStats::get(&control.stats().queued) as usize,
        summary.items + summary.abandoned,
        "every queued item was either finished or counted as abandoned"
    );
}

/// Queues `count` payloads of `size` bytes, counting those it got in.
struct BigFeeder {
    count: usize,
    size: usize,
    sent: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl Provider for BigFeeder {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        for _ in 0..self.count {
            let payload = Payload::new(vec![0u8; self.size]);
            queue.put(ProviderItem::Payload(Box::new(payload))).await?;
            self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Holds every scan until the test hands out a permit.
struct Gate(Arc<tokio::sync::Semaphore>);

#[async_trait]
impl Worker for Gate {
    async fn scan(&self, _p: &Payload, _r: &Request) -> PluginResult<Option<WorkerResponse>> {
        self.0.acquire().await.expect("gate open").forget();
        Ok(None)
    }
}

/// How many 1 MiB payloads a provider gets in while every scan is held,
/// with `[core] max_queue_bytes` = `max_bytes` (0: no bound); then the
/// scans are let go and the run must finish with all of them scanned.
async fn admitted_while_scans_wait(max_bytes: u64) -> usize {
    const COUNT: usize = 8;
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut r = stoq_core::Registry::new();
    let s = sent.clone();
    r.register(ModuleDescriptor::new(
        "bigfeeder",
        &[PluginClass::Provider],
        move |_| {
            Ok(PluginInstance::new().provider(Arc::new(BigFeeder {
                count: COUNT,
                size: 1 << 20,
                sent: s.clone(),
            })))
        },
    ))
    .unwrap();
    let g = gate.clone();
    r.register(ModuleDescriptor::new(
        "gate",
        &[PluginClass::Worker],
        move |_| Ok(PluginInstance::new().worker(Arc::new(Gate(g.clone())))),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(r)
        .base_dir(dir.path())
        .providers(["bigfeeder"])
        .always_dispatch(["gate"])
        .provider_consumers(2)
        .max_queue(100)
        .max_queue_bytes(max_bytes)
        .build()
        .unwrap();
    let control = RunControl::new();
    let run = tokio::spawn(async move { stoq.run_with(None, &[], control).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admitted = sent.load(std::sync::atomic::Ordering::SeqCst);
    gate.add_permits(COUNT);
    let summary = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run ends once the scans are let go")
        .unwrap()
        .unwrap();
    assert_eq!(summary.scanned, COUNT, "{summary:?}");
    assert_eq!(summary.abandoned, 0, "{summary:?}");
    admitted
}

/// `[core] max_queue_bytes` bounds the payload bytes queued and in scan:
/// with 3 MiB, three 1 MiB payloads get in (two in scan, one queued) and
/// the provider waits for the fourth although `max_queue` has room;
/// without the bound all eight get in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_queue_bytes_holds_the_provider_back() {
    assert_eq!(admitted_while_scans_wait(3 << 20).await, 3);
    assert_eq!(admitted_while_scans_wait(0).await, 8);
}
