//! The `jinja` decorator + connector on responses from real engine scans.

use std::path::Path;
use std::sync::Arc;

use stoq_core::hashing::{hex, sha256};
use stoq_core::serde_json::json;
use stoq_core::{
    async_trait, Error, ExtractedPayload, ModuleDescriptor, Payload, PayloadMeta, PayloadResults,
    PluginClass, PluginConfig, PluginInstance, PluginResult, Request, RequestMeta, StoqResponse,
    Worker, WorkerResponse,
};
use stoq_engine::{Stoq, StoqBuilder};
use stoq_plugins::jinja::JinjaPlugin;

/// Extracts every line of a payload holding several lines.
struct Lines;

#[async_trait]
impl Worker for Lines {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let text = String::from_utf8_lossy(&payload.content).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() < 2 {
            return Ok(None);
        }
        let mut r = WorkerResponse::with_results(json!({ "lines": lines.len() }));
        r.extracted = lines
            .iter()
            .map(|l| {
                ExtractedPayload::with_meta(
                    l.as_bytes().to_vec(),
                    PayloadMeta::with_extra("line", *l),
                )
            })
            .collect();
        Ok(Some(r))
    }
}

fn builder(base: &Path) -> StoqBuilder {
    let mut registry = stoq_plugins::builtin_registry();
    registry
        .register(ModuleDescriptor::new(
            "lines",
            &[PluginClass::Worker],
            |_| Ok(PluginInstance::new().worker(Arc::new(Lines))),
        ))
        .unwrap();
    Stoq::builder()
        .registry(registry)
        .base_dir(base)
        .always_dispatch(["hash"])
        .max_recursion(3)
}

