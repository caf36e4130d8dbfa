//! Helpers shared by the broker plugin tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use stoq_core::serde_json::json;
use stoq_core::{
    async_trait, Connector, ModuleDescriptor, Payload, PluginClass, PluginError, PluginInstance,
    PluginResult, Request, StoqResponse, Worker, WorkerResponse,
};
use stoq_engine::Stoq;

/// The value of a test-service variable, or `None` after printing why the
/// test skips.
pub fn service(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => {
            eprintln!(
                "SKIP {test}: {var} is not set (run ./scripts/test.sh, which starts the test services)"
            );
            None
        }
    }
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        stoq_core::new_id().split('-').next().unwrap_or("x")
    )
}

/// A worker that reports the payload's length and first bytes.
pub struct Len;

#[async_trait]
impl Worker for Len {
    async fn scan(&self, payload: &Payload, _r: &Request) -> PluginResult<Option<WorkerResponse>> {
        Ok(Some(WorkerResponse::with_results(json!({
            "len": payload.content.len(),
            "text": String::from_utf8_lossy(&payload.content[..payload.content.len().min(40)]),
        }))))
    }
}

/// A connector that fails its first `fail_first` saves, then records.
#[derive(Default)]
pub struct Flaky {
    pub fail_first: usize,
    pub calls: AtomicUsize,
    pub saved: Mutex<Vec<StoqResponse>>,
}

#[async_trait]
impl Connector for Flaky {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            return Err(PluginError::new(format!("flaky: failure {}", n + 1)));
        }
        self.saved.lock().unwrap().push(response.clone());
        Ok(())
    }
}

/// The broker registry plus `len` and a `flaky` connector.
pub fn registry(flaky: Arc<Flaky>) -> stoq_core::Registry {
    let mut r = stoq_plugins_broker::registry();
    r.register(ModuleDescriptor::new("len", &[PluginClass::Worker], |_| {
        Ok(PluginInstance::new().worker(Arc::new(Len)))
    }))
    .unwrap();
    r.register(ModuleDescriptor::new(
        "flaky",
        &[PluginClass::Connector],
        move |_| Ok(PluginInstance::new().connector(flaky.clone())),
    ))
    .unwrap();
    r
}

/// An engine with `opts` as (plugin, key, value).
pub fn engine(
    flaky: Arc<Flaky>,
    providers: &[&str],
    connectors: &[&str],
    source_archivers: &[&str],
    opts: &[(&str, &str, String)],
) -> Stoq {
    let empty = tempfile::tempdir().unwrap();
    let mut b = Stoq::builder()
        .registry(registry(flaky))
        .base_dir(empty.path())
        .always_dispatch(["len"])
        .providers(providers.iter().copied())
        .connectors(connectors.iter().copied())
        .source_archivers(source_archivers.iter().copied())
        .provider_consumers(4);
    for (p, k, v) in opts {
        b = b.plugin_opt(p, k, v.clone());
    }
    b.build().unwrap()
}

/// Run `stoq` in run mode until its providers end (at most 60 s).
pub async fn run_to_end(stoq: &Stoq) -> stoq_engine::RunSummary {
    tokio::time::timeout(std::time::Duration::from_secs(60), stoq.run(None, &[]))
        .await
        .expect("run finished")
        .unwrap()
}
