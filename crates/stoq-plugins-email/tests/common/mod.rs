//! Helpers shared by the integration tests of this crate.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stoq_core::{Payload, PluginConfig, Request, WorkerResponse};

/// `testdata/email/` of the workspace.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/email")
}

/// A file of `testdata/email/`.
pub fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `testdata/email/expected.json` (the corpus's reference answers).
pub fn expected() -> Value {
    serde_json::from_slice(&read("expected.json")).unwrap()
}

/// Compare `got` with `testdata/email/golden/<name>.json`;
/// `STOQ_UPDATE_GOLDEN=1` rewrites the file first.
pub fn golden(name: &str, got: &Value) {
    let path = dir().join("golden").join(format!("{name}.json"));
    if std::env::var_os("STOQ_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, stoq_core::to_json_pretty(got) + "\n").unwrap();
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (STOQ_UPDATE_GOLDEN=1 writes it)", path.display())
        }))
        .unwrap();
    assert_eq!(
        got,
        &want,
        "golden {name} differs:\n{}",
        stoq_core::to_json_pretty(got)
    );
}

/// Build a worker of this crate with options and run it on `data`.
pub async fn run_worker(
    plugin: &str,
    opts: &[(&str, &str)],
    data: &[u8],
) -> Option<WorkerResponse> {
    let registry = stoq_plugins_email::registry();
    let module = registry.get(plugin).expect("plugin registered");
    let cfg = PluginConfig::new(plugin, opts.iter().map(|(k, v)| (*k, *v)));
    let instance = (module.build)(&cfg).expect("plugin builds");
    let worker = instance.worker.expect("a worker");
    worker
        .scan(&Payload::new(data.to_vec()), &Request::default())
        .await
        .expect("scan succeeds")
}

/// The Python interpreter for live comparisons: `$STOQ_TEST_PYTHON`, else
/// `python3` when it runs. `None` (and a note) when there is none.
pub fn python() -> Option<String> {
    let candidate = std::env::var("STOQ_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .args(["-c", "import email.policy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(candidate)
    } else {
        eprintln!("note: no python3 with the email package; live comparison skipped");
        None
    }
}

/// What the corpus's `compute_expected.py` computes for an e-mail, with
/// Python's `email` package (policy.default), for each file given:
/// `{path: {subject, from, to, header_names, has_text_body, has_html_body,
/// attachments: [{filename, content_type, disposition, size, sha256}],
/// rfc822_parts: [{filename, inner_subject, inner_attachments}]}}`.
pub const PY_EMAIL_INFO: &str = r#"
import email, email.policy, hashlib, json, sys
def info(data):
    m = email.message_from_bytes(data, policy=email.policy.default)
    atts = []
    for part in m.walk():
        if part.is_multipart():
            continue
        fn = part.get_filename()
        disp = part.get_content_disposition()
        if fn or disp == 'attachment' or part.get_content_type() == 'message/rfc822':
            payload = part.get_payload(decode=True)
            atts.append({'filename': fn, 'content_type': part.get_content_type(), 'disposition': disp,
                         'size': len(payload) if payload is not None else None,
                         'sha256': hashlib.sha256(payload).hexdigest() if payload is not None else None})
    rfc822 = []
    for part in m.walk():
        if part.get_content_type() == 'message/rfc822':
            inner = part.get_payload(0)
            rfc822.append({'filename': part.get_filename(), 'inner_subject': str(inner['subject']),
                           'inner_attachments': [p.get_filename() for p in inner.iter_attachments()]})
    return {'subject': str(m['subject']) if m['subject'] is not None else None,
            'from': str(m['from']) if m['from'] is not None else None,
            'to': str(m['to']) if m['to'] is not None else None,
            'header_names': sorted({k.lower() for k in m.keys()}),
            'has_text_body': m.get_body(preferencelist=('plain',)) is not None,
            'has_html_body': m.get_body(preferencelist=('html',)) is not None,
            'attachments': atts, 'rfc822_parts': rfc822}
out = {}
for p in sys.argv[1:]:
    with open(p, 'rb') as f:
        out[p] = info(f.read())
print(json.dumps(out))
"#;

/// Run [`PY_EMAIL_INFO`] on `paths`; `None` without Python.
pub fn python_email_info(paths: &[PathBuf]) -> Option<Value> {
    let py = python()?;
    let out = Command::new(py)
        .arg("-c")
        .arg(PY_EMAIL_INFO)
        .args(paths)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// sha256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    stoq_core::hashing::hex(&stoq_core::hashing::sha256(data))
}