const TEXT: &[u8] = b"first line\nsecond line";

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn build_err(cfg: &PluginConfig) -> String {
    match (stoq_plugins::jinja::descriptor().build)(cfg) {
        Ok(_) => panic!("built"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_template_renders_ids_and_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sample.txt");
    std::fs::write(&file, TEXT).unwrap();
    let content = std::fs::read(&file).unwrap();
    let stoq = builder(tmp.path())
        .decorators(["jinja", "summary"])
        .build()
        .unwrap();
    let response = stoq
        .scan(
            content.clone(),
            Some(PayloadMeta::with_extra("filename", "sample.txt")),
            None,
            &["lines".to_string()],
        )
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(response.results.len(), 3);

    let text = response.decorators["jinja"].as_str().unwrap();
    println!("{text}");
    assert!(text.starts_with("stoQ scan report\n"), "{text}");
    assert!(text.contains(&format!("Scan ID:   {}\n", response.scan_id)));
    assert!(text.contains(&format!("Time:      {}\n", response.time)));
    for (i, r) in response.results.iter().enumerate() {
        assert!(
            text.contains(&format!("Payload {}/3: {}\n", i + 1, r.payload_id)),
            "{text}"
        );
    }
    let root = &response.results[0];
    assert!(text.contains(&format!("    sha256: {}\n", hex(&sha256(&content)))));
    assert!(text.contains("  Filename:       sample.txt\n"));
    assert!(text.contains(&format!(
        "  Extracted from: {}\n  Extracted by:   lines\n",
        root.payload_id
    )));
    assert!(text.contains("  Meta line: first line\n"));
    assert!(text.contains("Payloads:  3 (43 bytes)\n"));
    assert!(text.ends_with("Errors (0)\n  (none)"), "{text:?}");
    // Decorators run together, so this one does not see `summary`.
    assert!(!text.contains("Decorators"));
}

#[test]
fn default_template_exact_output() {
    let mut request = Request::new(
        vec![Payload::new(&b"The quick brown fox"[..])
            .with_id("11111111-1111-4111-8111-111111111111")],
        RequestMeta {
            source: Some("unit".into()),
            ..RequestMeta::default()
        },
    );
    request.payloads[0]
        .results
        .payload_meta
        .extra_data
        .insert("filename".into(), json!("fox.txt"));
    request.errors.push(
        Error::new("worker:failed to scan: boom")
            .plugin("broken")
            .payload("11111111-1111-4111-8111-111111111111"),
    );
    request.errors.push(Error::new(
        "Final worker round (1) reached, unable to process payload",
    ));
    let mut response = StoqResponse::new(request.with_scan_id("scan-1"));
    response.time = "2026-01-02T03:04:05.000006+00:00".into();
    let r: &mut PayloadResults = &mut response.results[0];
    r.plugins_run.workers = vec!["hash".into(), "broken".into()];
    r.workers.insert(
        "hash".into(),
        json!({ "sha256": "5cac4f98", "md5": "a2004f37", "tags": ["a", "b"], "empty": {} }),
    );
    response
        .decorators
        .insert("summary".into(), json!({ "verdict": "errors" }));
    response
        .decorators
        .insert("jinja".into(), json!("(own output, not shown)"));

    let plugin = JinjaPlugin::from_config(&PluginConfig::new(
        "jinja",
        std::iter::empty::<(&str, &str)>(),
    ))
    .unwrap();
    let text = plugin.render(&response).unwrap();
    let expected = "\
stoQ scan report
================
Scan ID:   scan-1
Time:      2026-01-02T03:04:05.000006+00:00
Source:    unit
Archiving: yes
Payloads:  1 (19 bytes)
Errors:    2

------------------------------------------------------------------------
Payload 1/1: 11111111-1111-4111-8111-111111111111
  Size:           19 bytes
  Filename:       fox.txt
  Extracted from: -
  Extracted by:   -
  Workers run:    hash, broken
  Archivers run:  -
  [hash]
    sha256: 5cac4f98
    md5: a2004f37
    tags: [
        \"a\",
        \"b\"
    ]
    empty: {}

------------------------------------------------------------------------
Decorators
  [summary]
    {
        \"verdict\": \"errors\"
    }

------------------------------------------------------------------------
Errors (2)
  - [broken, payload 11111111-1111-4111-8111-111111111111] worker:failed to scan: boom
  - [core] Final worker round (1) reached, unable to process payload";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn syntax_error_fails_the_build_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let tpl = tmp.path().join("bad.tpl");
    write(
        &tpl,
        "Scan {{ scan_id }}\nfine\n{% for x in %}\n{% endfor %}\n",
    );
    let cfg = PluginConfig::new("jinja", [("template", tpl.to_str().unwrap())]);
    let err = build_err(&cfg);
    assert!(err.contains("plugin jinja"), "{err}");
    assert!(err.contains(tpl.to_str().unwrap()), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("syntax error"), "{err}");

    // Through the engine: the plugin does not load.
    let err = builder(tmp.path())
        .decorators(["jinja"])
        .plugin_opt("jinja", "template", tpl.to_str().unwrap())
        .build()
        .err()
        .expect("build fails")
        .to_string();
    assert!(err.contains("line 3") && err.contains("bad.tpl"), "{err}");

    // A missing file names the file.
    let cfg = PluginConfig::new("jinja", [("template", "/nonexistent/x.tpl")]);
    let err = build_err(&cfg);
    assert!(
        err.contains("cannot read template /nonexistent/x.tpl"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_template_renders_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let tpl = tmp.path().join("custom.tpl");
    write(
        &tpl,
        "{{ scan_id }} {{ results|length }} {{ time == response.time }} {{ plugin_name }}\n\
         {% for r in results %}\n\
         {{ loop.index }}. {{ r.size }} {{ r.workers.hash.md5 }} {{ r.payload_meta.extra_data.get(\"line\", \"-\") }} {{ r.extracted_by|join(\",\") or \"root\" }}\n\
         {% endfor %}\n\
         keys: {{ results[0].workers.hash|list|join(\",\") }}\n\
         keys(): {{ results[0].workers.hash.keys()|join(\",\") }}\n\
         values: {{ results[0].workers.lines.values()|join(\",\") }}\n\
         {% for k, v in request_meta.extra_data.items() %}\n\
         {{ k }}={{ v }}\n\
         {% endfor %}\n\
         {{ request_meta|tojson }}\n\
         {{ results[0].workers.lines|pretty_json }}\n",
    );
    let stoq = builder(tmp.path())
        .decorators(["jinja"])
        .plugin_opt("jinja", "template", tpl.to_str().unwrap())
        .build()
        .unwrap();
    let request_meta = RequestMeta {
        source: Some("<test>".into()),
        extra_data: [("z".to_string(), json!(1)), ("a".to_string(), json!("x"))]
            .into_iter()
            .collect(),
        ..RequestMeta::default()
    };
    let response = stoq
        .scan(TEXT, None, Some(request_meta), &["lines".to_string()])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let md5 = |r: &PayloadResults| r.workers["hash"]["md5"].as_str().unwrap().to_string();
    let r = &response.results;
    let expected = format!(
        "{} 3 True jinja\n\
         1. 22 {} - root\n\
         2. 10 {} first line lines\n\
         3. 11 {} second line lines\n\
         keys: sha256,md5,sha1,sha512\n\
         keys(): sha256,md5,sha1,sha512\n\
         values: 2\n\
         z=1\n\
         a=x\n\
         {{\"archive_payloads\":true,\"source\":\"\\u003ctest\\u003e\",\"extra_data\":{{\"z\":1,\"a\":\"x\"}}}}\n\
         {{\n    \"lines\": 2\n}}",
        response.scan_id,
        md5(&r[0]),
        md5(&r[1]),
        md5(&r[2]),
    );
    assert_eq!(response.decorators["jinja"], json!(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_writes_scan_id_txt() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reports/nested");
    // Decorator and connector at once: one instance, two roles.
    let stoq = builder(tmp.path())
        .decorators(["jinja"])
        .connectors(["jinja"])
        .plugin_opt("jinja", "output_dir", out.to_str().unwrap())
        .build()
        .unwrap();
    let response = stoq.scan(TEXT, None, None, &["lines".to_string()]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert!(response.failed_connectors.is_empty());

    let files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, [format!("{}.txt", response.scan_id)]);
    let written = std::fs::read_to_string(out.join(&files[0])).unwrap();
    // The connector sees the decorated response; the default template
    // leaves out the plugin's own decorator entry, so both texts agree.
    let decorated = response.decorators["jinja"].as_str().unwrap();
    assert_eq!(written, format!("{decorated}\n"));
    for r in &response.results {
        assert!(written.contains(&r.payload_id));
    }

    // Saving again replaces the file atomically.
    let mut again = response.clone();
    stoq.save(&mut again).await;
    assert!(again.failed_connectors.is_empty());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_relative_template_with_include() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins/report");
    std::fs::create_dir_all(&plugins).unwrap();
    write(
        &plugins.join("report.stoq"),
        "[Core]\nName = report\nModule = jinja\n\n[options]\ntemplate = report.tpl\n",
    );
    write(
        &plugins.join("report.tpl"),
        "{{ plugin_name }}: {% include \"part.tpl\" %}",
    );
    write(&plugins.join("part.tpl"), "{{ results|length }} payload(s)");
    let stoq = builder(tmp.path())
        .plugin_dirs([tmp.path().join("plugins")])
        .decorators(["report"])
        .build()
        .unwrap();
    let response = stoq.scan(&b"one"[..], None, None, &[]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(response.decorators["report"], "report: 1 payload(s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_error_is_a_decorator_error() {
    let tmp = tempfile::tempdir().unwrap();
    let tpl = tmp.path().join("render.tpl");
    write(&tpl, "ok\n{{ scan_id + 1 }}\n");
    let stoq = builder(tmp.path())
        .decorators(["jinja"])
        .plugin_opt("jinja", "template", tpl.to_str().unwrap())
        .build()
        .unwrap();
    let response = stoq.scan(&b"one"[..], None, None, &[]).await;
    assert!(!response.decorators.contains_key("jinja"));
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    let e = &response.errors[0];
    assert_eq!(e.plugin_name.as_deref(), Some("jinja"));
    assert!(e.error.contains("cannot render template"), "{}", e.error);
    assert!(e.error.contains("render.tpl: line 2"), "{}", e.error);
    assert!(e.error.contains("invalid operation"), "{}", e.error);
}

#[test]
fn descriptor_documents_its_options() {
    let d = stoq_plugins::jinja::descriptor();
    let names: Vec<&str> = d.options.iter().map(|o| o.name).collect();
    assert_eq!(names, ["template", "output_dir"]);
    assert_eq!(d.classes, [PluginClass::Decorator, PluginClass::Connector]);
}
