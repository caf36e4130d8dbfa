//! `stdin` provider: lines fed through the generic reader.

use std::fs;
use std::sync::Arc;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, ModuleDescriptor, Payload, PluginClass, PluginConfig, PluginInstance,
    PluginResult, Provider, ProviderItem, ProviderQueue, Request, RunStats,
};
use stoq_engine::Stoq;
use stoq_plugins::stdin::{ingest_lines, IngestCounts, StdinMode};
use tokio::sync::mpsc;

/// Feed `input` to the reader and return the counts and the queued items.
async fn feed(input: &[u8], mode: StdinMode) -> (IngestCounts, Vec<ProviderItem>) {
    let (tx, mut rx) = mpsc::channel(64);
    let stats = Arc::new(RunStats::default());
    let queue = ProviderQueue::new(tx, stats.clone());
    let counts = ingest_lines(input, mode, &queue).await.unwrap();
    drop(queue);
    let mut items = Vec::new();
    while let Some(q) = rx.recv().await {
        assert!(q.receipt.is_none());
        items.push(q.item);
    }
    assert_eq!(RunStats::get(&stats.queued), items.len() as u64);
    (counts, items)
}

#[tokio::test]
async fn paths_mode_queues_readable_files_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good file.txt");
    fs::write(&good, b"The quick brown fox").unwrap();
    let crlf = dir.path().join("crlf.bin");
    fs::write(&crlf, b"\x00\x01").unwrap();
    let missing = dir.path().join("missing.txt");
    let input = format!(
        "{}\n\n   \n{}\n{}\r\n",
        good.display(),
        missing.display(),
        crlf.display()
    );
    let (counts, items) = feed(input.as_bytes(), StdinMode::Paths).await;
    assert_eq!(
        counts,
        IngestCounts {
            queued: 2,
            skipped: 1
        }
    );
    let payloads: Vec<Payload> = items
        .into_iter()
        .map(|i| match i {
            ProviderItem::Payload(p) => *p,
            other => panic!("expected a payload, got {other:?}"),
        })
        .collect();
    assert_eq!(&payloads[0].content[..], b"The quick brown fox");
    let dir_text = std::path::absolute(dir.path()).unwrap();
    assert_eq!(
        Value::Object(payloads[0].meta().extra_data.clone()),
        json!({"filename": "good file.txt", "source_dir": dir_text.to_string_lossy()})
    );
    assert_eq!(&payloads[1].content[..], b"\x00\x01");
    assert_eq!(payloads[1].meta().extra_data["filename"], json!("crlf.bin"));
}

#[tokio::test]
async fn tasks_mode_queues_valid_tasks_and_skips_bad_lines() {
    let input = concat!(
        "{\"archiver\": \"filedir\", \"task\": {\"path\": \"/x/y\", \"sha256\": \"ab\"}}\n",
        "{\"archiver\": \"filedir\", \"task\": \n",
        "\n",
        "[\"not\", \"an object\"]\n",
        "{\"archiver\": \"s3\", \"task\": {\"key\": 1}}", // no final newline
    );
    let (counts, items) = feed(input.as_bytes(), StdinMode::Tasks).await;
    assert_eq!(
        counts,
        IngestCounts {
            queued: 2,
            skipped: 2
        }
    );
    let tasks: Vec<(String, Value)> = items
        .into_iter()
        .map(|i| match i {
            ProviderItem::ArchiverTask { archiver, task } => {
                assert!(task.errors.is_empty());
                (archiver, task.results.unwrap())
            }
            other => panic!("expected a task, got {other:?}"),
        })
        .collect();
    assert_eq!(
        tasks,
        [
            (
                "filedir".to_string(),
                json!({"path": "/x/y", "sha256": "ab"})
            ),
            ("s3".to_string(), json!({"key": 1})),
        ]
    );
}

#[tokio::test]
async fn empty_input_queues_nothing() {
    let (counts, items) = feed(b"", StdinMode::Paths).await;
    assert_eq!(counts, IngestCounts::default());
    assert!(items.is_empty());
}

/// A provider that runs the stdin reader over fixed bytes.
struct FakeStdin(Vec<u8>);

#[async_trait]
impl Provider for FakeStdin {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        ingest_lines(&self.0[..], StdinMode::Tasks, &queue)
            .await
            .map(|_| ())
    }
}

/// Tasks mode end to end: a payload archived by filedir is fetched back
/// through the task line and scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_reach_the_source_archiver() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let results = dir.path().join("results");
    let cfg = PluginConfig::new("filedir", [("archive_dir", archive.to_string_lossy())]);
    let filedir = (stoq_plugins::filedir::descriptor().build)(&cfg).unwrap();
    let payload = Payload::new(&b"The quick brown fox"[..]);
    let locator = filedir
        .archiver
        .unwrap()
        .archive(&payload, &Request::default())
        .await
        .unwrap()
        .unwrap()
        .results
        .unwrap();
    let line = format!(
        "{}\nnot json\n",
        json!({"archiver": "filedir", "task": locator})
    );

    let mut registry = stoq_plugins::builtin_registry();
    registry
        .register(ModuleDescriptor::new(
            "fake_stdin",
            &[PluginClass::Provider],
            move |_| {
                Ok(PluginInstance::new().provider(Arc::new(FakeStdin(line.clone().into_bytes()))))
            },
        ))
        .unwrap();
    let stoq = Stoq::builder()
        .registry(registry)
        .base_dir(dir.path())
        .providers(["fake_stdin"])
        .source_archivers(["filedir"])
        .connectors(["filedir"])
        .always_dispatch(["hash"])
        .plugin_opt("filedir", "archive_dir", archive.to_string_lossy())
        .plugin_opt("filedir", "results_dir", results.to_string_lossy())
        .plugin_opt("filedir", "jsonl", "true")
        .build()
        .unwrap();
    let summary = stoq.run(None, &[]).await.unwrap();
    assert_eq!((summary.items, summary.scanned), (1, 1), "{summary:?}");
    let text = fs::read_to_string(results.join("results.jsonl")).unwrap();
    let v: Value = serde_json::from_str(text.trim_end()).unwrap();
    let r = &v["results"][0];
    assert_eq!(
        r["workers"]["hash"]["sha256"],
        json!("5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9")
    );
    assert_eq!(r["payload_meta"]["extra_data"], locator);
}
