//! `redis-queue` against a real Redis ($STOQ_TEST_REDIS_URL).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use common::{engine, run_to_end, service, unique, Flaky};
use redis::aio::MultiplexedConnection;
use stoq_core::serde_json::{self, json, Value};
use stoq_core::{Archiver, ArchiverResponse, Payload, PluginConfig, Request, RequestMeta};
use stoq_plugins_broker::redis_queue::{scan_id_for_entry, RedisOptions, RedisQueue};

async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn xadd(con: &mut MultiplexedConnection, stream: &str, fields: &[(&str, Vec<u8>)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(v.as_slice());
    }
    cmd.query_async(con).await.unwrap()
}

/// Every entry of a results stream: scan_id → result JSON (all of them, in
/// order, to count duplicates).
async fn results(con: &mut MultiplexedConnection, stream: &str) -> Vec<(String, Value)> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| {
            let sid: String = redis::from_redis_value_ref(&e.map["scan_id"]).unwrap();
            let body: Vec<u8> = redis::from_redis_value_ref(&e.map["result"]).unwrap();
            (sid, serde_json::from_slice(&body).unwrap())
        })
        .collect()
}

async fn pending(con: &mut MultiplexedConnection, stream: &str, group: &str) -> u64 {
    let v: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(con)
        .await
        .unwrap();
    match v {
        redis::Value::Array(a) => redis::from_redis_value_ref(&a[0]).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// How many entries the dead-letter stream of `stream` holds.
async fn dead_letters(con: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(format!("{stream}:dead"))
        .query_async(con)
        .await
        .unwrap()
}

fn opts(url: &str, stream: &str, results: &str) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("redis-queue", "redis_url", url.to_string()),
        ("redis-queue", "redis_queue", stream.to_string()),
        ("redis-queue", "results_stream", results.to_string()),
        ("redis-queue", "exit_when_empty", "true".into()),
        ("redis-queue", "read_block", "0.2".into()),
        ("redis-queue", "claim_idle", "1".into()),
        ("redis-queue", "redis_consumer", unique("c")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_stream_every_entry_one_result() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "stream_to_stream_every_entry_one_result",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let mut con = connect(&url).await;
    let mut ids = BTreeMap::new();
    for i in 0..60 {
        let content = format!("payload number {i}");
        let id = if i % 2 == 0 {
            // Raw content with metadata fields.
            xadd(
                &mut con,
                &stream,
                &[
                    ("content", content.clone().into_bytes()),
                    ("extra_data", format!(r#"{{"n": {i}}}"#).into_bytes()),
                    ("request_meta", br#"{"source": "redis-test"}"#.to_vec()),
                ],
            )
            .await
        } else {
            // The JSON message format, content in base64.
            let msg = json!({
                "_is_payload": true,
                "_content": base64::engine::general_purpose::STANDARD.encode(&content),
                "_payload_meta": {"n": i},
                "_request_meta": {"source": "redis-test"},
            });
            xadd(&mut con, &stream, &[("msg", msg.to_string().into_bytes())]).await
        };
        ids.insert(scan_id_for_entry(&stream, &id), (i, content));
    }
    let flaky = Arc::new(Flaky::default());
    let stoq = engine(
        flaky,
        &["redis-queue"],
        &["redis-queue"],
        &[],
        &opts(&url, &stream, &out),
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 60, "{summary:?}");
    let got = results(&mut con, &out).await;
    assert_eq!(got.len(), 60);
    for (sid, r) in &got {
        let (i, content) = &ids[sid];
        assert_eq!(&r["scan_id"], sid);
        assert_eq!(r["results"][0]["workers"]["len"]["text"], json!(content));
        assert_eq!(r["results"][0]["payload_meta"]["extra_data"]["n"], json!(i));
        assert_eq!(r["request_meta"]["source"], "redis-test");
    }
    assert_eq!(pending(&mut con, &stream, "stoq").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsaved_entries_stay_pending_and_are_scanned_again() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "unsaved_entries_stay_pending_and_are_scanned_again",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let mut con = connect(&url).await;
    for i in 0..10 {
        xadd(
            &mut con,
            &stream,
            &[("content", format!("p{i}").into_bytes())],
        )
        .await;
    }
    // The first 4 saves of the second connector fail: those entries are not
    // acknowledged, get claimed again after claim_idle, and are rescanned.
    let flaky = Arc::new(Flaky {
        fail_first: 4,
        ..Flaky::default()
    });
    let stoq = engine(
        flaky.clone(),
        &["redis-queue"],
        &["redis-queue", "flaky"],
        &[],
        &opts(&url, &stream, &out),
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.unsaved, 4, "{summary:?}");
    assert_eq!(summary.scanned, 14, "{summary:?}");
    let saved: Vec<String> = flaky
        .saved
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.scan_id.clone())
        .collect();
    let distinct: std::collections::BTreeSet<_> = saved.iter().collect();
    assert_eq!((saved.len(), distinct.len()), (10, 10));
    // The Redis connector saved the rescanned entries' results before the
    // other connector failed; with dedup_ttl they were not published twice.
    let got = results(&mut con, &out).await;
    let ids: std::collections::BTreeSet<_> = got.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!((got.len(), ids.len()), (10, 10));
    assert_eq!(pending(&mut con, &stream, "stoq").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_dead_consumer_are_claimed() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "entries_of_a_dead_consumer_are_claimed",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let mut con = connect(&url).await;
    for i in 0..20 {
        xadd(
            &mut con,
            &stream,
            &[("content", format!("p{i}").into_bytes())],
        )
        .await;
    }
    // A consumer reads 8 entries and dies without acknowledging them.
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("stoq")
        .arg("0")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("stoq")
        .arg("dead-worker")
        .arg("COUNT")
        .arg(8)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(pending(&mut con, &stream, "stoq").await, 8);
    let stoq = engine(
        Arc::new(Flaky::default()),
        &["redis-queue"],
        &["redis-queue"],
        &[],
        &opts(&url, &stream, &out),
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 20, "{summary:?}");
    assert_eq!(results(&mut con, &out).await.len(), 20);
    assert_eq!(pending(&mut con, &stream, "stoq").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_go_to_the_dead_letter_stream() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "bad_entries_go_to_the_dead_letter_stream",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let mut con = connect(&url).await;
    xadd(&mut con, &stream, &[("other", b"x".to_vec())]).await;
    xadd(&mut con, &stream, &[("msg", b"not json".to_vec())]).await;
    xadd(&mut con, &stream, &[("content", b"good".to_vec())]).await;
    let stoq = engine(
        Arc::new(Flaky::default()),
        &["redis-queue"],
        &["redis-queue"],
        &[],
        &opts(&url, &stream, &out),
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 1);
    let dead = dead_letters(&mut con, &stream).await;
    assert_eq!(dead, 2);
    assert_eq!(pending(&mut con, &stream, "stoq").await, 0);
}

/// A poison entry (its save fails every time) is scanned `max_deliveries`
/// times, then copied to the dead-letter stream and acknowledged, instead
/// of going round for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_over_max_deliveries_go_to_the_dead_letter_stream() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "entries_over_max_deliveries_go_to_the_dead_letter_stream",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let mut con = connect(&url).await;
    let mut ids = Vec::new();
    for i in 0..2 {
        ids.push(
            xadd(
                &mut con,
                &stream,
                &[("content", format!("poison {i}").into_bytes())],
            )
            .await,
        );
    }
    let flaky = Arc::new(Flaky {
        fail_first: usize::MAX,
        ..Flaky::default()
    });
    let mut options = opts(&url, &stream, &out);
    options.push(("redis-queue", "max_deliveries", "3".into()));
    for o in options.iter_mut().filter(|o| o.1 == "claim_idle") {
        o.2 = "0.3".into();
    }
    let stoq = engine(
        flaky,
        &["redis-queue"],
        &["redis-queue", "flaky"],
        &[],
        &options,
    );
    let summary = run_to_end(&stoq).await;
    // Three deliveries each, every one unsaved; the fourth is not scanned.
    assert_eq!(summary.scanned, 6, "{summary:?}");
    assert_eq!(summary.unsaved, 6, "{summary:?}");
    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{stream}:dead"))
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut sources = Vec::new();
    for e in &dead.ids {
        let source: String = redis::from_redis_value_ref(&e.map["source_id"]).unwrap();
        let error: String = redis::from_redis_value_ref(&e.map["error"]).unwrap();
        assert_eq!(
            error,
            "delivered 4 times without being saved (max_deliveries 3)"
        );
        let content: Vec<u8> = redis::from_redis_value_ref(&e.map["content"]).unwrap();
        assert!(content.starts_with(b"poison "));
        sources.push(source);
    }
    sources.sort();
    ids.sort();
    assert_eq!(sources, ids);
    assert_eq!(pending(&mut con, &stream, "stoq").await, 0);
}

/// A worker that died on an entry three times (each restart re-reads its
/// own pending entries, which counts as a delivery) does not scan it a
/// fourth time: with `max_deliveries` 3 it goes to the dead-letter stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_keeps_killing_its_worker_is_dead_lettered() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "an_entry_that_keeps_killing_its_worker_is_dead_lettered",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let mut con = connect(&url).await;
    xadd(
        &mut con,
        &stream,
        &[("content", b"crashes its worker".to_vec())],
    )
    .await;
    let mut options = opts(&url, &stream, &out);
    options.push(("redis-queue", "max_deliveries", "3".into()));
    let consumer = options
        .iter()
        .find(|o| o.1 == "redis_consumer")
        .unwrap()
        .2
        .clone();
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("stoq")
        .arg("0")
        .query_async(&mut con)
        .await
        .unwrap();
    // Three lives of the worker read the entry and die before saving it.
    for id in [">", "0", "0"] {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("stoq")
            .arg(&consumer)
            .arg("STREAMS")
            .arg(&stream)
            .arg(id)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let stoq = engine(
        Arc::new(Flaky::default()),
        &["redis-queue"],
        &["redis-queue"],
        &[],
        &options,
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 0, "{summary:?}");
    let dead = dead_letters(&mut con, &stream).await;
    assert_eq!(dead, 1);
    assert_eq!(pending(&mut con, &stream, "stoq").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiver_keeps_payloads_with_a_ttl_and_feeds_the_queue() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "archiver_keeps_payloads_with_a_ttl_and_feeds_the_queue",
    ) else {
        return;
    };
    let stream = unique("in");
    let prefix = format!("{}:", unique("arch"));
    let cfg = PluginConfig::new(
        "redis-queue",
        [
            ("redis_url", url.as_str()),
            ("redis_queue", stream.as_str()),
            ("archive_prefix", prefix.as_str()),
            ("archive_ttl", "120"),
            ("archive_enqueue", "true"),
        ],
    );
    let plugin = RedisQueue::new("redis-queue", RedisOptions::from_config(&cfg).unwrap()).unwrap();
    let payload = Payload::new(&b"archived content \x00\x01"[..]);
    let request = Request::new(vec![payload.clone()], RequestMeta::default());
    let locator = plugin.archive(&payload, &request).await.unwrap().unwrap();
    let results = locator.results.clone().unwrap();
    let sha = stoq_core::hashing::hex(&payload.sha256());
    assert_eq!(results["sha256"], json!(sha));
    let key = format!("{prefix}{sha}");
    assert_eq!(results["redis_key"], json!(key));
    let mut con = connect(&url).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!((1..=120).contains(&ttl), "ttl {ttl}");
    // Archiving it again stores nothing new (NX) but refreshes the TTL.
    plugin.archive(&payload, &request).await.unwrap();
    // The locator went on the queue as an archiver task.
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(entries.ids.len(), 2);
    let msg: Vec<u8> = redis::from_redis_value_ref(&entries.ids[0].map["msg"]).unwrap();
    let msg: Value = serde_json::from_slice(&msg).unwrap();
    assert_eq!(msg["redis-queue"], results);
    // get reads it back and checks the hash.
    let back = plugin.get(&locator).await.unwrap().unwrap();
    assert_eq!(back.content, payload.content);
    let mut wrong = results.clone();
    wrong["sha256"] = json!("00");
    assert!(plugin
        .get(&ArchiverResponse::with_results(wrong))
        .await
        .is_err());
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    let err = plugin.get(&locator).await.unwrap_err();
    assert!(err.message().contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiver_tasks_on_the_stream_are_fetched_and_scanned() {
    let Some(url) = service(
        "STOQ_TEST_REDIS_URL",
        "archiver_tasks_on_the_stream_are_fetched_and_scanned",
    ) else {
        return;
    };
    let (stream, out) = (unique("in"), unique("out"));
    let prefix = format!("{}:", unique("arch"));
    let mut o = opts(&url, &stream, &out);
    o.push(("redis-queue", "archive_prefix", prefix.clone()));
    o.push(("redis-queue", "archive_enqueue", "true".into()));
    // A front end archives two payloads, which queues their locators.
    let cfg = PluginConfig::new(
        "redis-queue",
        o.iter()
            .map(|(_, k, v)| (*k, v.clone()))
            .collect::<Vec<_>>(),
    );
    let front = RedisQueue::new("redis-queue", RedisOptions::from_config(&cfg).unwrap()).unwrap();
    for text in ["first archived", "second archived"] {
        let p = Payload::new(text.as_bytes().to_vec());
        let r = Request::new(vec![p.clone()], RequestMeta::default());
        front.archive(&p, &r).await.unwrap();
    }
    let stoq = engine(
        Arc::new(Flaky::default()),
        &["redis-queue"],
        &["redis-queue"],
        &["redis-queue"],
        &o,
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 2, "{summary:?}");
    let mut con = connect(&url).await;
    let mut texts: Vec<String> = results(&mut con, &out)
        .await
        .iter()
        .map(|(_, r)| {
            r["results"][0]["workers"]["len"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    texts.sort();
    assert_eq!(texts, ["first archived", "second archived"]);
}
