//! The library API as an embedding application uses it (the seeds'
//! "Advanced Usage"): a native plugin registered next to the built-ins,
//! options from code, scanning bytes and payloads, saving through a
//! connector, split and reconstruct.

use std::sync::{Arc, Mutex};

use stoq_core::hashing::{hex, sha256};
use stoq_core::serde_json::json;
use stoq_core::{
    async_trait, Connector, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload, PayloadMeta,
    PluginClass, PluginInstance, PluginResult, Request, RequestMeta, StoqResponse, Worker,
    WorkerResponse,
};
use stoq_engine::Stoq;

/// Splits text on blank lines; each part is extracted.
struct Paragraphs {
    min_parts: usize,
}

#[async_trait]
impl Worker for Paragraphs {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let text = String::from_utf8_lossy(&payload.content);
        let parts: Vec<&str> = text.split("\n\n").filter(|p| !p.is_empty()).collect();
        let mut r = WorkerResponse::with_results(json!({ "parts": parts.len() }));
        if parts.len() >= self.min_parts {
            r.extracted = parts
                .iter()
                .map(|p| ExtractedPayload::with_meta(p.as_bytes().to_vec(), PayloadMeta::default()))
                .collect();
        }
        Ok(Some(r))
    }
}

/// Remembers the scan ids it saved.
#[derive(Default)]
struct Collect {
    saved: Mutex<Vec<String>>,
}

#[async_trait]
impl Connector for Collect {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        self.saved.lock().unwrap().push(response.scan_id.clone());
        Ok(())
    }
}

const PARAGRAPH_OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "min_parts",
    "2",
    "extract when at least this many parts",
)];

fn engine(collector: Arc<Collect>) -> Stoq {
    let mut registry = stoq_plugins::builtin_registry();
    registry
        .register(
            ModuleDescriptor::new("paragraphs", &[PluginClass::Worker], |cfg| {
                let min_parts = cfg.number("min_parts", 2usize)?;
                Ok(PluginInstance::new().worker(Arc::new(Paragraphs { min_parts })))
            })
            .options(PARAGRAPH_OPTIONS),
        )
        .unwrap();
    let c = collector.clone();
    registry
        .register(ModuleDescriptor::new(
            "collect",
            &[PluginClass::Connector],
            move |_| Ok(PluginInstance::new().connector(c.clone())),
        ))
        .unwrap();
    let empty = tempfile::tempdir().unwrap();
    Stoq::builder()
        .registry(registry)
        .base_dir(empty.path())
        .always_dispatch(["hash"])
        .connectors(["collect"])
        .plugin_opt("paragraphs", "min_parts", "2")
        .max_recursion(4)
        .build()
        .unwrap()
}

const TEXT: &[u8] = b"first part\n\nsecond part\n\nthird part";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_bytes_with_a_native_plugin() {
    let collector = Arc::new(Collect::default());
    let stoq = engine(collector.clone());
    let meta = PayloadMeta::with_extra("filename", "notes.txt");
    let request_meta = RequestMeta {
        source: Some("embedding test".into()),
        ..RequestMeta::default()
    };
    let response = stoq
        .scan(
            TEXT,
            Some(meta),
            Some(request_meta),
            &["paragraphs".to_string()],
        )
        .await;

    assert!(response.errors.is_empty(), "{:?}", response.errors);
    // Root plus three paragraphs; the paragraphs hold one part each, below
    // min_parts, so nothing more is extracted.
    assert_eq!(response.results.len(), 4);
    let root = &response.results[0];
    assert_eq!(root.payload_meta.extra_data["filename"], "notes.txt");
    assert_eq!(root.plugins_run.workers, ["paragraphs", "hash"]);
    assert_eq!(root.workers["paragraphs"]["parts"], 3);
    assert_eq!(root.workers["hash"]["sha256"], hex(&sha256(TEXT)));
    for (child, text) in
        response.results[1..]
            .iter()
            .zip(["first part", "second part", "third part"])
    {
        assert_eq!(child.extracted_from, std::slice::from_ref(&root.payload_id));
        assert_eq!(child.extracted_by, ["paragraphs"]);
        assert_eq!(child.size, text.len() as u64);
        assert_eq!(
            child.workers["hash"]["sha256"],
            hex(&sha256(text.as_bytes()))
        );
    }
    assert_eq!(
        response.request_meta.source.as_deref(),
        Some("embedding test")
    );
    // The connector saw this scan exactly once.
    assert_eq!(
        *collector.saved.lock().unwrap(),
        std::slice::from_ref(&response.scan_id)
    );

    // One document per worker result: the root has two (paragraphs, hash),
    // each child one (hash; paragraphs was only a start dispatch).
    let split = response.split();
    assert_eq!(split.len(), 2 + 3);
    assert!(split
        .iter()
        .all(|r| r.results.len() == 1 && r.results[0].workers.len() == 1));

    let subs = stoq.reconstruct_all_subresponses(&response).await;
    let sizes: Vec<usize> = subs.iter().map(|s| s.results.len()).collect();
    assert_eq!(sizes, [4, 1, 1, 1]);
    assert!(subs.iter().all(|s| s.scan_id == response.scan_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_payload_load_plugin_and_save_again() {
    let collector = Arc::new(Collect::default());
    let stoq = engine(collector.clone());
    let a = stoq.load_plugin("paragraphs").unwrap();
    let b = stoq.load_plugin("paragraphs").unwrap();
    assert!(Arc::ptr_eq(&a, &b), "a plugin is loaded once");
    assert_eq!(a.instance.classes(), [PluginClass::Worker]);

    let payload = Payload::new(&b"no paragraphs here"[..]);
    let id = payload.id().to_string();
    let mut response = stoq.scan_payload(payload, None, &[]).await;
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.results[0].payload_id, id);
    assert_eq!(response.results[0].plugins_run.workers, ["hash"]);

    stoq.save(&mut response).await;
    let saved = collector.saved.lock().unwrap().clone();
    assert_eq!(saved, [response.scan_id.clone(), response.scan_id.clone()]);
    assert!(response.failed_connectors.is_empty());
}
