//! RabbitMQ restarted in the middle of a run: the provider and the
//! connector reconnect and every message still gets its result. A test
//! binary of its own, so the restart disturbs no other test.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{engine, service, unique, Flaky};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use stoq_core::serde_json::{self, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_run_workers_reconnect_and_finish() {
    let test = "broker_restart_mid_run_workers_reconnect_and_finish";
    let (Some(url), Some(_)) = (
        service("STOQ_TEST_AMQP_URL", test),
        service("STOQ_TEST_SERVICES", test),
    ) else {
        return;
    };
    let (q, out) = (unique("restart-in"), unique("restart-out"));
    let n = 300;
    {
        let conn = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        for name in [&q, &out] {
            ch.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        for i in 0..n {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                format!("message {i}").as_bytes(),
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(format!("m{i}").into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        let _ = conn.close(200, "".into()).await;
    }
    let flaky = Arc::new(Flaky::default());
    let stoq = engine(
        flaky.clone(),
        &["rabbitmq"],
        &["rabbitmq", "flaky"],
        &[],
        &[
            ("rabbitmq", "amqp_url", url.clone()),
            ("rabbitmq", "queue", q.clone()),
            ("rabbitmq", "results_routing_key", out.clone()),
            ("rabbitmq", "exit_when_empty", "true".into()),
            ("rabbitmq", "idle_exit", "1".into()),
            ("rabbitmq", "prefetch", "1".into()),
            ("rabbitmq", "retries", "30".into()),
        ],
    );
    let run = tokio::spawn(async move { stoq.run(None, &[]).await });
    let started = Instant::now();
    while flaky.saved.lock().unwrap().len() < 30 {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_restart = flaky.saved.lock().unwrap().len();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services.sh");
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args([script, "restart", "rabbitmq"])
            .status()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "services.sh restart rabbitmq");
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run finished after the restart")
        .unwrap()
        .unwrap();
    assert!(at_restart < n, "the restart landed mid-run");
    let texts: BTreeSet<String> = flaky
        .saved
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.results[0].workers["len"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts.len(), n, "every message scanned and saved");
    // Every message has a result on the broker too.
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            out.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut ids = BTreeSet::new();
    let mut total = 0;
    while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await
    {
        let v: Value = serde_json::from_slice(&d.data).unwrap();
        ids.insert(v["scan_id"].as_str().unwrap().to_string());
        total += 1;
        d.acker.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(ids.len(), n);
    eprintln!(
        "rabbitmq restart test: {n} messages, restart after {at_restart} saved; \
         {} scans, {total} results published ({} duplicate(s)), 0 missing; {summary:?}",
        summary.scanned,
        total - n
    );
}
