//! Embedding stoQ: define a native worker plugin, register it next to the
//! built-in ones, and scan a file with it.
//!
//! ```text
//! cargo run -p stoq-engine --example custom_worker -- path/to/file
//! ```
//!
//! The `line_count` worker below counts lines and, for text payloads with
//! more than one paragraph, extracts each paragraph as a new payload, which
//! stoQ then scans again (every payload also goes through `hash`).

use std::sync::Arc;

use stoq_core::serde_json::json;
use stoq_core::{
    async_trait, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload, PayloadMeta, PluginClass,
    PluginInstance, PluginResult, Request, RequestMeta, Worker, WorkerResponse,
};
use stoq_engine::Stoq;

/// Counts lines; optionally splits text into paragraphs.
struct LineCount {
    split_paragraphs: bool,
}

#[async_trait]
impl Worker for LineCount {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let data = &payload.content;
        let lines = data.iter().filter(|b| **b == b'\n').count();
        let mut response = WorkerResponse::with_results(json!({ "lines": lines }));
        if self.split_paragraphs {
            if let Ok(text) = std::str::from_utf8(data) {
                let paragraphs: Vec<&str> = text
                    .split("\n\n")
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect();
                if paragraphs.len() > 1 {
                    for (i, p) in paragraphs.iter().enumerate() {
                        let meta = PayloadMeta::with_extra("paragraph", i);
                        response
                            .extracted
                            .push(ExtractedPayload::with_meta(p.as_bytes().to_vec(), meta));
                    }
                }
            }
        }
        Ok(Some(response))
    }
}

const OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "split_paragraphs",
    "true",
    "extract each paragraph of a text payload",
)];

fn line_count_module() -> ModuleDescriptor {
    ModuleDescriptor::new("line_count", &[PluginClass::Worker], |cfg| {
        let split_paragraphs = cfg.bool("split_paragraphs", true)?;
        Ok(PluginInstance::new().worker(Arc::new(LineCount { split_paragraphs })))
    })
    .version("1.0")
    .description("Count lines and split text into paragraphs")
    .options(OPTIONS)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/custom_worker.rs").to_string()
    });

    // The built-in plugins plus ours.
    let mut registry = stoq_plugins::builtin_registry();
    registry.register(line_count_module())?;

    let stoq = Stoq::builder()
        .registry(registry)
        .base_dir(std::env::temp_dir()) // no stoq.cfg, no plugin directory
        .always_dispatch(["hash"])
        .max_recursion(3)
        .plugin_opt("line_count", "split_paragraphs", "true")
        .build()?;

    // Plugins can also be loaded by name; the instance is cached.
    let plugin = stoq.load_plugin("line_count")?;
    println!("loaded {} as {:?}", plugin.name, plugin.instance.classes());

    let content = std::fs::read(&path)?;
    let name = std::path::Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let meta = PayloadMeta::with_extra("filename", name);
    let request_meta = RequestMeta {
        source: Some("custom_worker example".into()),
        ..RequestMeta::default()
    };
    let payload = Payload::with_meta(content, meta);
    let mut response = stoq
        .scan_payload(payload, Some(request_meta), &["line_count".to_string()])
        .await;

    println!(
        "{} payloads, {} errors, scan_id {}",
        response.results.len(),
        response.errors.len(),
        response.scan_id
    );
    if let Some(first) = response.results.first() {
        println!("root: {}", stoq_core::to_json_pretty(&first.workers));
    }
    // One document per (payload, worker), as a search-engine connector
    // would index them; one response per extracted subtree.
    println!("split into {} documents", response.split().len());
    let subs = stoq.reconstruct_all_subresponses(&response).await;
    println!("{} subresponses", subs.len());

    // Saving goes through the loaded connectors (none here).
    stoq.save(&mut response).await;
    Ok(())
}
