//! Behaviours of this implementation that go beyond (or deliberately
//! differ from) the reference, which the ported suite does not cover:
//! panics and time limits around plugin calls, dispatcher and connector
//! errors recorded, deterministic ordering, and the other deviations
//! (entry numbers refer to `docs/COMPATIBILITY.md`).

mod common;

use std::time::{Duration, Instant};

use common::{builder, plugins_dir, stoq};
use serde_json::json;
use stoq_core::{Payload, PayloadResults, StoqError, StoqResponse};
use stoq_engine::Stoq;
use stoq_test_utils::{
    method, names, test_registry, LogCapture, Probe, CONNECTOR_EXCEPTION, GENERIC_CONTENT,
    IMPORTANT_STUFF, TEST_ERROR, TEST_PANIC,
};
use tracing::Level;

fn ran(r: &PayloadResults) -> Vec<&str> {
    r.plugins_run.workers.iter().map(String::as_str).collect()
}

async fn scan(stoq: &Stoq, start: &[&str]) -> StoqResponse {
    stoq.scan(GENERIC_CONTENT, None, None, &names(start)).await
}

/// DEVIATION (E5): a panicking worker is recorded as an error; the scan finishes and other workers' results stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_worker_panic_is_recorded() {
    let stoq = builder(&Probe::new())
        .plugin_opt("simple_worker", "panic", "true")
        .build()
        .unwrap();
    let response = scan(&stoq, &["simple_worker", "multiclass_plugin"]).await;
    let root = &response.results[0];
    assert_eq!(ran(root), vec!["simple_worker", "multiclass_plugin"]);
    assert!(!root.workers.contains_key("simple_worker"));
    assert_eq!(
        root.workers["multiclass_plugin"],
        json!({"valuable_insight": "wow"})
    );
    // multiclass_plugin's extraction was processed.
    assert_eq!(response.results.len(), 2);
    assert_eq!(response.errors.len(), 1);
    let e = &response.errors[0];
    assert_eq!(
        e.error,
        format!("worker:failed to scan: plugin panicked: {TEST_PANIC}")
    );
    assert_eq!(e.plugin_name.as_deref(), Some("simple_worker"));
    assert_eq!(e.payload_id.as_deref(), Some(root.payload_id.as_str()));
}

/// DEVIATION (E4): a worker slower than its `timeout` option is abandoned with an error; the scan goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_worker_timeout_option() {
    let stoq = builder(&Probe::new())
        .plugin_opt("simple_worker", "sleep", "3")
        .plugin_opt("simple_worker", "timeout", "0.2")
        .build()
        .unwrap();
    let started = Instant::now();
    let response = scan(&stoq, &["simple_worker", "dummy_worker"]).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(200), "took {elapsed:?}");
    let root = &response.results[0];
    assert_eq!(ran(root), vec!["simple_worker", "dummy_worker"]);
    assert!(!root.workers.contains_key("simple_worker"));
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.errors.len(), 1);
    let e = &response.errors[0];
    assert!(e.error.contains("timed out"), "{}", e.error);
    assert_eq!(e.error, "worker:failed to scan: timed out after 0.2s");
    assert_eq!(e.plugin_name.as_deref(), Some("simple_worker"));
}

/// DEVIATION (E4, C7): `[core] plugin_timeout` is the default time limit of every plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_core_plugin_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("stoq.cfg");
    std::fs::write(&cfg, "[core]\nplugin_timeout = 0.2\n").unwrap();
    let stoq = Stoq::builder()
        .registry(test_registry(&Probe::new()))
        .config_file(&cfg)
        .plugin_dirs([plugins_dir()])
        .plugin_opt("simple_worker", "sleep", "3")
        .build()
        .unwrap();
    assert_eq!(stoq.plugin_timeout(), Duration::from_millis(200));
    let started = Instant::now();
    let response = scan(&stoq, &["simple_worker"]).await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(response.errors.len(), 1);
    assert_eq!(
        response.errors[0].error,
        "worker:failed to scan: timed out after 0.2s"
    );
}

/// DEVIATION (E4): a plugin's own `timeout` wins over the engine default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_plugin_timeout_overrides_default() {
    let stoq = builder(&Probe::new())
        .plugin_timeout(Duration::from_millis(100))
        .plugin_opt("simple_worker", "sleep", "0.3")
        .plugin_opt("simple_worker", "timeout", "5")
        .build()
        .unwrap();
    let response = scan(&stoq, &["simple_worker"]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert!(response.results[0].workers.contains_key("simple_worker"));
}

