//! The three plugins together in a Stoq engine: an attached message taken
//! apart over two rounds, winmail.dat unpacked through `tnef`, indicators
//! of an e-mail through `smtp` + `iocextract`.

mod common;

use serde_json::json;
use stoq_core::{PayloadResults, StoqResponse};
use stoq_engine::Stoq;

fn engine(opts: &[(&str, &str, &str)]) -> (Stoq, tempfile::TempDir) {
    let empty = tempfile::tempdir().unwrap();
    let mut b = Stoq::builder()
        .registry(stoq_plugins_email::registry())
        .base_dir(empty.path())
        .max_recursion(5);
    for (p, k, v) in opts {
        b = b.plugin_opt(p, k, *v);
    }
    (b.build().unwrap(), empty)
}

fn by_filename<'a>(r: &'a StoqResponse, name: &str) -> &'a PayloadResults {
    r.results
        .iter()
        .find(|p| p.payload_meta.extra_data.get("filename") == Some(&json!(name)))
        .unwrap_or_else(|| panic!("no payload named {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_message_is_taken_apart_in_the_next_round() {
    let (stoq, _dir) = engine(&[]);
    let r = stoq
        .scan(
            common::read("forwarded-rfc822.eml"),
            None,
            None,
            &["smtp".to_string()],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // Root, the attached message, its two attachments, and the IOC text
    // smtp extracts from each message (extract_iocs is on by default).
    assert_eq!(r.results.len(), 6);
    let ioc_texts = r
        .results
        .iter()
        .filter(|p| p.payload_meta.dispatch_to == ["iocextract"])
        .count();
    assert_eq!(ioc_texts, 2);
    let root = &r.results[0];
    let inner = by_filename(&r, "Protected archive.eml");
    assert_eq!(inner.extracted_from, std::slice::from_ref(&root.payload_id));
    assert_eq!(inner.plugins_run.workers, ["smtp"]);
    assert_eq!(inner.workers["smtp"]["subject"], "Protected archive");
    let zip = by_filename(&r, "password-infected.zip");
    assert_eq!(zip.extracted_from, std::slice::from_ref(&inner.payload_id));
    assert_eq!(zip.extracted_by, ["smtp"]);
    assert_eq!(zip.size, 17603);
    // Every attachment Python's email package finds in the file, found.
    let expected = common::expected();
    for a in expected["email"]["forwarded-rfc822.eml"]["attachments"]
        .as_array()
        .unwrap()
    {
        let p = by_filename(&r, a["filename"].as_str().unwrap());
        assert_eq!(json!(p.size), a["size"]);
        assert_eq!(p.payload_meta.extra_data["content_type"], a["content_type"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winmail_dat_is_unpacked_through_tnef() {
    let (stoq, _dir) = engine(&[]);
    let r = stoq
        .scan(
            common::read("winmail-tnef.eml"),
            None,
            None,
            &["smtp".to_string()],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let winmail = by_filename(&r, "winmail.dat");
    assert_eq!(winmail.plugins_run.workers, ["tnef"]);
    assert_eq!(winmail.workers["tnef"]["subject"], "two files");
    let expected = common::expected();
    for a in expected["tnef"]["two-files.tnef"]["attachments"]
        .as_array()
        .unwrap()
    {
        let p = by_filename(&r, a["name"].as_str().unwrap());
        assert_eq!(p.extracted_from, std::slice::from_ref(&winmail.payload_id));
        assert_eq!(p.extracted_by, ["tnef"]);
        assert_eq!(json!(p.size), a["size"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_with_extract_iocs_feeds_iocextract() {
    let (stoq, _dir) = engine(&[
        ("smtp", "extract_iocs", "true"),
        ("iocextract", "whitelist_ips", "10.0.0.0/8"),
    ]);
    let r = stoq
        .scan(
            common::read("plain-iocs.eml"),
            None,
            None,
            &["smtp".to_string()],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.results.len(), 2);
    let text = &r.results[1];
    assert!(!text.payload_meta.should_archive);
    let iocs = &text.workers["iocextract"];
    assert_eq!(
        iocs["ipv4"],
        json!(["203.0.113.5", "198.51.100.77", "203.0.113.99"])
    );
    assert_eq!(
        iocs["url"],
        json!(["http://malicious.example.com/payload.exe"])
    );
    assert_eq!(iocs["email"], json!(["attacker@example.com"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_mail_in_the_engine_records_an_error_with_results() {
    let (stoq, _dir) = engine(&[]);
    let full = common::read("attachments-zip-pdf-doc.eml");
    let r = stoq
        .scan(
            full[..full.len() / 2].to_vec(),
            None,
            None,
            &["smtp".to_string()],
        )
        .await;
    assert!(r.results[0].workers.contains_key("smtp"));
    let e = r
        .errors
        .iter()
        .find(|e| e.plugin_name.as_deref() == Some("smtp"))
        .unwrap();
    assert_eq!(
        e.payload_id.as_deref(),
        Some(r.results[0].payload_id.as_str())
    );
    assert!(e.error.contains("boundary"), "{}", e.error);
}
