//! Integration tests of the `stoq` binary: each test runs the real
//! executable on real files (copied into `testdata/` from the shared test
//! corpus) and checks its stdout, stderr and exit code.
//!
//! Every run gets a fresh, empty `$STOQ_HOME` (so a developer's `~/.stoq`
//! never matters) and an explicit stdin (`/dev/null` or a pipe that is
//! closed after the content is written), so no test can hang on input.
//! Hashes are checked against the coreutils tools (`md5sum`, `sha1sum`,
//! `sha256sum`, `sha512sum`) run on the same files, and against the values
//! recorded in the corpus's `MANIFEST.tsv` / `EXPECTED.json`.
//!
//! JSON key order is checked with a small order-preserving parser below
//! (`Json`), so the checks do not depend on serde_json's `preserve_order`
//! feature.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const STOQ: &str = env!("CARGO_BIN_EXE_stoq");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A run that takes longer than this is a hang (the whole suite normally
/// runs in a couple of seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------

/// A file of `testdata/` with the digests recorded by the corpus
/// (`MANIFEST.tsv`: size, md5, sha256; `EXPECTED.json`: sha1).
struct Sample {
    path: &'static str,
    size: u64,
    md5: &'static str,
    sha1: &'static str,
    sha256: &'static str,
}

const SAMPLES: &[Sample] = &[
    Sample {
        path: "pe/cli-32.exe",
        size: 11776,
        md5: "46e9a273d6587191b512fd1050dc1fc4",
        sha1: "015535f3274f28cf0b01a3e858de4ecf9fb4ef34",
        sha256: "32acc1bc543116cbe2cff10cb867772df2f254ff2634c870aef0b46c4b696fdb",
    },
    Sample {
        path: "pe/Microsoft.VisualC.dll",
        size: 10752,
        md5: "bb0242e49c97fbf3ae0e6e0940a92cf9",
        sha1: "0e4c816328291fbb67c05905106f505b76d5fe2f",
        sha256: "1c453910b69a2f8f7f0bbb8510df1e2ac614f2e3525a8a8f8042732432c04d13",
    },
    Sample {
        path: "pe/nsDialogs.dll",
        size: 14336,
        md5: "e23b7a59bf4fc0953cd713b8c710ef4f",
        sha1: "22d168ac1e8c073b68fa86af28082ae45fdd122f",
        sha256: "2b32395df2fea42a3a79db54b29f01d82db71bc090255201e03a6db872942ee8",
    },
    Sample {
        path: "java/TestJavaClass.class",
        size: 647,
        md5: "cf5458d05ad1894e94f1cb947ccb7224",
        sha1: "0705c0241407ee568bd4df3c3164a70296f6774d",
        sha256: "9a04a1959aa28aa46ce3f9b9624ef98f6e182a4689ec20732f8480fc9141b77f",
    },
    Sample {
        path: "misc/stoq-scan_rules.yar",
        size: 550,
        md5: "073f8fafd2fb0df6a6b0bc713df7223c",
        sha1: "eedebc907fd3d0fea6a3f13e559f4b61a86b2a34",
        sha256: "c5eac4cc8a69ef30d81b825d4a2d06cc93bbb012fd36c1ffffd5c4bd975b906d",
    },
    Sample {
        path: "misc/jquery.min.js",
        size: 89037,
        md5: "ad949d50a30f82d86ebbe741d0309e48",
        sha1: "c33c47ec0fa6f63d8371cc7966c1cd16e2b86af2",
        sha256: "03378a725b68b791419d83f47f10ff7ca5819c7d9d1dadba9edd26ef2ce588fd",
    },
];

/// The shared corpus the samples were copied from (optional: the cross-check
/// against its manifest is skipped, with a note, where it is not present).
const CORPUS_MANIFEST: &str = "/work/shared/corpus/MANIFEST.tsv";

fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .canonicalize()
        .expect("testdata/ exists at the workspace root")
}

fn sample_path(rel: &str) -> PathBuf {
    testdata_dir().join(rel)
}

/// The main sample used where any real file will do.
fn exe() -> PathBuf {
    sample_path("pe/cli-32.exe")
}

fn exe_sample() -> &'static Sample {
    &SAMPLES[0]
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// stdout as JSON; fails the test (showing stdout and stderr) otherwise.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e})\n--- stdout:\n{}\n--- stderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr does not mention {needle:?}\n--- stderr:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_stdout_empty(&self) -> &Self {
        assert!(
            self.stdout.is_empty(),
            "stdout should be empty\n--- stdout:\n{}",
            self.stdout
        );
        self
    }
}

/// A fresh `$STOQ_HOME` plus helpers to run `stoq` with it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write_cfg(&self, text: &str) -> PathBuf {
        let p = self.path().join("stoq.cfg");
        std::fs::write(&p, text).expect("write stoq.cfg");
        p
    }

    fn command(&self, args: &[&str]) -> Command {
        command_with_home(self.path().as_os_str(), args)
    }

    /// Run with stdin from `/dev/null`.
    fn run(&self, args: &[&str]) -> Out {
        run(self.command(args), None)
    }

    /// Run with `input` piped on stdin.
    fn run_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        run(self.command(args), Some(input))
    }
}