/// DEVIATION (E2, E7): errors a dispatcher returns are recorded, with its name and the payload id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_dispatcher_returned_errors_are_recorded() {
    let stoq = builder(&Probe::new())
        .dispatchers(["simple_dispatcher"])
        .plugin_opt("simple_dispatcher", "return_errors", "true")
        .build()
        .unwrap();
    let response = scan(&stoq, &[]).await;
    let root = &response.results[0];
    assert_eq!(ran(root), vec!["dummy_worker"]);
    // Dispatchers run on every payload every round (as in the reference):
    // round 1 dispatches dummy_worker, round 2 finds nothing new to run.
    // DEVIATION (E16): the identical second report is collapsed.
    assert_eq!(response.errors.len(), 1);
    for e in &response.errors {
        assert_eq!(e.error, TEST_ERROR);
        assert_eq!(e.plugin_name.as_deref(), Some("simple_dispatcher"));
        assert_eq!(e.payload_id.as_deref(), Some(root.payload_id.as_str()));
    }
}

/// DEVIATION (E7): a worker's returned error without plugin name or payload id gets them filled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_worker_returned_errors_are_completed() {
    let stoq = builder(&Probe::new())
        .plugin_opt("multiclass_plugin", "return_errors", "true")
        .build()
        .unwrap();
    let response = scan(&stoq, &["multiclass_plugin"]).await;
    assert_eq!(response.errors.len(), 1);
    let e = &response.errors[0];
    assert_eq!(e.error, TEST_ERROR);
    assert_eq!(e.plugin_name.as_deref(), Some("multiclass_plugin"));
    assert_eq!(
        e.payload_id.as_deref(),
        Some(response.results[0].payload_id.as_str())
    );
}

/// DEVIATION (E3): a failing connector is recorded in the response and named in `failed_connectors`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connector_failure_is_recorded() {
    let probe = Probe::new();
    let stoq = builder(&probe)
        .connectors(["dummy_connector"])
        .decorators(["simple_decorator"])
        .plugin_opt("dummy_connector", "raise_exception", "true")
        .build()
        .unwrap();
    let response = scan(&stoq, &["simple_worker"]).await;
    assert_eq!(response.failed_connectors, vec!["dummy_connector"]);
    assert_eq!(response.errors.len(), 1);
    let e = &response.errors[0];
    assert_eq!(
        e.error,
        format!("connector:failed to save: {CONNECTOR_EXCEPTION}")
    );
    assert_eq!(e.plugin_name.as_deref(), Some("dummy_connector"));
    assert_eq!(e.payload_id, None);
    // Nothing else was lost.
    assert_eq!(response.results.len(), 2);
    assert!(response.decorators.contains_key("simple_decorator"));
    assert!(response.results[0].workers.contains_key("simple_worker"));
    // The connector saw the response as it was before its own failure.
    let saved = probe.calls_to("dummy_connector", method::SAVE);
    assert_eq!(saved.len(), 1);
    assert!(saved[0].response.as_ref().unwrap().errors.is_empty());
    assert_eq!(
        saved[0].response.as_ref().unwrap().scan_id,
        response.scan_id
    );
}

/// DEVIATION (E3): in run mode a connector failure is counted in the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_run_counts_unsaved_responses() {
    let stoq = builder(&Probe::new())
        .providers(["simple_provider"])
        .connectors(["dummy_connector"])
        .plugin_opt("dummy_connector", "raise_exception", "true")
        .build()
        .unwrap();
    let summary = stoq.run(None, &[]).await.unwrap();
    assert_eq!(summary.scanned, 1);
    assert_eq!(summary.unsaved, 1);
}

/// The order-independent shape of one result: size, workers run, result keys, extractors, parents.
type Shape = (u64, Vec<String>, Vec<String>, Vec<String>, Vec<usize>);

fn shape(response: &StoqResponse) -> Vec<Shape> {
    let index = |id: &str| {
        response
            .results
            .iter()
            .position(|r| r.payload_id == id)
            .expect("parent in results")
    };
    response
        .results
        .iter()
        .map(|r| {
            (
                r.size,
                r.plugins_run.workers.clone(),
                r.workers.keys().cloned().collect(),
                r.extracted_by.clone(),
                r.extracted_from.iter().map(|id| index(id)).collect(),
            )
        })
        .collect()
}

