//! `stoq run` workers on real brokers, with real faults: a worker killed
//! with kill -9, a broker restarted mid-run, a search engine that fails for
//! a while. The servers come from scripts/services.sh (./scripts/test.sh
//! starts them); without them these tests print why and skip.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stoq_core::hashing::{hex, sha256};

const STOQ: &str = env!("CARGO_BIN_EXE_stoq");

fn service(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => {
            eprintln!("SKIP {test}: {var} is not set (./scripts/test.sh starts the test services)");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        stoq_core::new_id().split('-').next().unwrap()
    )
}

// ---------------------------------------------------------------------------
// A minimal RESP2 client (the CLI crate has no Redis dependency).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Simple(String),
    Err(String),
    Arr(Vec<Resp>),
}

impl Resp {
    fn int(&self) -> i64 {
        match self {
            Resp::Int(i) => *i,
            Resp::Bulk(b) => String::from_utf8_lossy(b).parse().unwrap(),
            other => panic!("not an integer: {other:?}"),
        }
    }
    fn arr(&self) -> &[Resp] {
        match self {
            Resp::Arr(a) => a,
            Resp::Nil => &[],
            other => panic!("not an array: {other:?}"),
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Resp::Bulk(b) => b,
            other => panic!("not a bulk string: {other:?}"),
        }
    }
}

struct Redis {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Redis {
    fn connect(url: &str) -> Redis {
        let addr = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_string();
        let s = TcpStream::connect(addr).expect("connect to redis");
        Redis {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn read(&mut self) -> Resp {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).to_string();
        match line[0] {
            b'+' => Resp::Simple(text),
            b'-' => Resp::Err(text),
            b':' => Resp::Int(text.parse().unwrap()),
            b'$' => {
                let n: i64 = text.parse().unwrap();
                if n < 0 {
                    return Resp::Nil;
                }
                let mut buf = vec![0; n as usize + 2];
                std::io::Read::read_exact(&mut self.r, &mut buf).unwrap();
                buf.truncate(n as usize);
                Resp::Bulk(buf)
            }
            b'*' => {
                let n: i64 = text.parse().unwrap();
                if n < 0 {
                    return Resp::Nil;
                }
                Resp::Arr((0..n).map(|_| self.read()).collect())
            }
            other => panic!("bad RESP type {other}"),
        }
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Resp {
        self.w.write_all(&Self::encode(args)).unwrap();
        let r = self.read();
        if let Resp::Err(e) = &r {
            panic!("redis error: {e}");
        }
        r
    }

    /// Send many commands at once, then read every reply.
    fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) {
        let mut buf = Vec::new();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            buf.extend(Self::encode(&args));
        }
        self.w.write_all(&buf).unwrap();
        for _ in cmds {
            if let Resp::Err(e) = self.read() {
                panic!("redis error: {e}");
            }
        }
    }

    fn xlen(&mut self, stream: &str) -> i64 {
        self.cmd(&[b"XLEN", stream.as_bytes()]).int()
    }

    /// After a restart: wait until Redis has loaded its data set (commands
    /// answer `-LOADING` until then).
    fn wait_loaded(&mut self, stream: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.w
                .write_all(&Self::encode(&[b"XLEN", stream.as_bytes()]))
                .unwrap();
            match self.read() {
                Resp::Err(e) if e.starts_with("LOADING") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Resp::Err(e) => panic!("redis error: {e}"),
                _ => return,
            }
        }
    }

    /// Every result in a results stream, in order.
    fn results(&mut self, stream: &str) -> Vec<Value> {
        let reply = self.cmd(&[b"XRANGE", stream.as_bytes(), b"-", b"+"]);
        reply
            .arr()
            .iter()
            .map(|e| {
                let fields = e.arr()[1].arr();
                let mut result = None;
                for kv in fields.chunks(2) {
                    if kv[0].bytes() == b"result" {
                        result = Some(serde_json::from_slice(kv[1].bytes()).unwrap());
                    }
                }
                result.expect("an entry with a result field")
            })
            .collect()
    }

    fn pending(&mut self, stream: &str, group: &str) -> i64 {
        self.cmd(&[b"XPENDING", stream.as_bytes(), group.as_bytes()])
            .arr()[0]
            .int()
    }
}

