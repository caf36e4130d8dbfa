//! `s3` against an S3-compatible server ($STOQ_TEST_S3_ENDPOINT; the test
//! script runs moto's server).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{engine, service, unique, Flaky};
use stoq_core::serde_json::{self, json, Value};
use stoq_core::{
    Archiver, ArchiverResponse, Bytes, Connector, Payload, PluginConfig, Request, RequestMeta,
};
use stoq_plugins_broker::s3::{S3Options, S3};
use stoq_plugins_broker::sigv4::sha256_hex;

fn plugin(endpoint: &str, archive: &str, results: &str) -> S3 {
    let cfg = PluginConfig::new(
        "s3",
        [
            ("endpoint", endpoint),
            ("region", "eu-west-1"),
            ("access_key", "testing"),
            ("secret_key", "testing"),
            ("archive_bucket", archive),
            ("connector_bucket", results),
            ("archive_prefix", "payloads/"),
            ("create_buckets", "true"),
        ],
    );
    S3::new("s3", S3Options::from_config(&cfg).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_by_sha256_once_and_get_it_back() {
    let Some(ep) = service(
        "STOQ_TEST_S3_ENDPOINT",
        "archive_by_sha256_once_and_get_it_back",
    ) else {
        return;
    };
    let bucket = unique("arch").to_lowercase();
    let s3 = plugin(&ep, &bucket, &bucket);
    let payload = Payload::new(&b"some payload \x00\xff bytes"[..]);
    let request = Request::new(vec![payload.clone()], RequestMeta::default());
    let sha = stoq_core::hashing::hex(&payload.sha256());
    let locator = s3.archive(&payload, &request).await.unwrap().unwrap();
    assert_eq!(
        locator.results,
        Some(json!({"bucket": bucket, "key": format!("payloads/{sha}"), "sha256": sha}))
    );
    let back = s3.get(&locator).await.unwrap().unwrap();
    assert_eq!(back.content, payload.content);
    assert_eq!(back.meta().extra_data["sha256"], json!(sha));

    // An object that already exists under the key is not uploaded again:
    // replace it behind the plugin's back, archive again, and it stays.
    let key = format!("payloads/{sha}");
    let other = Bytes::from_static(b"placed by the test");
    s3.client()
        .put(
            &bucket,
            &key,
            other.clone(),
            sha256_hex(&other),
            "application/octet-stream",
        )
        .await
        .unwrap();
    s3.archive(&payload, &request).await.unwrap();
    assert_eq!(s3.client().get(&bucket, &key).await.unwrap(), Some(other));
    // ... and get notices the content does not match the locator's hash.
    let err = s3.get(&locator).await.unwrap_err();
    assert!(err.message().contains("expects"), "{err}");

    // The reference's locator shape ({bucket, path}) works too.
    let task = ArchiverResponse::with_results(json!({"bucket": bucket, "path": key}));
    assert_eq!(
        &s3.get(&task).await.unwrap().unwrap().content[..],
        b"placed by the test"
    );
    let missing = ArchiverResponse::with_results(json!({"bucket": bucket, "key": "nope"}));
    assert!(s3.get(&missing).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_stores_each_result_under_its_scan_id() {
    let Some(ep) = service(
        "STOQ_TEST_S3_ENDPOINT",
        "connector_stores_each_result_under_its_scan_id",
    ) else {
        return;
    };
    let bucket = unique("res").to_lowercase();
    let s3 = plugin(&ep, &bucket, &bucket);
    let response = stoq_core::StoqResponse::new(Request::new(
        vec![Payload::new(&b"x"[..])],
        RequestMeta::default(),
    ));
    s3.save(&response).await.unwrap();
    let body = s3
        .client()
        .get(&bucket, &response.scan_id)
        .await
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["scan_id"], json!(response.scan_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_or_bucket_fail_loudly() {
    let Some(ep) = service(
        "STOQ_TEST_S3_ENDPOINT",
        "wrong_credentials_or_bucket_fail_loudly",
    ) else {
        return;
    };
    let cfg = PluginConfig::new(
        "s3",
        [
            ("endpoint", ep.as_str()),
            ("access_key", "testing"),
            ("secret_key", "testing"),
            ("archive_bucket", "no-such-bucket-here"),
            ("retries", "1"),
        ],
    );
    let s3 = S3::new("s3", S3Options::from_config(&cfg).unwrap()).unwrap();
    let p = Payload::new(&b"x"[..]);
    let r = Request::new(vec![p.clone()], RequestMeta::default());
    let err = s3.archive(&p, &r).await.unwrap_err();
    assert!(err.message().contains("s3:"), "{err}");
}

/// Through the engine: payloads archived to S3 by one run, then fetched
/// back as archiver tasks by the source archiver of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dest_then_source_archiver_through_the_engine() {
    let Some(ep) = service(
        "STOQ_TEST_S3_ENDPOINT",
        "dest_then_source_archiver_through_the_engine",
    ) else {
        return;
    };
    let bucket = unique("eng").to_lowercase();
    let opts = vec![
        ("s3", "endpoint", ep.clone()),
        ("s3", "access_key", "testing".to_string()),
        ("s3", "secret_key", "testing".to_string()),
        ("s3", "archive_bucket", bucket.clone()),
        ("s3", "create_buckets", "true".to_string()),
    ];
    let empty = tempfile::tempdir().unwrap();
    let mut b = stoq_engine::Stoq::builder()
        .registry(common::registry(Arc::new(Flaky::default())))
        .base_dir(empty.path())
        .dest_archivers(["s3"]);
    for (p, k, v) in &opts {
        b = b.plugin_opt(p, k, v.clone());
    }
    let stoq = b.build().unwrap();
    let response = stoq
        .scan(&b"scan me through s3"[..], None, None, &["len".to_string()])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let locator = response.results[0].archivers["s3"].clone();
    assert_eq!(locator["bucket"], json!(bucket));

    // A second engine fetches it by locator.
    let flaky = Arc::new(Flaky::default());
    let stoq2 = engine(flaky.clone(), &[], &["flaky"], &["s3"], &opts);
    let payload = tokio::time::timeout(
        Duration::from_secs(30),
        stoq2
            .load_plugin("s3")
            .unwrap()
            .instance
            .archiver
            .clone()
            .unwrap()
            .get(&ArchiverResponse::with_results(locator)),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(&payload.content[..], b"scan me through s3");
}