/// DEVIATION (E1): workers and extracted payloads come in a deterministic order (payload position, then dispatch order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_deterministic_order() {
    let stoq = builder(&Probe::new())
        .always_dispatch([
            "simple_worker",
            "dummy_worker",
            "extract_payload",
            "multiclass_plugin",
        ])
        .plugin_opt(
            "extract_payload",
            "extracted_payload",
            "extracted by extract_payload",
        )
        .build()
        .unwrap();
    let first = scan(&stoq, &[]).await;
    let expected_run = vec![
        "simple_worker",
        "dummy_worker",
        "extract_payload",
        "multiclass_plugin",
    ];
    assert_eq!(first.results.len(), 3);
    for r in &first.results {
        assert_eq!(ran(r), expected_run);
        let keys: Vec<&str> = r.workers.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["simple_worker", "multiclass_plugin"]);
    }
    // simple_worker's extraction comes first, then extract_payload's;
    // multiclass_plugin's equals simple_worker's and is merged into it.
    assert_eq!(
        &first.results[1].extracted_by[..2],
        &["simple_worker", "multiclass_plugin"]
    );
    assert_eq!(first.results[2].extracted_by[0], "extract_payload");
    let reference = shape(&first);
    for _ in 0..5 {
        let again = scan(&stoq, &[]).await;
        assert_eq!(shape(&again), reference);
    }
}

/// DEVIATION (E8): each sub-response lists a payload at most once, even with self references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_reconstruct_lists_each_payload_once() {
    let stoq = builder(&Probe::new())
        .always_dispatch(["simple_worker"])
        .build()
        .unwrap();
    let response = scan(&stoq, &[]).await;
    // The self-referencing dedup example of the spec (reference sizes: [3, 2]).
    let child = &response.results[1];
    assert!(child.extracted_from.contains(&child.payload_id));
    let subs = stoq.reconstruct_all_subresponses(&response).await;
    let sizes: Vec<usize> = subs.iter().map(|s| s.results.len()).collect();
    assert_eq!(sizes, vec![2, 1]);
}

/// DEVIATION (E11): `size` is always the byte length of the content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_payload_size_is_byte_length() {
    assert_eq!(Payload::new("猫").results.size, 3);
    let response = stoq(&Probe::new()).scan("héllo", None, None, &[]).await;
    assert_eq!(response.results[0].size, 6);
}

/// DEVIATION (R2): a failing provider does not stop the others, and what it queued is still scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_failing_provider_does_not_stop_others() {
    let logs = LogCapture::start();
    let probe = Probe::new();
    let stoq = builder(&probe)
        .providers(["simple_provider", "simple_provider2"])
        .connectors(["dummy_connector"])
        .plugin_opt("simple_provider", "raise_after_queueing", "true")
        .build()
        .unwrap();
    let summary = stoq.run(None, &[]).await.unwrap();
    assert_eq!(summary.provider_errors, 1);
    assert_eq!(summary.scanned, 2);
    let saves = probe.calls_to("dummy_connector", method::SAVE);
    assert_eq!(saves.len(), 2);
    for s in &saves {
        assert_eq!(
            s.response.as_ref().unwrap().results[0].size,
            IMPORTANT_STUFF.len() as u64
        );
    }
    assert!(logs
        .messages(Level::ERROR)
        .iter()
        .any(|m| m.starts_with("Test exception, please ignore")));
}

/// DEVIATION (E13): `time` is ISO 8601 with microseconds and a `+00:00` offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_time_is_iso8601_utc() {
    let response = scan(&stoq(&Probe::new()), &[]).await;
    let t = &response.time;
    // e.g. 2026-11-23T00:13:23.874654+00:00
    assert_eq!(t.len(), 32, "{t}");
    assert!(t.ends_with("+00:00"), "{t}");
    assert_eq!(&t[10..11], "T", "{t}");
    assert_eq!(&t[19..20], ".", "{t}");
    assert!(t[..4].chars().all(|c| c.is_ascii_digit()), "{t}");
}

/// DEVIATION (E14): a plugin named for a role it does not implement is refused at build time.
#[test]
fn test_role_mismatch_is_refused() {
    let err = builder(&Probe::new())
        .dispatchers(["dummy_worker"])
        .build()
        .err()
        .expect("a worker is not a dispatcher");
    assert!(matches!(err, StoqError::WrongClass { .. }), "{err:?}");
}

/// The test plugins declare every option the test data sets (nothing is warned about).
#[test]
fn test_test_plugins_declare_their_options() {
    let logs = LogCapture::start();
    let stoq = builder(&Probe::new())
        .plugin_dirs([plugins_dir(), common::plugins2_dir()])
        .build()
        .unwrap();
    let mut loaded = 0;
    for p in stoq.list_plugins() {
        if p.classes.is_empty() {
            continue; // random_class_not_a_plugin
        }
        stoq.load_plugin(&p.name)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        loaded += 1;
    }
    assert_eq!(loaded, 18);
    let warnings = logs.messages(Level::WARN);
    assert!(warnings.is_empty(), "{warnings:?}");
}
