//! `es-search` against an Elasticsearch-compatible `_bulk` endpoint
//! ($STOQ_TEST_ES_URL; the test script runs the stand-in in
//! tests/support/search_server.py, which can inject failures per index).

mod common;

use std::time::Duration;

use common::{service, unique};
use stoq_core::serde_json::{self, json, Value};
use stoq_core::{Connector, Map, Payload, PluginConfig, Request, RequestMeta, StoqResponse};
use stoq_plugins_broker::es_search::{EsOptions, EsSearch};

fn http() -> reqwest::Client {
    stoq_plugins_broker::common::install_tls_provider();
    reqwest::Client::new()
}

async fn get(url: &str) -> (u16, Value) {
    let r = http().get(url).send().await.unwrap();
    let s = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (s, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn post(url: &str, body: Value) {
    let r = http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

fn connector(url: &str, index: &str, extra: &[(&str, &str)]) -> EsSearch {
    let mut o = vec![
        ("es_host", url.to_string()),
        ("es_index", index.to_string()),
        ("retry_backoff", "0.05".into()),
        ("max_backoff", "0.2".into()),
    ];
    o.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    EsSearch::new(
        "es-search",
        EsOptions::from_config(&PluginConfig::new("es-search", o)).unwrap(),
    )
    .unwrap()
}

/// A response with two payloads, with 2 and 1 worker results.
fn response() -> StoqResponse {
    let mut r = StoqResponse::new(Request::new(
        vec![Payload::new(&b"a"[..]), Payload::new(&b"b"[..])],
        RequestMeta::default(),
    ));
    let mut w = Map::new();
    w.insert("hash".into(), json!({"sha256": "x"}));
    w.insert("len".into(), json!({"len": 1}));
    r.results[0].workers = w;
    let mut w = Map::new();
    w.insert("hash".into(), json!({"sha256": "y"}));
    r.results[1].workers = w;
    r.time = "2026-03-04T05:06:07.000000+00:00".into();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_document_per_scan_in_a_dated_index() {
    let Some(url) = service("STOQ_TEST_ES_URL", "one_document_per_scan_in_a_dated_index") else {
        return;
    };
    let base = unique("stoq").to_lowercase();
    let c = connector(&url, &format!("{base}-%Y.%m.%d"), &[]);
    let r = response();
    c.save(&r).await.unwrap();
    // Saving the same scan again overwrites; it does not add a copy.
    c.save(&r).await.unwrap();
    let index = format!("{base}-2026.03.04");
    let (s, doc) = get(&format!("{url}/{index}/_doc/{}", r.scan_id)).await;
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["_source"]["scan_id"], json!(r.scan_id));
    assert_eq!(doc["_source"]["results"].as_array().unwrap().len(), 2);
    assert_eq!(get(&format!("{url}/{index}/_count")).await.1["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_mode_indexes_one_document_per_worker() {
    let Some(url) = service(
        "STOQ_TEST_ES_URL",
        "split_mode_indexes_one_document_per_worker",
    ) else {
        return;
    };
    let index = unique("split").to_lowercase();
    let c = connector(
        &url,
        &index,
        &[("index_by_month", "false"), ("split_results", "true")],
    );
    let r = response();
    c.save(&r).await.unwrap();
    assert_eq!(get(&format!("{url}/{index}/_count")).await.1["count"], 3);
    let (_, d) = get(&format!("{url}/{index}/_doc/{}-1", r.scan_id)).await;
    let workers = &d["_source"]["results"][0]["workers"];
    assert_eq!(workers.as_object().unwrap().len(), 1);
    assert_eq!(workers["len"], json!({"len": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_item_failures_are_retried() {
    let Some(url) = service("STOQ_TEST_ES_URL", "request_and_item_failures_are_retried") else {
        return;
    };
    let index = unique("retry").to_lowercase();
    let c = connector(
        &url,
        &index,
        &[("index_by_month", "false"), ("split_results", "true")],
    );
    post(
        &format!("{url}/_test/fail"),
        json!({"index": index, "count": 2, "status": 503}),
    )
    .await;
    post(
        &format!("{url}/_test/fail"),
        json!({"index": index, "count": 1, "status": 429}),
    )
    .await;
    post(
        &format!("{url}/_test/fail"),
        json!({"index": index, "count": 2, "status": 429, "mode": "item"}),
    )
    .await;
    let r = response();
    tokio::time::timeout(Duration::from_secs(30), c.save(&r))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(get(&format!("{url}/{index}/_count")).await.1["count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_that_last_are_reported_not_dropped() {
    let Some(url) = service(
        "STOQ_TEST_ES_URL",
        "failures_that_last_are_reported_not_dropped",
    ) else {
        return;
    };
    // More failures than retries.
    let index = unique("lasting").to_lowercase();
    let c = connector(
        &url,
        &index,
        &[("index_by_month", "false"), ("es_max_retries", "2")],
    );
    post(
        &format!("{url}/_test/fail"),
        json!({"index": index, "count": 5, "status": 503}),
    )
    .await;
    let err = c.save(&response()).await.unwrap_err();
    assert!(
        err.message().contains("not indexed after 3 attempt"),
        "{err}"
    );

    // A document the server rejects for good (a mapping error) is an error
    // at once, not retried and not dropped.
    let index = unique("rejected").to_lowercase();
    let c = connector(&url, &index, &[("index_by_month", "false")]);
    post(
        &format!("{url}/_test/reject"),
        json!({"index": index, "field": "scan_id"}),
    )
    .await;
    let err = c.save(&response()).await.unwrap_err();
    assert!(err.message().contains("rejected"), "{err}");

    // Nothing listening: a connection error, retried, then reported.
    let c = connector(
        "http://127.0.0.1:9",
        "x",
        &[("es_max_retries", "1"), ("es_timeout", "2")],
    );
    assert!(c.save(&response()).await.is_err());
}