fn command_with_home(home: &std::ffi::OsStr, args: &[&str]) -> Command {
    let mut cmd = Command::new(STOQ);
    cmd.args(args)
        .env("STOQ_HOME", home)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// Run `cmd` to completion with an explicit stdin, capturing its output.
fn run(mut cmd: Command, input: Option<&[u8]>) -> Out {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn stoq");
    let writer = input.map(|data| {
        let mut stdin = child.stdin.take().expect("stdin pipe");
        let data = data.to_vec();
        // The child may exit before reading everything (usage errors);
        // a broken pipe is fine then. Dropping `stdin` closes the pipe.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for stoq") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stoq did not finish within {RUN_TIMEOUT:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    Out {
        // A signal (no code) is never an expected outcome.
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The digest printed by a coreutils tool (`md5sum`, ...) for `path`.
fn coreutil_digest(tool: &str, path: &Path) -> String {
    let out = Command::new(tool)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(out.status.success(), "{tool} failed on {}", path.display());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let digest = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{tool} printed {text:?}"
    );
    digest
}

/// The `workers.hash` object of the only result.
fn hash_results(v: &Value, worker: &str) -> serde_json::Map<String, Value> {
    let results = v["results"].as_array().expect("results array");
    assert_eq!(results.len(), 1, "one payload: {v:#}");
    results[0]["workers"][worker]
        .as_object()
        .unwrap_or_else(|| panic!("workers.{worker} missing: {v:#}"))
        .clone()
}

/// Check the four digests of `path` in a scan result against coreutils.
#[track_caller]
fn assert_digests_match_coreutils(hash: &serde_json::Map<String, Value>, path: &Path) {
    for (key, tool) in [
        ("md5", "md5sum"),
        ("sha1", "sha1sum"),
        ("sha256", "sha256sum"),
        ("sha512", "sha512sum"),
    ] {
        assert_eq!(
            hash[key].as_str(),
            Some(coreutil_digest(tool, path).as_str()),
            "{key} of {}",
            path.display()
        );
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        v.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A plugin directory holding `my_hash/my_hash.stoq`, a manifest that binds
/// the name `my_hash` to the built-in `hash` module.
fn my_hash_plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = dir.path().join("my_hash");
    std::fs::create_dir(&plugin).expect("mkdir");
    std::fs::write(
        plugin.join("my_hash.stoq"),
        "[Core]\nName = my_hash\nModule = hash\n\n\
         [Documentation]\nAuthor = CLI tests\nVersion = 9.9\n\
         Description = Hashes under another name\n",
    )
    .expect("write manifest");
    dir
}

// ---------------------------------------------------------------------------
// An order-preserving JSON reader (scalars are kept as their raw text)
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Json {
    Obj(Vec<(String, Json)>),
    Arr(Vec<Json>),
    /// A string (with its quotes and escapes), number, `true`, `false` or `null`.
    Raw(String),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = JsonReader {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing text after the JSON document");
        v
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?}")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn index(&self, i: usize) -> &Json {
        match self {
            Json::Arr(a) => &a[i],
            other => panic!("not an array: {other:?}"),
        }
    }

    /// Render as Python's `json.dumps(..., indent=4)` does.
    fn render_indent4(&self, level: usize, out: &mut String) {
        let pad = |n: usize, out: &mut String| out.push_str(&" ".repeat(4 * n));
        match self {
            Json::Raw(s) => out.push_str(s),
            Json::Obj(m) if m.is_empty() => out.push_str("{}"),
            Json::Arr(a) if a.is_empty() => out.push_str("[]"),
            Json::Obj(m) => {
                out.push_str("{\n");
                for (n, (k, v)) in m.iter().enumerate() {
                    if n > 0 {
                        out.push_str(",\n");
                    }
                    pad(level + 1, out);
                    out.push('"');
                    out.push_str(k);
                    out.push_str("\": ");
                    v.render_indent4(level + 1, out);
                }
                out.push('\n');
                pad(level, out);
                out.push('}');
            }
            Json::Arr(a) => {
                out.push_str("[\n");
                for (n, v) in a.iter().enumerate() {
                    if n > 0 {
                        out.push_str(",\n");
                    }
                    pad(level + 1, out);
                    v.render_indent4(level + 1, out);
                }
                out.push('\n');
                pad(level, out);
                out.push(']');
            }
        }
    }
}

struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i).copied(),
            Some(b),
            "expected {:?} at byte {}",
            b as char,
            self.i
        );
        self.i += 1;
    }

    fn peek(&mut self) -> u8 {
        self.ws();
        *self.s.get(self.i).expect("unexpected end of JSON")
    }

    /// A string token, returned with its quotes and escapes untouched.
    fn string_raw(&mut self) -> String {
        self.expect(b'"');
        let start = self.i - 1;
        loop {
            match self.s.get(self.i).expect("unterminated string") {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        String::from_utf8(self.s[start..self.i].to_vec()).expect("UTF-8")
    }

    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.i += 1;
                let mut m = Vec::new();
                if self.peek() == b'}' {
                    self.i += 1;
                    return Json::Obj(m);
                }
                loop {
                    let raw = self.string_raw();
                    let key = raw[1..raw.len() - 1].to_string();
                    self.expect(b':');
                    let v = self.value();
                    m.push((key, v));
                    match self.peek() {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Obj(m);
                        }
                        c => panic!("unexpected {:?} in object", c as char),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                if self.peek() == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value());
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Arr(a);
                        }
                        c => panic!("unexpected {:?} in array", c as char),
                    }
                }
            }
            b'"' => Json::Raw(self.string_raw()),
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && !matches!(
                        self.s[self.i],
                        b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'
                    )
                {
                    self.i += 1;
                }
                assert!(self.i > start, "empty scalar at byte {start}");
                Json::Raw(String::from_utf8(self.s[start..self.i].to_vec()).expect("UTF-8"))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Format checks
// ---------------------------------------------------------------------------

