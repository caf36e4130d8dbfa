//! `iocextract` worker: defanged indicators of a real e-mail, allow-lists
//! (options and file), charsets, binary payloads, size cap, golden output.

mod common;

use serde_json::json;
use stoq_core::PluginConfig;
use stoq_plugins_email::iocextract::{extract_from_bytes, IocOptions};
use stoq_plugins_email::{extract_iocs, parse_message};

#[test]
fn defanged_iocs_of_plain_iocs_eml_are_refanged() {
    let mail = parse_message(&common::read("plain-iocs.eml")).unwrap();
    let r = extract_iocs(mail.body.as_deref().unwrap(), &IocOptions::default());
    assert_eq!(r.url, ["http://malicious.example.com/payload.exe"]);
    // Domains of URLs and e-mail addresses count too.
    assert_eq!(
        r.domain,
        [
            "malicious.example.com",
            "evil-domain.example.net",
            "example.com"
        ]
    );
    assert_eq!(r.ipv4, ["203.0.113.99"]);
    assert_eq!(r.email, ["attacker@example.com"]);
    assert_eq!(r.md5, ["44d88612fea8a8f36de82e1278abb02f"]);
    assert_eq!(
        r.sha256,
        ["275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"]
    );
    assert_eq!(r.ipv6, ["fe80::1ff:fe23:4567:890a"]);
    assert_eq!(r.mac_address, ["00:1a:2b:3c:4d:5e"]);
    assert!(r.sha1.is_empty() && r.sha512.is_empty());
}

#[tokio::test]
async fn golden_whole_message() {
    let r = common::run_worker("iocextract", &[], &common::read("plain-iocs.eml"))
        .await
        .unwrap();
    common::golden("iocextract-plain-iocs", &r.results.unwrap());
}

#[tokio::test]
async fn allow_lists_from_options_and_file() {
    let data = common::read("plain-iocs.eml");
    let r = common::run_worker(
        "iocextract",
        &[
            ("whitelist_domains", "example.org, *.example.net"),
            ("whitelist_ips", "203.0.113.0/24, fe80::/10"),
        ],
        &data,
    )
    .await
    .unwrap()
    .results
    .unwrap();
    assert_eq!(r["ipv4"], json!(["10.1.2.3", "198.51.100.77"]));
    assert!(r.get("ipv6").is_none());
    assert_eq!(r["domain"], json!(["example.com", "malicious.example.com"]));
    assert_eq!(
        r["email"],
        json!(["analyst@example.com", "attacker@example.com"])
    );

    // The same through a file given by a path relative to the plugin
    // directory, with comments, a hash and a suffix covering a URL host.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("allow.txt"),
        "# allow-list\n10.0.0.0/8\n198.51.100.77 # one host\nexample.com\n\
         44D88612FEA8A8F36DE82E1278ABB02F\n\n",
    )
    .unwrap();
    let cfg = PluginConfig::new("iocextract", [("whitelist_file", "allow.txt")])
        .with_plugin_dir(Some(dir.path().to_path_buf()));
    let opts = IocOptions::from_config(&cfg).unwrap();
    let r = extract_from_bytes(&data, &opts).unwrap();
    assert_eq!(r.ipv4, ["203.0.113.5", "203.0.113.99"]);
    assert!(r.md5.is_empty());
    assert!(r.url.is_empty(), "{:?}", r.url);
    assert_eq!(r.email, ["soc@example.org"]);
    assert!(!r.domain.iter().any(|d| d.ends_with("example.com")));

    // A missing file or a bad range is an option error naming plugin,
    // option and value.
    let cfg = PluginConfig::new("iocextract", [("whitelist_file", "/nonexistent/allow.txt")]);
    let e = IocOptions::from_config(&cfg).unwrap_err();
    assert_eq!(
        (e.plugin.as_str(), e.option.as_str()),
        ("iocextract", "whitelist_file")
    );
    let cfg = PluginConfig::new("iocextract", [("whitelist_ips", "10.0.0.0/99")]);
    let e = IocOptions::from_config(&cfg).unwrap_err();
    assert_eq!(e.value, "10.0.0.0/99");
    let cfg = PluginConfig::new("iocextract", [("max_bytes", "lots")]);
    assert!(IocOptions::from_config(&cfg).is_err());
}

#[test]
fn custom_tld_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tlds.txt"), "# Version 1\nCOM\nINVALID\n").unwrap();
    let cfg = PluginConfig::new(
        "iocextract",
        [(
            "iana_tld_file",
            dir.path().join("tlds.txt").to_str().unwrap(),
        )],
    );
    let opts = IocOptions::from_config(&cfg).unwrap();
    let r = extract_iocs("a.example.com b.example.org c.stoq.invalid", &opts);
    assert_eq!(r.domain, ["a.example.com", "c.stoq.invalid"]);
}

#[tokio::test]
async fn charsets_binary_and_size_cap() {
    // UTF-16LE with a BOM.
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            "see http://bad.example.com/x"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let r = common::run_worker("iocextract", &[], &utf16).await.unwrap();
    assert_eq!(
        r.results.unwrap()["url"],
        json!(["http://bad.example.com/x"])
    );
    // Windows-1252 text around an indicator.
    let latin: &[u8] = b"Gr\xfc\xdfe, bitte 192.0.2.1 pr\xfcfen";
    let r = common::run_worker("iocextract", &[], latin).await.unwrap();
    assert_eq!(r.results.unwrap()["ipv4"], json!(["192.0.2.1"]));
    // Binary payloads and text without findings: no results.
    let pe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00 8.8.8.8 ";
    assert!(common::run_worker("iocextract", &[], pe).await.is_none());
    assert!(common::run_worker("iocextract", &[], b"nothing to see")
        .await
        .is_none());
    // max_bytes: only the head is scanned.
    let text = b"1.1.1.1 and later 2.2.2.2";
    let r = common::run_worker("iocextract", &[("max_bytes", "10")], text)
        .await
        .unwrap();
    assert_eq!(r.results.unwrap(), json!({"ipv4": ["1.1.1.1"]}));
}

#[test]
fn large_text_off_the_runtime_and_dedup() {
    let line = "host evil[.]example[.]com ip 198.51.100.7 url hxxps://evil.example.com/a\n";
    let big = line.repeat(20_000);
    let r = extract_iocs(&big, &IocOptions::default());
    assert_eq!(r.domain, ["evil.example.com"]);
    assert_eq!(r.ipv4, ["198.51.100.7"]);
    assert_eq!(r.url, ["https://evil.example.com/a"]);
}

#[test]
fn mutations_never_panic() {
    let mut seed: u64 = 0x10c;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = common::read("plain-iocs.eml");
    let alphabet = b"[](){}.:@/-x0aF%hHtTpP \n";
    for _ in 0..2000 {
        let mut m = base.clone();
        for _ in 0..(1 + next() % 10) {
            let i = (next() as usize) % m.len();
            m[i] = if next() % 2 == 0 {
                alphabet[(next() as usize) % alphabet.len()]
            } else {
                next() as u8
            };
        }
        let _ = extract_from_bytes(&m, &IocOptions::default());
        let cut = (next() as usize) % m.len();
        let _ = extract_from_bytes(&m[..cut], &IocOptions::default());
    }
}
