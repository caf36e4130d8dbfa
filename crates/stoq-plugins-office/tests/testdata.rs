//! The test data is what its README says it is.

mod common;

use stoq_core::hashing::{hex, sha256};

#[test]
fn files_match_readme_and_expected_json() {
    let readme = std::fs::read_to_string(common::testdata().join("README.md")).unwrap();
    let expected = common::expected();
    let mut n = 0;
    for line in readme.lines().filter(|l| l.starts_with("- `")) {
        let parts: Vec<&str> = line.split(" | ").collect();
        let path = parts[0].trim_start_matches("- `").trim_end_matches('`');
        let sha = parts[1].trim_matches('`');
        let data = common::read(path);
        assert_eq!(hex(&sha256(&data)), sha, "{path}");
        assert_eq!(expected["hashes"][path]["sha256"], sha, "{path}");
        assert_eq!(expected["hashes"][path]["size"], data.len(), "{path}");
        n += 1;
    }
    assert_eq!(n, 51);
    assert_eq!(expected["hashes"].as_object().unwrap().len(), 51);
}