/// A lower-case UUID version 4 (RFC 4122 variant), as Python's `str(uuid4())`.
#[track_caller]
fn assert_uuid4(s: &str) {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b');
    assert!(ok, "{s:?} is not a lower-case UUIDv4");
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.fraction]+00:00` (ISO 8601, UTC written as
/// an explicit `+00:00` offset) into Unix seconds.
fn parse_iso8601_utc(s: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{s:?} is not ISO 8601 with a +00:00 offset: {why}");
    let rest = s
        .strip_suffix("+00:00")
        .ok_or_else(|| bad("no +00:00 offset"))?;
    let (date, time) = rest.split_once('T').ok_or_else(|| bad("no 'T'"))?;
    let (time, frac) = match time.split_once('.') {
        Some((t, f)) => (t, Some(f)),
        None => (time, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || digits(f).is_none() {
            return Err(bad("bad fraction of a second"));
        }
    }
    let dp: Vec<&str> = date.split('-').collect();
    let tp: Vec<&str> = time.split(':').collect();
    if dp.len() != 3 || tp.len() != 3 || dp[0].len() != 4 {
        return Err(bad("bad date or time"));
    }
    if dp[1..].iter().chain(tp.iter()).any(|p| p.len() != 2) {
        return Err(bad("fields must have two digits"));
    }
    let n = |p: &str| digits(p).ok_or_else(|| bad("non-digit"));
    let (y, mo, d) = (n(dp[0])?, n(dp[1])?, n(dp[2])?);
    let (h, mi, se) = (n(tp[0])?, n(tp[1])?, n(tp[2])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad("field out of range"));
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

#[test]
fn iso8601_checker_accepts_and_rejects() {
    assert_eq!(parse_iso8601_utc("1970-01-01T00:00:00+00:00"), Ok(0));
    assert_eq!(
        parse_iso8601_utc("2020-01-02T03:04:05.123456+00:00"),
        Ok(1_577_934_245)
    );
    for bad in [
        "2020-01-02T03:04:05.123456",
        "2020-01-02T03:04:05Z",
        "2020-01-02 03:04:05+00:00",
        "2020-13-02T03:04:05+00:00",
        "2020-01-02T03:04:05.+00:00",
        "2020-01-02T03:04:05+01:00",
    ] {
        assert!(parse_iso8601_utc(bad).is_err(), "{bad}");
    }
}

#[test]
fn json_reader_keeps_order_and_detects_other_layouts() {
    let text =
        "{\n    \"b\": [\n        1,\n        \"x\\\"y\"\n    ],\n    \"a\": {},\n    \"c\": []\n}";
    let doc = Json::parse(text);
    assert_eq!(doc.keys(), ["b", "a", "c"]);
    let mut r = String::new();
    doc.render_indent4(0, &mut r);
    assert_eq!(r, text);
    for other in [
        "{\n  \"b\": 1\n}",
        "{\"b\": 1}",
        "{\n    \"b\" : 1\n}",
        "{\n    \"b\": {\n    }\n}",
    ] {
        let mut r = String::new();
        Json::parse(other).render_indent4(0, &mut r);
        assert_ne!(r, other);
    }
}

// ---------------------------------------------------------------------------
// Test data integrity
// ---------------------------------------------------------------------------

#[test]
fn testdata_files_match_the_corpus_manifest() {
    let readme = std::fs::read_to_string(testdata_dir().join("README.md")).expect("README.md");
    for s in SAMPLES {
        let p = sample_path(s.path);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .len();
        assert_eq!(len, s.size, "{}", s.path);
        assert_eq!(coreutil_digest("sha256sum", &p), s.sha256, "{}", s.path);
        assert_eq!(coreutil_digest("md5sum", &p), s.md5, "{}", s.path);
        assert_eq!(coreutil_digest("sha1sum", &p), s.sha1, "{}", s.path);
        let line = readme
            .lines()
            .find(|l| l.contains(&format!("`{}`", s.path)))
            .unwrap_or_else(|| panic!("testdata/README.md has no line for {}", s.path));
        assert!(line.contains(s.sha256), "README line of {}", s.path);
    }
    // Cross-check the pinned values with the corpus manifest when present.
    match std::fs::read_to_string(CORPUS_MANIFEST) {
        Ok(manifest) => {
            for s in SAMPLES {
                let row: Vec<&str> = manifest
                    .lines()
                    .map(|l| l.split('\t').collect::<Vec<_>>())
                    .find(|cols| cols.first() == Some(&s.path))
                    .unwrap_or_else(|| panic!("{} not in {CORPUS_MANIFEST}", s.path));
                // path kind sha256 md5 size source licence
                assert_eq!(row[2], s.sha256, "manifest sha256 of {}", s.path);
                assert_eq!(row[3], s.md5, "manifest md5 of {}", s.path);
                assert_eq!(row[4], s.size.to_string(), "manifest size of {}", s.path);
            }
        }
        Err(e) => eprintln!("note: {CORPUS_MANIFEST} not readable ({e}); pinned values used"),
    }
}

// ---------------------------------------------------------------------------
// JSON shape
// ---------------------------------------------------------------------------

#[test]
fn scan_json_has_the_reference_keys_order_and_indentation() {
    let home = Home::new();
    let exe = exe();
    let out = home.run(&["scan", path_str(&exe), "-s", "hash"]);
    out.assert_code(0);
    assert!(out.stdout.ends_with("}\n"), "one trailing newline");

    let doc = Json::parse(&out.stdout);
    // 4-space indentation, `": "` and `,`+newline separators, `{}`/`[]`
    // for empty containers: exactly Python's json.dumps(indent=4).
    let mut rendered = String::new();
    doc.render_indent4(0, &mut rendered);
    rendered.push('\n');
    assert_eq!(out.stdout, rendered, "not laid out as json.dumps(indent=4)");

    assert_eq!(
        doc.keys(),
        [
            "results",
            "request_meta",
            "errors",
            "time",
            "decorators",
            "scan_id"
        ]
    );
    let result = doc.get("results").index(0);
    assert_eq!(
        result.keys(),
        [
            "size",
            "payload_id",
            "payload_meta",
            "plugins_run",
            "extracted_from",
            "extracted_by",
            "workers",
            "archivers"
        ]
    );
    assert_eq!(
        result.get("payload_meta").keys(),
        ["should_archive", "should_scan", "extra_data", "dispatch_to"]
    );
    assert_eq!(
        result.get("payload_meta").get("extra_data").keys(),
        ["filename"]
    );
    assert_eq!(result.get("plugins_run").keys(), ["workers", "archivers"]);
    assert_eq!(
        result.get("workers").get("hash").keys(),
        ["sha256", "md5", "sha1", "sha512"]
    );
    assert_eq!(
        doc.get("request_meta").keys(),
        ["archive_payloads", "source", "extra_data"]
    );

    // Values.
    let v = out.json();
    let r = &v["results"][0];
    assert_eq!(r["size"], exe_sample().size);
    assert_eq!(r["payload_meta"]["should_archive"], true);
    assert_eq!(r["payload_meta"]["should_scan"], true);
    assert_eq!(r["payload_meta"]["extra_data"]["filename"], "cli-32.exe");
    assert_eq!(r["payload_meta"]["dispatch_to"], serde_json::json!([]));
    assert_eq!(r["plugins_run"]["workers"], serde_json::json!(["hash"]));
    assert_eq!(r["plugins_run"]["archivers"], serde_json::json!([]));
    assert_eq!(r["extracted_from"], serde_json::json!([]));
    assert_eq!(r["extracted_by"], serde_json::json!([]));
    assert_eq!(r["archivers"], serde_json::json!({}));
    assert_eq!(v["request_meta"]["archive_payloads"], true);
    assert_eq!(v["request_meta"]["source"], Value::Null);
    assert_eq!(v["request_meta"]["extra_data"], serde_json::json!({}));
    assert_eq!(v["errors"], serde_json::json!([]));
    assert_eq!(v["decorators"], serde_json::json!({}));

    let payload_id = r["payload_id"].as_str().expect("payload_id string");
    let scan_id = v["scan_id"].as_str().expect("scan_id string");
    assert_uuid4(payload_id);
    assert_uuid4(scan_id);
    assert_ne!(payload_id, scan_id);

    let time = v["time"].as_str().expect("time string");
    let t = parse_iso8601_utc(time).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (t - unix_now()).abs() < 300,
        "time {time} is not the current UTC time"
    );
}

/// The example of spec §1.14 (`sample.txt` = "The quick brown fox"),
/// byte for byte, plus the `sha512` this port adds to the hash worker.
#[test]
fn scan_output_matches_the_reference_example() {
    let home = Home::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("sample.txt");
    std::fs::write(&file, "The quick brown fox").expect("write sample");
    let out = home.run(&["scan", path_str(&file), "-s", "hash"]);
    out.assert_code(0);
    let v = out.json();
    let expected = r#"{
    "results": [
        {
            "size": 19,
            "payload_id": "<payload_id>",
            "payload_meta": {
                "should_archive": true,
                "should_scan": true,
                "extra_data": {
                    "filename": "sample.txt"
                },
                "dispatch_to": []
            },
            "plugins_run": {
                "workers": [
                    "hash"
                ],
                "archivers": []
            },
            "extracted_from": [],
            "extracted_by": [],
            "workers": {
                "hash": {
                    "sha256": "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9",
                    "md5": "a2004f37730b9445670a738fa0fc9ee5",
                    "sha1": "c519c1a06cdbeb2bc499e22137fb48683858b345",
                    "sha512": "015e6d23e760f612cca616c54f110cb12dd54213f1e046c7607081372402eff4936b379296ed549236020afb37bd3e728a044a4243754f095498c98bc24f77e0"
                }
            },
            "archivers": {}
        }
    ],
    "request_meta": {
        "archive_payloads": true,
        "source": null,
        "extra_data": {}
    },
    "errors": [],
    "time": "<time>",
    "decorators": {},
    "scan_id": "<scan_id>"
}
"#
    .replace(
        "<payload_id>",
        v["results"][0]["payload_id"].as_str().unwrap_or_default(),
    )
    .replace("<time>", v["time"].as_str().unwrap_or_default())
    .replace("<scan_id>", v["scan_id"].as_str().unwrap_or_default());
    assert_eq!(out.stdout, expected);
}

#[test]
fn filename_is_the_basename_and_null_for_stdin() {
    let home = Home::new();
    let exe = exe();

    // Relative path from another directory.
    let mut cmd = home.command(&["scan", "pe/cli-32.exe", "-s", "hash"]);
    cmd.current_dir(testdata_dir());
    let out = run(cmd, None);
    out.assert_code(0);
    assert_eq!(
        out.json()["results"][0]["payload_meta"]["extra_data"]["filename"],
        "cli-32.exe"
    );

    // Non-ASCII names are kept as they are (UTF-8, not \u escapes).
    let dir = tempfile::tempdir().expect("temp dir");
    let named = dir.path().join("café ☕.exe");
    std::fs::copy(&exe, &named).expect("copy");
    let out = home.run(&["scan", path_str(&named), "-s", "hash"]);
    out.assert_code(0);
    assert!(out.stdout.contains("\"filename\": \"café ☕.exe\""));

    // Standard input: filename is JSON null.
    let content = std::fs::read(&exe).expect("read");
    let out = home.run_stdin(&["scan", "-", "-s", "hash"], &content);
    out.assert_code(0);
    let v = out.json();
    let extra = &v["results"][0]["payload_meta"]["extra_data"];
    assert_eq!(extra.as_object().map(|m| m.len()), Some(1));
    assert_eq!(extra["filename"], Value::Null);
    assert!(out.stdout.contains("\"filename\": null"));
    assert_eq!(v["results"][0]["size"], exe_sample().size);
}

// ---------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------

#[test]
fn hash_worker_matches_coreutils_and_the_manifest() {
    let home = Home::new();
    for s in SAMPLES {
        let p = sample_path(s.path);
        let out = home.run(&["scan", path_str(&p), "-s", "hash"]);
        out.assert_code(0);
        let v = out.json();
        assert_eq!(v["results"][0]["size"], s.size, "{}", s.path);
        let hash = hash_results(&v, "hash");
        assert_eq!(
            hash.keys().collect::<Vec<_>>(),
            ["sha256", "md5", "sha1", "sha512"]
        );
        assert_digests_match_coreutils(&hash, &p);
        assert_eq!(hash["md5"], s.md5, "manifest md5 of {}", s.path);
        assert_eq!(hash["sha1"], s.sha1, "corpus sha1 of {}", s.path);
        assert_eq!(hash["sha256"], s.sha256, "manifest sha256 of {}", s.path);
        assert_eq!(hash["sha512"].as_str().map(str::len), Some(128));
    }
}

/// Payloads of 1 MiB and more are hashed on two threads; check that path
/// too, on a file and through stdin.
#[test]
fn hash_worker_matches_coreutils_on_a_multi_mib_payload() {
    let home = Home::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big.bin");
    let data = pseudo_random((3 << 20) + 7, 0x5eed_cafe_f00d_d00d);
    std::fs::write(&big, &data).expect("write");

    let out = home.run(&["scan", path_str(&big), "-s", "hash"]);
    out.assert_code(0);
    let v = out.json();
    assert_eq!(v["results"][0]["size"], data.len());
    assert_digests_match_coreutils(&hash_results(&v, "hash"), &big);

    let out = home.run_stdin(&["scan", "-a", "hash"], &data);
    out.assert_code(0);
    let v2 = out.json();
    assert_eq!(hash_results(&v2, "hash"), hash_results(&v, "hash"));
}

// ---------------------------------------------------------------------------
// Invocation forms
// ---------------------------------------------------------------------------

#[test]
fn all_invocation_forms_give_the_same_hashes() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);
    let forms: [&[&str]; 4] = [
        &["scan", f, "-s", "hash"],
        &["scan", "-s", "hash", "--", f],
        // No `--`: the CLI recognises the trailing existing file.
        &["scan", "-s", "hash", f],
        &["scan", "--start-dispatch", "hash", f],
    ];
    for args in forms {
        let out = home.run(args);
        out.assert_code(0);
        let v = out.json();
        assert_eq!(
            v["results"][0]["payload_meta"]["extra_data"]["filename"], "cli-32.exe",
            "{args:?}"
        );
        assert_eq!(
            v["results"][0]["plugins_run"]["workers"],
            serde_json::json!(["hash"])
        );
        assert_eq!(v["errors"], serde_json::json!([]), "{args:?}");
        let hash = hash_results(&v, "hash");
        assert_eq!(hash["sha256"], exe_sample().sha256, "{args:?}");
        assert_eq!(hash["md5"], exe_sample().md5, "{args:?}");
    }

    // `cat FILE | stoq scan - -a hash`, literally through a shell pipe.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("cat \"$1\" | \"$2\" scan - -a hash")
        .arg("sh")
        .arg(f)
        .arg(STOQ)
        .env("STOQ_HOME", home.path())
        .env_remove("RUST_LOG");
    let out = run(cmd, None);
    out.assert_code(0);
    let v = out.json();
    assert_eq!(
        v["results"][0]["payload_meta"]["extra_data"]["filename"],
        Value::Null
    );
    let hash = hash_results(&v, "hash");
    assert_eq!(hash["sha256"], exe_sample().sha256);
    assert_digests_match_coreutils(&hash, &exe);

    // stdin also without `-`.
    let content = std::fs::read(&exe).expect("read");
    let out = home.run_stdin(&["scan", "-a", "hash"], &content);
    out.assert_code(0);
    assert_eq!(
        hash_results(&out.json(), "hash")["sha256"],
        exe_sample().sha256
    );
}

#[test]
fn list_flags_take_comma_and_space_separated_names() {
    let home = Home::new();
    let plugins = my_hash_plugin_dir();
    let pd = path_str(plugins.path());
    let exe = exe();
    let f = path_str(&exe);
    for args in [
        vec!["scan", f, "-s", "hash,my_hash", "--plugin-dir", pd],
        vec!["scan", f, "-s", "hash", "my_hash", "--plugin-dir", pd],
        vec!["scan", f, "-s", "hash", "-s", "my_hash", "--plugin-dir", pd],
        vec!["scan", f, "-a", "hash,my_hash", "--plugin-dir", pd],
        vec!["scan", "--plugin-dir", pd, "-s", "hash,my_hash", f],
    ] {
        let out = home.run(&args);
        out.assert_code(0);
        let v = out.json();
        assert_eq!(v["errors"], serde_json::json!([]), "{args:?}");
        let mut run: Vec<&str> = v["results"][0]["plugins_run"]["workers"]
            .as_array()
            .expect("plugins_run.workers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        run.sort_unstable();
        assert_eq!(run, ["hash", "my_hash"], "{args:?}");
        assert_eq!(
            hash_results(&v, "hash"),
            hash_results(&v, "my_hash"),
            "{args:?}"
        );
    }

    // A comma list with an unknown name: the known one still runs.
    let out = home.run(&["scan", f, "-s", "hash,nope"]);
    out.assert_code(0);
    let v = out.json();
    assert_eq!(hash_results(&v, "hash")["sha256"], exe_sample().sha256);
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{v:#}");
    assert_eq!(errors[0]["plugin_name"], "nope");
}

// ---------------------------------------------------------------------------
// `stoq list` and plugin directories
// ---------------------------------------------------------------------------

/// The line of `stoq list` for `name` and the line under it (the classes).
fn list_entry<'a>(stdout: &'a str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("`stoq list` does not show {name}:\n{stdout}"));
    (lines[i], lines.get(i + 1).copied().unwrap_or_default())
}

#[test]
fn list_shows_the_builtin_plugins() {
    let home = Home::new();
    let out = home.run(&["list"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("stoQ :: v")
            && lines[0].ends_with(":: an automated analysis framework"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "-".repeat(lines[0].chars().count()));

    let (line, classes) = list_entry(&out.stdout, "hash");
    // `{name:<20} v{version:<10}{description}` as in the reference.
    assert_eq!(
        line,
        format!(
            "{:<20} v{:<10}{}",
            "hash", VERSION, "Hash content: md5, sha1, sha256, sha512"
        )
    );
    assert_eq!(classes.trim(), "- Worker");
    assert!(classes.starts_with("\t\t\t\t- "));

    let (line, classes) = list_entry(&out.stdout, "stdout");
    assert!(line.contains(&format!("v{VERSION}")), "{line}");
    assert!(line.ends_with("Sends results to STDOUT"), "{line}");
    assert_eq!(classes.trim(), "- Connector");
    assert!(out.stderr.is_empty(), "list logs nothing: {}", out.stderr);
}

#[test]
fn plugin_dir_manifest_is_listed_and_scannable() {
    let home = Home::new();
    let plugins = my_hash_plugin_dir();
    let pd = path_str(plugins.path());

    let out = home.run(&["list", "--plugin-dir", pd]);
    out.assert_code(0);
    let (line, classes) = list_entry(&out.stdout, "my_hash");
    assert_eq!(
        line,
        format!(
            "{:<20} v{:<10}{}",
            "my_hash", "9.9", "Hashes under another name"
        )
    );
    assert_eq!(classes.trim(), "- Worker");
    // The built-ins are still there.
    list_entry(&out.stdout, "hash");

    let exe = exe();
    let out = home.run(&["scan", path_str(&exe), "-s", "my_hash", "--plugin-dir", pd]);
    out.assert_code(0);
    let v = out.json();
    let workers = v["results"][0]["workers"].as_object().expect("workers");
    assert_eq!(workers.keys().collect::<Vec<_>>(), ["my_hash"]);
    assert_eq!(
        v["results"][0]["plugins_run"]["workers"],
        serde_json::json!(["my_hash"])
    );
    assert_digests_match_coreutils(&hash_results(&v, "my_hash"), &exe);

    // Without --plugin-dir the name is unknown.
    let out = home.run(&["scan", path_str(&exe), "-s", "my_hash"]);
    out.assert_code(0);
    assert_eq!(out.json()["errors"][0]["plugin_name"], "my_hash");
}

#[test]
fn plugins_dir_in_stoq_home_is_searched_by_default() {
    let home = Home::new();
    let plugins = my_hash_plugin_dir();
    let dest = home.path().join("plugins").join("my_hash");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::copy(
        plugins.path().join("my_hash/my_hash.stoq"),
        dest.join("my_hash.stoq"),
    )
    .expect("copy manifest");
    let out = home.run(&["list"]);
    out.assert_code(0);
    list_entry(&out.stdout, "my_hash");
    let exe = exe();
    let out = home.run(&["scan", path_str(&exe), "-s", "my_hash"]);
    out.assert_code(0);
    assert_eq!(
        hash_results(&out.json(), "my_hash")["sha256"],
        exe_sample().sha256
    );
}

// ---------------------------------------------------------------------------
// Exit codes and messages
// ---------------------------------------------------------------------------

#[test]
fn unknown_start_worker_is_an_error_record_with_exit_0() {
    let home = Home::new();
    let exe = exe();
    let out = home.run(&["scan", path_str(&exe), "-s", "nope"]);
    out.assert_code(0);
    let v = out.json();
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{v:#}");
    let e = &errors[0];
    assert_eq!(
        e.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "error".to_string(),
            "plugin_name".to_string(),
            "payload_id".to_string()
        ])
    );
    let msg = e["error"].as_str().expect("error text");
    assert!(
        msg.starts_with("Worker plugin nope failed to load"),
        "{msg}"
    );
    assert_eq!(e["plugin_name"], "nope");
    assert_eq!(e["payload_id"], v["results"][0]["payload_id"]);
    assert_eq!(v["results"][0]["workers"], serde_json::json!({}));
    assert_eq!(
        v["results"][0]["plugins_run"]["workers"],
        serde_json::json!([])
    );
}

#[test]
fn unknown_plugin_in_other_roles_is_fatal_and_names_the_flag() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);
    for (args, flag) in [
        (vec!["scan", f, "-a", "nope"], "-a/--always-dispatch"),
        (
            vec!["scan", f, "--always-dispatch", "nope"],
            "-a/--always-dispatch",
        ),
        (vec!["scan", f, "-C", "nope"], "-C/--connectors"),
        (vec!["scan", f, "-R", "nope"], "-R/--dispatchers"),
        (vec!["scan", f, "-D", "nope"], "-D/--decorators"),
        (vec!["scan", f, "-A", "nope"], "-A/--dest-archivers"),
        (vec!["scan", f, "-S", "nope"], "-S/--source-archivers"),
        (vec!["scan", f, "-a", "hash,nope"], "-a/--always-dispatch"),
    ] {
        let out = home.run(&args);
        out.assert_code(1)
            .assert_stderr_has(flag)
            .assert_stderr_has("\"nope\"")
            .assert_stdout_empty();
    }
}

#[test]
fn plugin_of_the_wrong_class_is_fatal() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);
    home.run(&["scan", f, "-C", "hash"])
        .assert_code(1)
        .assert_stderr_has("-C/--connectors")
        .assert_stderr_has("hash")
        .assert_stderr_has("Connector")
        .assert_stdout_empty();
    home.run(&["scan", f, "-a", "stdout"])
        .assert_code(1)
        .assert_stderr_has("-a/--always-dispatch")
        .assert_stderr_has("Worker");
    // As a start worker it is only an error record.
    let out = home.run(&["scan", f, "-s", "stdout"]);
    out.assert_code(0);
    assert_eq!(out.json()["errors"][0]["plugin_name"], "stdout");
}

#[test]
fn unreadable_or_empty_input_is_a_usage_error() {
    let home = Home::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.exe");
    home.run(&["scan", path_str(&missing), "-s", "hash"])
        .assert_code(2)
        .assert_stderr_has("missing.exe")
        .assert_stdout_empty();
    home.run(&["scan", "-s", "hash", "--", path_str(&missing)])
        .assert_code(2)
        .assert_stdout_empty();
    // A directory is not a file.
    home.run(&["scan", path_str(dir.path()), "-s", "hash"])
        .assert_code(2)
        .assert_stdout_empty();

    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").expect("write");
    home.run(&["scan", path_str(&empty), "-s", "hash"])
        .assert_code(2)
        .assert_stderr_has("empty")
        .assert_stdout_empty();

    // stdin from /dev/null: no content.
    for args in [
        &["scan", "-s", "hash"][..],
        &["scan", "-", "-s", "hash"],
        &["scan"],
    ] {
        home.run(args)
            .assert_code(2)
            .assert_stderr_has("empty")
            .assert_stdout_empty();
    }
    // An empty pipe.
    home.run_stdin(&["scan", "-", "-a", "hash"], b"")
        .assert_code(2)
        .assert_stderr_has("empty");
}

#[test]
fn malformed_plugin_opts_and_request_extra_are_usage_errors() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);
    for bad in [
        "nocolon",
        "stdout:noequals",
        ":compactly=true",
        "stdout:=true",
    ] {
        home.run(&["scan", f, "-s", "hash", "--plugin-opts", bad])
            .assert_code(2)
            .assert_stderr_has("--plugin-opts")
            .assert_stderr_has(bad)
            .assert_stdout_empty();
    }
    home.run(&["scan", f, "--request-extra", "noequals"])
        .assert_code(2)
        .assert_stderr_has("--request-extra")
        .assert_stdout_empty();
}

#[test]
fn bad_plugin_option_value_is_fatal_and_named() {
    let home = Home::new();
    let exe = exe();
    home.run(&[
        "scan",
        path_str(&exe),
        "--plugin-opts",
        "stdout:compactly=maybe",
        "-C",
        "stdout",
    ])
    .assert_code(1)
    .assert_stderr_has("stdout")
    .assert_stderr_has("compactly")
    .assert_stderr_has("maybe")
    .assert_stdout_empty();
}

#[test]
fn argument_errors_exit_2() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);
    home.run(&["scan", f, "--no-such-flag"])
        .assert_code(2)
        .assert_stderr_has("--no-such-flag")
        .assert_stdout_empty();
    home.run(&[]).assert_code(2).assert_stdout_empty();
    home.run(&["frobnicate"])
        .assert_code(2)
        .assert_stdout_empty();
    // The reference's fused choice is not accepted ...
    home.run(&["scan", f, "-s", "hash", "--log-level", "errorcrtical"])
        .assert_code(2)
        .assert_stderr_has("--log-level")
        .assert_stdout_empty();
    for bad in ["0", "-1", "ten"] {
        home.run(&["scan", f, "-s", "hash", "--max-recursion", bad])
            .assert_code(2)
            .assert_stdout_empty();
    }
    home.run(&["scan", f, "--max-recursion", "0"])
        .assert_stderr_has("--max-recursion");
}

#[test]
fn log_levels_are_accepted_in_any_case() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);
    // ... while the real levels, `critical` included, work.
    let out = home.run(&["scan", f, "-s", "hash", "--log-level", "critical"]);
    out.assert_code(0);
    assert_eq!(
        hash_results(&out.json(), "hash")["sha256"],
        exe_sample().sha256
    );
    assert!(
        !out.stderr.contains("INFO"),
        "critical hides info records: {}",
        out.stderr
    );
    for level in ["debug", "info", "warning", "error", "DEBUG", "Warning"] {
        let out = home.run(&["scan", f, "-s", "hash", "--log-level", level]);
        out.assert_code(0);
        out.json();
    }
}

#[test]
fn invalid_stoq_home_is_fatal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-home");
    let exe = exe();
    for args in [&["scan", path_str(&exe), "-s", "hash"][..], &["list"]] {
        let out = run(command_with_home(missing.as_os_str(), args), None);
        out.assert_code(1)
            .assert_stderr_has("$STOQ_HOME")
            .assert_stdout_empty();
    }
    // A file is not a home either.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    run(command_with_home(file.as_os_str(), &["list"]), None)
        .assert_code(1)
        .assert_stderr_has("$STOQ_HOME");
}

#[test]
fn missing_config_file_flag_is_a_usage_error() {
    let home = Home::new();
    let exe = exe();
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.cfg");
    home.run(&[
        "scan",
        path_str(&exe),
        "-s",
        "hash",
        "--config-file",
        path_str(&missing),
    ])
    .assert_code(2)
    .assert_stderr_has("--config-file")
    .assert_stdout_empty();
    home.run(&["list", "--config-file", path_str(&missing)])
        .assert_code(2)
        .assert_stderr_has("--config-file");
}

// ---------------------------------------------------------------------------
// stdout discipline
// ---------------------------------------------------------------------------

#[test]
fn stdout_is_pure_json_without_a_config_file() {
    let home = Home::new();
    assert!(!home.path().join("stoq.cfg").exists());
    let exe = exe();
    let out = home.run(&["scan", path_str(&exe), "-s", "hash"]);
    out.assert_code(0)
        .assert_stderr_has("stoq.cfg does not exist");
    let v = out.json();
    assert!(v.is_object());
    assert!(out.stdout.starts_with('{'));
    assert!(!out.stdout.contains("does not exist"));
}

// ---------------------------------------------------------------------------
// stoq.cfg
// ---------------------------------------------------------------------------

#[test]
fn config_always_dispatch_runs_hash() {
    let home = Home::new();
    home.write_cfg("[core]\nalways_dispatch = hash\n");
    let exe = exe();
    let out = home.run(&["scan", path_str(&exe)]);
    out.assert_code(0);
    assert!(
        !out.stderr.contains("does not exist"),
        "the config was found: {}",
        out.stderr
    );
    let v = out.json();
    assert_digests_match_coreutils(&hash_results(&v, "hash"), &exe);

    // `:` delimiter and a comment work too (configparser dialect).
    home.write_cfg("# settings\n[core]\nalways_dispatch: hash\n");
    let out = home.run(&["scan", path_str(&exe)]);
    out.assert_code(0);
    assert_eq!(hash_results(&out.json(), "hash")["md5"], exe_sample().md5);

    // An explicit --config-file is read instead of $STOQ_HOME/stoq.cfg.
    let other = tempfile::tempdir().expect("temp dir");
    let cfg = other.path().join("elsewhere.cfg");
    std::fs::write(&cfg, "[core]\nalways_dispatch = hash\n").expect("write");
    let empty_home = Home::new();
    let out = empty_home.run(&["scan", path_str(&exe), "--config-file", path_str(&cfg)]);
    out.assert_code(0);
    assert_eq!(hash_results(&out.json(), "hash")["md5"], exe_sample().md5);
}

#[test]
fn config_max_recursion_zero_is_fatal() {
    let home = Home::new();
    home.write_cfg("[core]\nmax_recursion = 0\n");
    let exe = exe();
    home.run(&["scan", path_str(&exe), "-s", "hash"])
        .assert_code(1)
        .assert_stderr_has("max_recursion")
        .assert_stdout_empty();
    // The bad value is rejected when the config is read, even when the flag
    // would override it.
    home.run(&["scan", path_str(&exe), "-s", "hash", "--max-recursion", "3"])
        .assert_code(1)
        .assert_stderr_has("max_recursion");
    home.write_cfg("[core]\nmax_recursion = abc\n");
    home.run(&["scan", path_str(&exe), "-s", "hash"])
        .assert_code(1)
        .assert_stderr_has("max_recursion")
        .assert_stderr_has("abc");
}

#[test]
fn config_syntax_errors_are_fatal_and_name_file_and_line() {
    let home = Home::new();
    let exe = exe();
    for (text, line) in [
        ("garbage before any section\n[core]\n", "line 1"),
        ("[core]\nmax_queue = 1\nmax_queue = 2\n", "line 3"),
        ("# comment\n[core]\nmax_queue = 1\n\n[core]\n", "line 5"),
    ] {
        let cfg = home.write_cfg(text);
        home.run(&["scan", path_str(&exe), "-s", "hash"])
            .assert_code(1)
            .assert_stderr_has(path_str(&cfg))
            .assert_stderr_has(line)
            .assert_stdout_empty();
    }
}

#[test]
fn config_log_dir_receives_the_log_file() {
    let home = Home::new();
    let logs = tempfile::tempdir().expect("temp dir");
    let log_dir = logs.path().join("nested").join("logs");
    home.write_cfg(&format!("[core]\nlog_dir = {}\n", path_str(&log_dir)));
    let exe = exe();
    let out = home.run(&["scan", path_str(&exe), "-s", "hash", "--log-level", "debug"]);
    out.assert_code(0);
    out.json(); // logs never reach stdout
    let log = std::fs::read_to_string(log_dir.join("stoq.log")).expect("stoq.log written");
    assert!(log.contains("Request received"), "{log}");
    assert!(
        out.stderr.contains("Request received"),
        "stderr gets it too"
    );
    assert!(
        !home.path().join("logs").exists(),
        "the default log dir is not used"
    );
}

#[test]
fn default_and_empty_log_dir() {
    // Default: $STOQ_HOME/logs/stoq.log.
    let home = Home::new();
    let exe = exe();
    home.run(&["scan", path_str(&exe), "-s", "hash", "--log-level", "debug"])
        .assert_code(0);
    let log = std::fs::read_to_string(home.path().join("logs/stoq.log")).expect("default log");
    assert!(log.contains("Request received"), "{log}");

    // `log_dir =` (empty): no log file.
    let home = Home::new();
    home.write_cfg("[core]\nlog_dir =\n");
    home.run(&["scan", path_str(&exe), "-s", "hash", "--log-level", "debug"])
        .assert_code(0)
        .assert_stderr_has("Request received");
    assert!(!home.path().join("logs").exists());
}

// ---------------------------------------------------------------------------
// Connectors and request metadata
// ---------------------------------------------------------------------------

#[test]
fn stdout_connector_prints_one_document() {
    let home = Home::new();
    let exe = exe();
    let f = path_str(&exe);

    let out = home.run(&["scan", f, "-s", "hash", "-C", "stdout"]);
    out.assert_code(0);
    let v = out.json(); // exactly one document, nothing else
    assert_eq!(hash_results(&v, "hash")["sha256"], exe_sample().sha256);
    let doc = Json::parse(&out.stdout);
    let mut rendered = String::new();
    doc.render_indent4(0, &mut rendered);
    assert_eq!(
        out.stdout,
        format!("{rendered}\n"),
        "indented like the default output"
    );

    for opt in ["stdout:compactly=true", "stdout:compactly=True"] {
        let out = home.run(&[
            "scan",
            f,
            "-s",
            "hash",
            "-C",
            "stdout",
            "--plugin-opts",
            opt,
        ]);
        out.assert_code(0);
        assert_eq!(out.stdout.lines().count(), 1, "one line: {:?}", out.stdout);
        assert!(out.stdout.ends_with("}\n"));
        let v = out.json();
        assert_eq!(hash_results(&v, "hash")["sha256"], exe_sample().sha256);
        let doc = Json::parse(&out.stdout);
        assert_eq!(
            doc.keys(),
            [
                "results",
                "request_meta",
                "errors",
                "time",
                "decorators",
                "scan_id"
            ]
        );
    }

    // The option can come from stoq.cfg too.
    home.write_cfg("[stdout]\ncompactly = true\n");
    let out = home.run(&["scan", f, "-s", "hash", "-C", "stdout"]);
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 1);
    // ... and --plugin-opts wins over it.
    let out = home.run(&[
        "scan",
        f,
        "-s",
        "hash",
        "-C",
        "stdout",
        "--plugin-opts",
        "stdout:compactly=false",
    ]);
    out.assert_code(0);
    assert!(out.stdout.lines().count() > 1);
}

#[test]
fn request_source_and_extra_reach_request_meta() {
    let home = Home::new();
    let exe = exe();
    let out = home.run(&[
        "scan",
        path_str(&exe),
        "-s",
        "hash",
        "--request-source",
        "S",
        "--request-extra",
        "a=1",
        "b=true",
        "--request-extra",
        "c=FALSE",
        "d=x=y",
    ]);
    out.assert_code(0);
    let doc = Json::parse(&out.stdout);
    assert_eq!(
        doc.get("request_meta").get("extra_data").keys(),
        ["a", "b", "c", "d"]
    );
    let v = out.json();
    let rm = &v["request_meta"];
    assert_eq!(rm["source"], "S");
    assert_eq!(rm["archive_payloads"], true);
    assert_eq!(rm["extra_data"]["a"], "1");
    assert_eq!(rm["extra_data"]["b"], true);
    assert_eq!(rm["extra_data"]["c"], false);
    assert_eq!(rm["extra_data"]["d"], "x=y");
}

// ---------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------

#[test]
fn scan_help_mentions_every_flag_of_the_spec() {
    let home = Home::new();
    let out = home.run(&["scan", "--help"]);
    out.assert_code(0);
    for (short, long) in [
        ("-s", "--start-dispatch"),
        ("-a", "--always-dispatch"),
        ("-R", "--dispatchers"),
        ("-D", "--decorators"),
        ("-C", "--connectors"),
        ("-A", "--dest-archivers"),
        ("-S", "--source-archivers"),
    ] {
        assert!(
            out.stdout.contains(&format!("{short}, {long}")),
            "scan --help lacks {short}, {long}:\n{}",
            out.stdout
        );
    }
    for long in [
        "--max-recursion",
        "--plugin-opts",
        "--request-source",
        "--request-extra",
        "--plugin-dir",
        "--config-file",
        "--log-level",
    ] {
        assert!(
            out.stdout.contains(long),
            "scan --help lacks {long}:\n{}",
            out.stdout
        );
    }
    let out = home.run(&["--help"]);
    out.assert_code(0);
    assert!(out.stdout.contains("scan") && out.stdout.contains("list"));
}

// ---------------------------------------------------------------------------
// Fixes after review
// ---------------------------------------------------------------------------

/// A trailing word that names a plugin from a manifest is a plugin, even
/// when a file of that name exists: nothing is scanned from the file, and
/// the (empty) standard input is the content.
#[test]
fn trailing_manifest_plugin_name_is_not_taken_as_the_file() {
    let home = Home::new();
    let plugins = my_hash_plugin_dir();
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(work.path().join("my_hash"), b"not the input").expect("write");
    let mut cmd = home.command(&[
        "scan",
        "-s",
        "hash",
        "my_hash",
        "--plugin-dir",
        path_str(plugins.path()),
    ]);
    cmd.current_dir(work.path());
    let out = run(cmd, Some(b""));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
}

/// A bad `log_level` in stoq.cfg names the file.
#[test]
fn bad_log_level_in_config_names_the_file() {
    let home = Home::new();
    let cfg = home.write_cfg("[core]\nlog_level = loud\n");
    let out = home.run(&["scan", path_str(&exe()), "-s", "hash"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(path_str(&cfg)), "{}", out.stderr);
    assert!(
        out.stderr.contains("log_level") && out.stderr.contains("loud"),
        "{}",
        out.stderr
    );
}

/// When stdout is closed, the failed `stdout` connector still gives exit 3
/// and the results are not silently lost (they go to stderr).
#[test]
fn closed_stdout_with_stdout_connector_exits_3() {
    let home = Home::new();
    let mut cmd = home.command(&["scan", path_str(&exe()), "-s", "hash", "-C", "stdout"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn stoq");
    // Close the read end before stoq writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("connector(s) failed"), "{stderr}");
    assert!(stderr.contains("\"sha256\""), "results on stderr: {stderr}");
}
