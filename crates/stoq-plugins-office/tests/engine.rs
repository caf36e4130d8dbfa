//! End to end through a stoQ engine: the plugins as the `stoq` binary runs
//! them (registry, options, dispatch, extraction, recursion).

mod common;

use stoq_core::hashing::{hex, sha256};
use stoq_core::{PayloadMeta, PayloadResults, StoqResponse};
use stoq_engine::Stoq;

fn engine(always: &[&str]) -> Stoq {
    let empty = tempfile::tempdir().unwrap();
    Stoq::builder()
        .registry(stoq_plugins_office::registry())
        .base_dir(empty.path())
        .always_dispatch(always.iter().copied())
        .max_recursion(4)
        .build()
        .unwrap()
}

fn by_filename<'a>(r: &'a StoqResponse, name: &str) -> Vec<&'a PayloadResults> {
    r.results
        .iter()
        .filter(|p| {
            p.payload_meta
                .extra_data
                .get("filename")
                .and_then(|v| v.as_str())
                == Some(name)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_with_embedded_calc_yields_the_exe() {
    let stoq = engine(&[]);
    let data = common::read("office-ole/sample_with_calc_embedded.doc");
    let r = stoq
        .scan(
            data,
            Some(PayloadMeta::with_extra(
                "filename",
                "sample_with_calc_embedded.doc",
            )),
            None,
            &["ole".to_string()],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let root = &r.results[0];
    assert_eq!(root.plugins_run.workers, ["ole"]);
    assert_eq!(root.workers["ole"]["streams"].as_array().unwrap().len(), 9);
    // Root + 9 streams, the Ole10Native one replaced by the executable.
    assert_eq!(r.results.len(), 10);
    let exe = by_filename(&r, "calc.exe");
    assert_eq!(exe.len(), 1);
    let exe = exe[0];
    assert_eq!(exe.extracted_by, ["ole"]);
    assert_eq!(exe.extracted_from, std::slice::from_ref(&root.payload_id));
    assert_eq!(exe.size, 31232);
    assert!(!exe.payload_meta.should_archive);
    assert_eq!(
        exe.payload_meta.extra_data["ole10native"]["src_path"],
        "C:\\Windows\\System32\\calc.exe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtf_object_chain_to_ole_and_dde() {
    let stoq = engine(&["rtf", "ole", "olevba", "mraptor"]);
    let r = stoq
        .scan(
            common::read("rtf/word-document-object.rtf"),
            None,
            None,
            &[],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let root = &r.results[0];
    assert_eq!(
        root.workers["rtf"]["objects"][0]["class_name"],
        "Word.Document.8"
    );
    assert!(!root.workers.contains_key("ole"), "RTF is not OLE");
    // The embedded Word document: read by ole and olevba next round.
    let doc = r
        .results
        .iter()
        .find(|p| p.extracted_by == ["rtf"])
        .expect("the embedded document");
    assert_eq!(
        hex(&sha256(&common::read(
            "office-ole/dde-test-from-office2016.doc"
        ))),
        "eee37f89a363b5117599262ef4c60dd9550fddc8750ab8712234ab45311c4d2e"
    );
    assert_eq!(doc.size, 23552);
    assert_eq!(doc.workers["ole"]["streams"].as_array().unwrap().len(), 5);
    assert_eq!(doc.workers["olevba"]["dde"].as_array().unwrap().len(), 3);
    assert!(
        !doc.workers.contains_key("mraptor"),
        "no VBA, no mraptor result"
    );
    // Its streams, one level further down.
    assert_eq!(
        r.results
            .iter()
            .filter(|p| p.extracted_by == ["ole"])
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macro_document_through_mraptor() {
    let stoq = engine(&[]);
    let r = stoq
        .scan(
            common::read("office-ole/sample_with_vba.ppt"),
            None,
            None,
            &["mraptor".to_string(), "olevba".to_string()],
        )
        .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let w = &r.results[0].workers;
    assert_eq!(w["mraptor"]["flags"], serde_json::json!(["AutoExec"]));
    assert_eq!(w["mraptor"]["suspicous"], false);
    assert_eq!(w["olevba"]["flags"], "A--");
}

#[test]
fn options_are_validated_when_loading() {
    let empty = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(stoq_plugins_office::registry())
        .base_dir(empty.path())
        .plugin_opt("ole", "max_stream_size", "lots")
        .plugin_opt("olevba", "include_code", "perhaps")
        .build()
        .unwrap();
    let e = stoq.load_plugin("ole").unwrap_err().to_string();
    assert!(e.contains("max_stream_size") && e.contains("lots"), "{e}");
    let e = stoq.load_plugin("olevba").unwrap_err().to_string();
    assert!(e.contains("include_code") && e.contains("perhaps"), "{e}");
    assert!(stoq.load_plugin("rtf").is_ok());
    assert!(stoq.load_plugin("mraptor").is_ok());
}