/// Queue `n` payloads; returns sha256 → index.
fn fill(redis: &mut Redis, stream: &str, n: usize) -> BTreeMap<String, usize> {
    let mut by_sha = BTreeMap::new();
    let mut cmds = Vec::new();
    for i in 0..n {
        let content = format!("payload {i:05} {}", "x".repeat(i % 200)).into_bytes();
        by_sha.insert(hex(&sha256(&content)), i);
        cmds.push(vec![
            b"XADD".to_vec(),
            stream.as_bytes().to_vec(),
            b"*".to_vec(),
            b"content".to_vec(),
            content,
            b"extra_data".to_vec(),
            format!(r#"{{"n": {i}}}"#).into_bytes(),
        ]);
    }
    redis.pipeline(&cmds);
    by_sha
}

/// Check that every payload has at least one complete result; return the
/// number of duplicate results.
fn check_results(results: &[Value], by_sha: &BTreeMap<String, usize>) -> usize {
    let mut seen: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for r in results {
        let root = &r["results"][0];
        let hash = &root["workers"]["hash"];
        for k in ["md5", "sha1", "sha256", "sha512"] {
            assert!(hash[k].is_string(), "incomplete result: {r}");
        }
        let sha = hash["sha256"].as_str().unwrap();
        let i = *by_sha
            .get(sha)
            .unwrap_or_else(|| panic!("a result for an unknown payload {sha}"));
        assert_eq!(root["payload_meta"]["extra_data"]["n"], i, "{r}");
        seen.entry(i)
            .or_default()
            .push(r["scan_id"].as_str().unwrap().to_string());
    }
    let missing: Vec<usize> = (0..by_sha.len())
        .filter(|i| !seen.contains_key(i))
        .collect();
    assert!(missing.is_empty(), "payloads without a result: {missing:?}");
    // A payload scanned twice keeps its scan id (derived from the entry).
    for (i, ids) in &seen {
        let distinct: BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 1, "payload {i} has scan ids {ids:?}");
    }
    results.len() - by_sha.len()
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(dir: &Path, name: &str, args: &[String]) -> Worker {
        let home = dir.join("home");
        fs::create_dir_all(&home).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(STOQ)
            .args(args)
            .current_dir(dir)
            .env("STOQ_HOME", &home)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start stoq");
        Worker { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for exit within `limit` (kill and fail past it).
    fn wait(mut self, limit: Duration) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code().unwrap_or(-1), self.log());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("stoq did not finish within {limit:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

fn redis_worker_args(
    url: &str,
    stream: &str,
    out: &str,
    consumer: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> = [
        "run",
        "-P",
        "redis-queue",
        "-C",
        "redis-queue",
        "-a",
        "hash",
        "--log-level",
        "info",
        "--plugin-opts",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for o in [
        format!("redis-queue:redis_url={url}"),
        format!("redis-queue:redis_queue={stream}"),
        format!("redis-queue:results_stream={out}"),
        format!("redis-queue:redis_consumer={consumer}"),
        "redis-queue:exit_when_empty=true".into(),
        "redis-queue:claim_idle=2".into(),
        "redis-queue:read_block=0.5".into(),
        // Count the duplicates at-least-once delivery gives, instead of
        // suppressing them.
        "redis-queue:dedup_ttl=0".into(),
    ] {
        v.push(o);
    }
    v.extend(extra.iter().map(|s| format!("redis-queue:{s}")));
    v
}

/// (a) Two workers share one stream; one is killed with kill -9 mid-run.
#[test]
fn two_workers_one_killed_every_payload_gets_a_result() {
    let test = "two_workers_one_killed_every_payload_gets_a_result";
    let Some(url) = service("STOQ_TEST_REDIS_URL", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (stream, out) = (unique("kill-in"), unique("kill-out"));
    let mut redis = Redis::connect(&url);
    let n = 1000;
    let by_sha = fill(&mut redis, &stream, n);

    let started = Instant::now();
    let a = Worker::start(
        dir.path(),
        "a",
        &redis_worker_args(&url, &stream, &out, "worker-a", &["max_in_flight=8"]),
    );
    let b = Worker::start(
        dir.path(),
        "b",
        &redis_worker_args(&url, &stream, &out, "worker-b", &["max_in_flight=8"]),
    );
    assert!(
        poll_until(Duration::from_secs(60), || redis.xlen(&out) >= 150),
        "no progress; a:\n{}\nb:\n{}",
        a.log(),
        b.log()
    );
    let mut a = a;
    a.child.kill().expect("kill -9 worker a");
    let _ = a.child.wait();
    let at_kill = redis.xlen(&out);
    let pending_at_kill = redis.pending(&stream, "stoq");
    assert!(
        (at_kill as usize) < n,
        "the kill landed mid-run ({at_kill} of {n} results)"
    );
    let (code, log_b) = b.wait(Duration::from_secs(120));
    assert_eq!(code, 0, "worker b:\n{log_b}");
    let results = redis.results(&out);
    let duplicates = check_results(&results, &by_sha);
    assert_eq!(redis.pending(&stream, "stoq"), 0);
    assert!(
        log_b.contains("claimed"),
        "worker b claimed the dead worker's entries:\n{log_b}"
    );
    eprintln!(
        "kill -9 test: {n} payloads, worker a killed after {at_kill} results \
         ({pending_at_kill} entries pending in the group at that moment); \
         {} results in all, {duplicates} duplicate(s), 0 missing; {:.1}s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
}

/// (b) The broker is restarted mid-run; the worker reconnects and finishes.
#[test]
fn redis_restarted_mid_run_the_worker_reconnects_and_finishes() {
    let test = "redis_restarted_mid_run_the_worker_reconnects_and_finishes";
    let Some(server) = service("STOQ_TEST_REDIS_SERVER", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("redis");
    fs::create_dir_all(&data).unwrap();
    // A private server, so the restart disturbs no other test.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start_server = || {
        let c = Command::new(&server)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--dir",
                data.to_str().unwrap(),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        // Killed on drop: a failed assertion must not leave it running.
        let c = KillOnDrop(c);
        assert!(
            poll_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "redis-server did not start"
        );
        c
    };
    let mut server_proc = start_server();
    let url = format!("redis://127.0.0.1:{port}/");
    let mut redis = Redis::connect(&url);
    let (stream, out) = (unique("restart-in"), unique("restart-out"));
    let n = 600;
    let by_sha = fill(&mut redis, &stream, n);
    let w = Worker::start(
        dir.path(),
        "w",
        &redis_worker_args(&url, &stream, &out, "worker", &["max_in_flight=1"]),
    );
    assert!(
        poll_until(Duration::from_secs(60), || redis.xlen(&out) >= 60),
        "no progress:\n{}",
        w.log()
    );
    // SIGTERM: Redis writes its data and exits; then it comes back.
    let ok = Command::new("kill")
        .args(["-TERM", &server_proc.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    server_proc.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let server_proc = start_server();
    let mut redis = Redis::connect(&url);
    redis.wait_loaded(&out);
    let at_restart = redis.xlen(&out);
    assert!(
        (at_restart as usize) < n,
        "the restart landed mid-run ({at_restart} of {n} results)"
    );
    let (code, log) = w.wait(Duration::from_secs(120));
    let results = redis.results(&out);
    drop(server_proc);
    assert_eq!(code, 0, "{log}");
    let duplicates = check_results(&results, &by_sha);
    assert!(log.contains("reconnect"), "the worker reconnected:\n{log}");
    eprintln!(
        "redis restart test: {n} payloads, restart after {at_restart} results; \
         {} results in all, {duplicates} duplicate(s), 0 missing",
        results.len()
    );
}

fn http(method: &str, url: &str, body: &str) -> (u16, Value) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text).unwrap();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// (c) The search engine fails for a while: results are retried, not lost;
/// when it keeps failing, the run says so (exit 3) instead of dropping them.
#[test]
fn search_errors_for_a_while_results_are_retried_not_lost() {
    let test = "search_errors_for_a_while_results_are_retried_not_lost";
    let Some(es) = service("STOQ_TEST_ES_URL", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    fs::create_dir_all(&input).unwrap();
    let n = 40;
    for i in 0..n {
        fs::write(input.join(format!("f{i:03}")), format!("file {i}")).unwrap();
    }
    let index = unique("faults").to_lowercase();
    for fault in [
        format!(r#"{{"index": "{index}", "count": 6, "status": 503}}"#),
        format!(r#"{{"index": "{index}", "count": 4, "status": 429}}"#),
        format!(r#"{{"index": "{index}", "count": 5, "status": 503, "mode": "item"}}"#),
    ] {
        assert_eq!(http("POST", &format!("{es}/_test/fail"), &fault).0, 200);
    }
    let before = http("GET", &format!("{es}/_test/stats"), "").1;
    let args: Vec<String> = [
        "run",
        "-P",
        "filedir",
        "-C",
        "es-search",
        "-a",
        "hash",
        "--plugin-opts",
        &format!("filedir:source_dir={}", input.display()),
        &format!("es-search:es_host={es}"),
        &format!("es-search:es_index={index}"),
        "es-search:index_by_month=false",
        "es-search:retry_backoff=0.05",
        "es-search:max_backoff=0.5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, log) = Worker::start(dir.path(), "c", &args).wait(Duration::from_secs(120));
    assert_eq!(code, 0, "{log}");
    let after = http("GET", &format!("{es}/_test/stats"), "").1;
    let injected = after["failed_requests"].as_i64().unwrap()
        - before["failed_requests"].as_i64().unwrap()
        + after["failed_items"].as_i64().unwrap()
        - before["failed_items"].as_i64().unwrap();
    assert_eq!(injected, 15, "every injected failure was met");
    let (_, count) = http("GET", &format!("{es}/{index}/_count"), "");
    assert_eq!(count["count"], n, "every result indexed");
    assert!(log.contains("retrying"), "{log}");
    eprintln!("search fault test: {injected} injected failures, {n} of {n} results indexed");

    // Lasting failure: the connector gives up, the run reports it (exit 3).
    let index2 = unique("down").to_lowercase();
    let fault = format!(r#"{{"index": "{index2}", "count": 1000, "status": 503}}"#);
    http("POST", &format!("{es}/_test/fail"), &fault);
    let mut args2 = args.clone();
    for a in args2.iter_mut() {
        if a.starts_with("es-search:es_index=") {
            *a = format!("es-search:es_index={index2}");
        }
    }
    args2.push("es-search:es_max_retries=2".into());
    args2.push("filedir:skip_done=false".into());
    let (code, log) = Worker::start(dir.path(), "c2", &args2).wait(Duration::from_secs(120));
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("not indexed after 3 attempt"), "{log}");
    // Drain the rest of the fault so later runs are not affected.
    http(
        "POST",
        &format!("{es}/_test/fail"),
        &format!(r#"{{"index": "{index2}", "count": 0}}"#),
    );
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
