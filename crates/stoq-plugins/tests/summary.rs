//! The `summary` decorator on responses produced by a real engine scan with
//! small test workers standing in for mimetype, yara, peinfo and an
//! unpacker.

use std::sync::Arc;

use stoq_core::serde_json::{json, Value};
use stoq_core::{
    async_trait, Error, ExtractedPayload, ModuleDescriptor, Payload, PayloadMeta, PayloadResults,
    PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Request, RequestMeta,
    StoqResponse, Worker, WorkerResponse,
};
use stoq_engine::Stoq;
use stoq_plugins::summary::{max_depth, SummaryDecorator};

/// A worker defined by a function of the content.
struct FnWorker<F>(F);

#[async_trait]
impl<F> Worker for FnWorker<F>
where
    F: Fn(&[u8]) -> PluginResult<Option<WorkerResponse>> + Send + Sync,
{
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        (self.0)(&payload.content)
    }
}

fn register<F>(registry: &mut stoq_core::Registry, name: &str, f: F)
where
    F: Fn(&[u8]) -> PluginResult<Option<WorkerResponse>> + Send + Sync + 'static,
{
    let worker: Arc<dyn Worker> = Arc::new(FnWorker(f));
    registry
        .register(ModuleDescriptor::new(
            name,
            &[PluginClass::Worker],
            move |_| Ok(PluginInstance::new().worker(worker.clone())),
        ))
        .unwrap();
}

fn results(v: Value) -> PluginResult<Option<WorkerResponse>> {
    Ok(Some(WorkerResponse::with_results(v)))
}

fn extract(parts: &[&[u8]]) -> PluginResult<Option<WorkerResponse>> {
    let mut r = WorkerResponse::with_results(json!({ "extracted": parts.len() }));
    r.extracted = parts
        .iter()
        .map(|p| ExtractedPayload::new(p.to_vec()))
        .collect();
    Ok(Some(r))
}

/// The registry: built-ins plus `mimetype`, `yara`, `peinfo`, `unpack`,
/// `broken`, `echo` (re-extracts its own content) and `pingpong` (A ↔ B).
fn registry() -> stoq_core::Registry {
    // Only the plugin under test (and hash): the test workers below borrow
    // the names of real built-ins (mimetype, yara, peinfo) on purpose.
    let mut r = stoq_core::Registry::new();
    r.register(stoq_plugins::summary::descriptor()).unwrap();
    r.register(stoq_plugins::hash::descriptor()).unwrap();
    register(&mut r, "mimetype", |c| {
        if c.starts_with(b"ZIP:") {
            results(json!({ "mimetype": "application/zip" }))
        } else if c.starts_with(b"TXT:") {
            results(json!({ "mimetype": "text/plain" }))
        } else if c.starts_with(b"EXE:") {
            // No `mimetype` key: the second type_keys path is used.
            results(json!({ "mimetype": "", "label": "application/x-dosexec" }))
        } else {
            Ok(None)
        }
    });
    register(&mut r, "yara", |c| {
        if c.starts_with(b"ZIP:root") {
            results(json!({ "matches": [{ "rule": "r1", "namespace": "default" }] }))
        } else if c.windows(4).any(|w| w == b"evil") {
            results(json!({ "matches": [{ "rule": "r2" }, { "rule": "r1" }, { "norule": 1 }] }))
        } else {
            results(json!({ "matches": [] }))
        }
    });
    register(&mut r, "peinfo", |c| {
        if c.starts_with(b"EXE:") {
            results(json!({
                "is_packed": true,
                "is_exe": true,
                "suspicious": "yes",
                "heuristics": { "encrypted": true, "suspicious": false,
                                "deeper": { "autoexec": true } },
                "sections": [{ "is_suspicious": true }],
            }))
        } else if c.starts_with(b"TXT:") {
            results(json!({ "is_packed": false }))
        } else {
            Ok(None)
        }
    });
    register(&mut r, "unpack", |c| match c {
        b"ZIP:root" => extract(&[b"ZIP:inner", b"TXT:notes"]),
        b"ZIP:inner" => extract(&[b"EXE:evil"]),
        b"EXE:evil" => extract(&[b"BIN:deep"]),
        _ => Ok(None),
    });
    register(&mut r, "broken", |_| {
        Err(PluginError::new("Test exception"))
    });
    register(&mut r, "echo", |c| extract(&[c]));
    register(&mut r, "pingpong", |c| match c {
        b"A" => extract(&[b"B"]),
        b"B" => extract(&[b"A"]),
        _ => Ok(None),
    });
    r
}

fn engine(always: &[&str], max_recursion: usize, summary_opts: &[(&str, &str)]) -> Stoq {
    let empty = tempfile::tempdir().unwrap();
    let mut b = Stoq::builder()
        .registry(registry())
        .base_dir(empty.path())
        .always_dispatch(always.iter().copied())
        .decorators(["summary"])
        .max_recursion(max_recursion);
    for (k, v) in summary_opts {
        b = b.plugin_opt("summary", k, *v);
    }
    b.build().unwrap()
}

fn summary(response: &StoqResponse) -> &Value {
    &response.decorators["summary"]
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_on_a_nested_scan() {
    let stoq = engine(&["mimetype", "yara", "peinfo", "unpack"], 3, &[]);
    let response = stoq
        .scan(
            &b"ZIP:root"[..],
            Some(PayloadMeta::with_extra("filename", "root.zip")),
            None,
            &["broken".to_string()],
        )
        .await;

    // root → ZIP:inner, TXT:notes; ZIP:inner → EXE:evil; EXE:evil →
    // BIN:deep, found in the final round (3) and not scanned.
    let contents: Vec<u64> = response.results.iter().map(|r| r.size).collect();
    assert_eq!(contents, [8, 9, 9, 8, 8]);
    assert_eq!(response.errors.len(), 2, "{:?}", response.errors);

    let s = summary(&response);
    assert_eq!(
        keys(s),
        [
            "payloads",
            "total_bytes",
            "max_depth",
            "errors",
            "errors_by_plugin",
            "workers_run",
            "types",
            "yara_matches",
            "flags",
            "max_recursion_reached",
            "verdict",
        ]
    );
    let expected = json!({
        "payloads": 5,
        "total_bytes": 42,
        "max_depth": 3,
        "errors": 2,
        "errors_by_plugin": { "broken": 1, "core": 1 },
        "workers_run": { "broken": 1, "mimetype": 4, "peinfo": 4, "unpack": 4, "yara": 4 },
        "types": {
            "application/x-dosexec": 1,
            "application/zip": 2,
            "text/plain": 1,
            "unknown": 1,
        },
        "yara_matches": ["r1", "r2"],
        "flags": ["peinfo.heuristics.encrypted", "peinfo.is_packed"],
        "max_recursion_reached": true,
        "verdict": "suspicious",
    });
    assert_eq!(s, &expected);
    // Maps of counts are sorted by name.
    assert_eq!(
        keys(&s["workers_run"]),
        ["broken", "mimetype", "peinfo", "unpack", "yara"]
    );
    assert_eq!(keys(&s["errors_by_plugin"]), ["broken", "core"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_clean_and_errors() {
    let stoq = engine(&["mimetype", "yara", "peinfo"], 3, &[]);
    let clean = stoq.scan(&b"TXT:hello"[..], None, None, &[]).await;
    assert_eq!(
        summary(&clean),
        &json!({
            "payloads": 1,
            "total_bytes": 9,
            "max_depth": 0,
            "errors": 0,
            "errors_by_plugin": {},
            "workers_run": { "mimetype": 1, "peinfo": 1, "yara": 1 },
            "types": { "text/plain": 1 },
            "yara_matches": [],
            "flags": [],
            "max_recursion_reached": false,
            "verdict": "clean",
        })
    );

    let failed = stoq
        .scan(&b"TXT:hello"[..], None, None, &["broken".to_string()])
        .await;
    let s = summary(&failed);
    assert_eq!(s["errors"], 1);
    assert_eq!(s["errors_by_plugin"], json!({ "broken": 1 }));
    assert_eq!(s["max_recursion_reached"], false);
    assert_eq!(s["verdict"], "errors");

    // A YARA hit alone is enough to be suspicious.
    let hit = stoq.scan(&b"BIN: evil"[..], None, None, &[]).await;
    let s = summary(&hit);
    assert_eq!(s["yara_matches"], json!(["r1", "r2"]));
    assert_eq!(s["flags"], json!([]));
    assert_eq!(s["types"], json!({ "unknown": 1 }));
    assert_eq!(s["verdict"], "suspicious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_extraction_dedup_does_not_loop() {
    // `echo` re-extracts the payload's own content: deduplication makes the
    // root its own parent.
    let stoq = engine(&["echo"], 5, &[]);
    let response = stoq.scan(&b"same bytes"[..], None, None, &[]).await;
    assert_eq!(response.results.len(), 1);
    let root = &response.results[0];
    assert_eq!(root.extracted_from, std::slice::from_ref(&root.payload_id));
    assert_eq!(root.extracted_by, ["echo"]);
    let s = summary(&response);
    assert_eq!(s["payloads"], 1);
    assert_eq!(s["max_depth"], 0);
    assert_eq!(s["verdict"], "clean");

    // A ↔ B: B is extracted from A, then A's content from B, so A lists B
    // as a parent too.
    let stoq = engine(&["pingpong"], 5, &[]);
    let response = stoq.scan(&b"A"[..], None, None, &[]).await;
    assert_eq!(response.results.len(), 2);
    let (a, b) = (&response.results[0], &response.results[1]);
    assert_eq!(a.extracted_from, std::slice::from_ref(&b.payload_id));
    assert_eq!(b.extracted_from, std::slice::from_ref(&a.payload_id));
    assert_eq!(summary(&response)["max_depth"], 1);
}

fn result(id: &str, parents: &[&str]) -> PayloadResults {
    let mut r = PayloadResults::new(1, PayloadMeta::default());
    r.payload_id = id.into();
    r.extracted_from = parents.iter().map(|p| p.to_string()).collect();
    r.extracted_by = parents.iter().map(|_| "w".to_string()).collect();
    r
}

#[test]
fn depth_follows_the_longest_chain_and_ignores_loops() {
    // root → a → b → c; a also lists the root again and c (dedup), the root
    // lists b (content seen again deeper down) and itself, and d names a
    // parent that is not in the response.
    let results = vec![
        result("root", &["b", "root"]),
        result("a", &["root", "c"]),
        result("b", &["a"]),
        result("c", &["b", "root"]),
        result("d", &["elsewhere"]),
    ];
    assert_eq!(max_depth(&results), 3);
    assert_eq!(max_depth(&[]), 0);
    // A chain of 10,000 payloads: linear, no recursion.
    let ids: Vec<String> = (0..10_000).map(|i| format!("p{i}")).collect();
    let chain: Vec<PayloadResults> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let parents: Vec<&str> = if i == 0 {
                vec![]
            } else {
                vec![ids[i - 1].as_str()]
            };
            result(id, &parents)
        })
        .collect();
    assert_eq!(max_depth(&chain), 9_999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_change_type_and_flag_keys() {
    let stoq = engine(
        &["mimetype", "peinfo"],
        3,
        &[
            ("type_keys", "peinfo.heuristics.deeper.kind, mimetype.label"),
            ("flag_keys", "is_exe,deeper"),
        ],
    );
    let response = stoq.scan(&b"EXE:x"[..], None, None, &[]).await;
    let s = summary(&response);
    assert_eq!(s["types"], json!({ "application/x-dosexec": 1 }));
    // `deeper` is an object, not `true`; `is_exe` is.
    assert_eq!(s["flags"], json!(["peinfo.is_exe"]));
    assert_eq!(s["verdict"], "suspicious");

    // Direct use, and errors: a `true` outside the flag list, and strings,
    // are not flags; a `core` error is counted.
    let d = SummaryDecorator::new(&["x.y".into()], &["bad".into()]).unwrap();
    let mut request = Request::new(vec![Payload::new(&b"12345"[..])], RequestMeta::default());
    request.errors.push(Error::new(
        "Final worker round (1) reached, unable to process payload",
    ));
    let mut response = StoqResponse::new(request);
    response.results[0].workers.insert(
        "x".into(),
        json!({ "y": "custom/type", "bad": "true", "good": true }),
    );
    let s = d.summarise(&response);
    assert_eq!(s["types"], json!({ "custom/type": 1 }));
    assert_eq!(s["flags"], json!([]));
    assert_eq!(s["errors_by_plugin"], json!({ "core": 1 }));
    assert_eq!(s["max_recursion_reached"], true);
    assert_eq!(s["verdict"], "errors");
}

#[test]
fn bad_type_keys_name_plugin_option_and_value() {
    let build = stoq_plugins::summary::descriptor().build;
    let cfg = PluginConfig::new("summary", [("type_keys", "mimetype..mimetype")]);
    let err = build(&cfg).unwrap_err().to_string();
    assert!(err.contains("summary"), "{err}");
    assert!(err.contains("type_keys"), "{err}");
    assert!(err.contains("mimetype..mimetype"), "{err}");

    // Defaults.
    let none = PluginConfig::new("summary", std::iter::empty::<(&str, &str)>());
    assert_eq!(
        SummaryDecorator::from_config(&none).unwrap(),
        SummaryDecorator::default()
    );

    // Every option is documented.
    let d = stoq_plugins::summary::descriptor();
    let names: Vec<&str> = d.options.iter().map(|o| o.name).collect();
    assert_eq!(names, ["type_keys", "flag_keys"]);
    assert_eq!(
        d.description,
        "Summarise a scan: counts by type, YARA hits, flags, depth, errors"
    );
    assert_eq!(d.classes, [PluginClass::Decorator]);
}
