//! swfcarve, javaclass, exif and xdpcarve on real files: comparison with
//! expected.json (zlib/lzma, class-file headers, exiftool) and golden
//! outputs.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

// ------------------------------------------------------------------ swfcarve

#[tokio::test]
async fn swfcarve_matches_expected_json() {
    let expected = expected();
    let w = worker("swfcarve", &[]);
    for name in ["swf/claque-beignet-cws.swf", "swf/claque-beignet-zws.swf"] {
        let e = &expected["swf"][name];
        let r = scan_bytes(&w, &read(name)).await.unwrap();
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        assert_eq!(r.extracted.len(), 1, "{name}");
        let x = &r.extracted[0];
        assert_eq!(
            x.content.len() as u64,
            e["uncompressed_fws_size"].as_u64().unwrap()
        );
        assert_eq!(sha256(&x.content), e["uncompressed_fws_sha256"], "{name}");
        assert_eq!(&x.content[..3], b"FWS");
        assert_eq!(x.payload_meta.extra_data["offset"], 0);
        assert_eq!(x.payload_meta.extra_data["swf_version"], e["version"]);
        let found = &r.results.unwrap()["swfs"][0];
        assert_eq!(found["signature"], e["signature"]);
        assert_eq!(found["declared_length"], e["declared_uncompressed_length"]);
        // The extracted FWS is the payload itself: nothing more to carve.
        assert!(scan_bytes(&w, &x.content).await.is_none(), "{name}");
    }
}

#[tokio::test]
async fn swfcarve_golden_embedded_movie() {
    // The ZWS movie inside other data, twice.
    let zws = read("swf/claque-beignet-zws.swf");
    let mut data = b"GIF89a junk before".to_vec();
    data.extend_from_slice(&zws);
    data.extend_from_slice(b"between");
    let second = data.len();
    data.extend_from_slice(&zws);
    let w = worker("swfcarve", &[("swf_headers", "ZWS|CWS")]);
    let r = scan_bytes(&w, &data).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        r.results.unwrap(),
        json!({"swfs": [
            {"offset": 18, "signature": "ZWS", "swf_version": 5, "declared_length": 288769, "extracted": true},
            {"offset": second, "signature": "ZWS", "swf_version": 5, "declared_length": 288769, "extracted": true},
        ]})
    );
    let fws_sha = "6d7bbbd5cde34493cd08759ef76622d86844c7f420eed7c1e9f7aa678ae84b1a";
    assert_eq!(r.extracted.len(), 2);
    for (x, off) in r.extracted.iter().zip([18, second]) {
        assert_eq!(sha256(&x.content), fws_sha);
        assert_eq!(x.payload_meta.extra_data["offset"], off);
    }
    // A truncated copy is reported, not extracted.
    let cut = &zws[..zws.len() / 2];
    let r = scan_bytes(&w, cut).await.unwrap();
    assert!(r.extracted.is_empty());
    assert_eq!(r.results.unwrap()["swfs"][0]["extracted"], false);
    assert_eq!(r.errors.len(), 1);
}

// ------------------------------------------------------------------ javaclass

#[tokio::test]
async fn javaclass_public_vectors() {
    let w = worker("javaclass", &[]);
    let r = scan_bytes(&w, &read("java/TestJavaClass.class"))
        .await
        .unwrap()
        .results
        .unwrap();
    let provided: Vec<&str> = r["provided"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(provided.contains(&"TestJavaClass"));
    assert!(provided.len() >= 4);
    assert!(r["required"].as_array().unwrap().len() >= 2);
    assert!(r["constants"].as_array().unwrap().len() >= 10);
    // Not a class file: no results (the Python plugin raised instead).
    assert!(scan_bytes(&w, b"definitely not a javaclass payload")
        .await
        .is_none());
}

#[tokio::test]
async fn javaclass_versions_match_expected_json() {
    let expected = expected();
    let w = worker("javaclass", &[]);
    for name in ["java/TestJavaClass.class", "java/ReferenceMap.class"] {
        let r = scan_bytes(&w, &read(name)).await.unwrap().results.unwrap();
        let e = &expected["java"][name];
        assert_eq!(r["major_version"], e["major_version"], "{name}");
        assert_eq!(r["minor_version"], e["minor_version"], "{name}");
    }
    let r = scan_bytes(&w, &read("java/ReferenceMap.class"))
        .await
        .unwrap()
        .results
        .unwrap();
    let provided = r["provided"].as_array().unwrap();
    assert_eq!(provided[0], "org.apache.commons.collections.ReferenceMap");
    assert!(provided.contains(&json!(
        "org.apache.commons.collections.ReferenceMap.put(java.lang.Object,java.lang.Object):java.lang.Object"
    )));
    let required = r["required"].as_array().unwrap();
    assert!(required.contains(&json!("java.lang.ref.ReferenceQueue")));
    assert!(required.contains(&json!("java.util.AbstractMap")));
}

#[tokio::test]
async fn javaclass_golden() {
    let w = worker("javaclass", &[]);
    let r = scan_bytes(&w, &read("java/TestJavaClass.class"))
        .await
        .unwrap();
    let c = |id: u32, data: &str| json!({"id": id, "type": "Utf8", "data": data});
    assert_eq!(
        r.results.unwrap(),
        json!({
            "provided": [
                "TestJavaClass",
                "TestJavaClass.TEST_NAME:java.lang.String",
                "TestJavaClass.<init>():void",
                "TestJavaClass.<init>(java.lang.String):void",
                "TestJavaClass.getTest():java.lang.String",
                "TestJavaClass.getTestTwo():java.lang.String"
            ],
            "required": ["java.lang.Object.<init>():void", "java.lang.Object"],
            "constants": [
                c(8, "TEST_NAME"),
                c(9, "Ljava/lang/String;"),
                c(10, "ConstantValue"),
                c(11, "test_string"),
                c(12, "test_string_two"),
                c(16, "LineNumberTable"),
                c(17, "(Ljava/lang/String;)V"),
                c(18, "getTest"),
                c(19, "()Ljava/lang/String;"),
                c(20, "getTestTwo"),
                c(21, "<clinit>"),
                c(22, "SourceFile"),
                c(23, "TestJavaClass.java"),
                c(24, "TestJavaClass"),
                c(25, "StoqTest"),
                {"id": 26, "type": "NameAndType", "data": "#13:#17"},
                {"id": 27, "type": "NameAndType", "data": "#13:#14"},
                c(30, "java/lang/Object"),
            ],
            "major_version": 54,
            "minor_version": 0
        })
    );
}

#[tokio::test]
async fn javaclass_truncations_error_without_panicking() {
    let w = worker("javaclass", &[]);
    let data = read("java/TestJavaClass.class");
    for n in 8..data.len() {
        let p = stoq_core::Payload::new(data[..n].to_vec());
        let r = w.scan(&p, &stoq_core::Request::default()).await;
        // Cutting the trailing attributes still has to fail: the parser
        // reads to the end of the class structure.
        assert!(r.is_err(), "prefix of {n} bytes parsed");
    }
}

// ------------------------------------------------------------------ exif

/// kamadak-exif name → exiftool name, for the tags compared.
const EXIF_NAMES: [(&str, &str); 9] = [
    ("Make", "Make"),
    ("Model", "Model"),
    ("DateTimeOriginal", "DateTimeOriginal"),
    ("DateTime", "ModifyDate"),
    ("Software", "Software"),
    ("ImageDescription", "ImageDescription"),
    ("GPSLatitudeRef", "GPSLatitudeRef"),
    ("GPSLongitudeRef", "GPSLongitudeRef"),
    ("GPSMapDatum", "GPSMapDatum"),
];

#[tokio::test]
async fn exif_matches_exiftool_expected_json() {
    let expected = expected();
    let w = worker("exif", &[]);
    let mut compared = 0;
    for name in [
        "images/gps.jpg",
        "images/jpeg.exif.photoshop.jpg",
        "images/sample.tif",
    ] {
        let e = &expected["exiftool"][name];
        let r = scan_bytes(&w, &read(name)).await.unwrap().results.unwrap();
        assert_eq!(r["ExifByteOrder"], e["ExifByteOrder"], "{name}");
        assert_eq!(r["FileType"], e["FileType"], "{name}");
        for (ours, theirs) in EXIF_NAMES {
            if let Some(v) = e.get(theirs) {
                assert_eq!(&r[ours], v, "{name}: {ours}/{theirs}");
                compared += 1;
            } else {
                assert!(r.get(ours).is_none(), "{name}: {ours} only here");
            }
        }
        for (ours, theirs) in [
            ("GPSLatitudeDecimal", "GPSLatitude"),
            ("GPSLongitudeDecimal", "GPSLongitude"),
        ] {
            match (r.get(ours), e.get(theirs)) {
                (Some(a), Some(b)) => {
                    let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                    assert!((a - b).abs() < 1e-9, "{name}: {ours} {a} vs {b}");
                    compared += 1;
                }
                (None, None) => {}
                other => panic!("{name}: {ours}: {other:?}"),
            }
        }
    }
    assert!(compared >= 12, "only {compared} values compared");
    // GPS processing method: exiftool decodes the character-code prefix too.
    let r = scan_bytes(&w, &read("images/gps.jpg"))
        .await
        .unwrap()
        .results
        .unwrap();
    assert_eq!(
        r["GPSProcessingMethod"],
        expected["exiftool"]["images/gps.jpg"]["GPSProcessingMethod"]
    );
    // PNGs without an eXIf chunk: no EXIF, no results.
    for name in [
        "images/logo-kubuntu.png",
        "images/png_331x90x8_truncated.png",
    ] {
        assert!(scan_bytes(&w, &read(name)).await.is_none(), "{name}");
    }
}

#[tokio::test]
async fn exif_golden_gps_jpeg() {
    let w = worker("exif", &[]);
    let r = scan_bytes(&w, &read("images/gps.jpg")).await.unwrap();
    assert_eq!(
        r.results.unwrap(),
        json!({
            "FileType": "JPEG",
            "ExifByteOrder": "MM",
            "ImageDescription": "030524_2221~01",
            "Make": "KDDI-TS",
            "Model": "A5301T",
            "Orientation": "row 0 at top and column 0 at left",
            "XResolution": "72",
            "YResolution": "72",
            "ResolutionUnit": "inch",
            "YCbCrPositioning": "co-sited",
            "ExifVersion": "2.2",
            "DateTimeOriginal": "2003:05:24 22:21:01",
            "ComponentsConfiguration": "YCbCr_",
            "FlashpixVersion": "1.0",
            "ColorSpace": "sRGB",
            "PixelXDimension": "144",
            "PixelYDimension": "176",
            "GPSVersionID": "2.2.0.0",
            "GPSLatitudeRef": "N",
            "GPSLatitude": "35 deg 36 min 57.67 sec",
            "GPSLongitudeRef": "E",
            "GPSLongitude": "139 deg 41 min 50.34 sec",
            "GPSAltitudeRef": "above sea level",
            "GPSAltitude": "78",
            "GPSTimeStamp": "22:29:14",
            "GPSMapDatum": "WGS-84",
            "GPSProcessingMethod": "HYBRID-FIX",
            "GPSDateStamp": "2003:05:24",
            "GPSLatitudeDecimal": 35.61601944444445,
            "GPSLongitudeDecimal": 139.69731666666667
        })
    );
}

// ------------------------------------------------------------------ xdpcarve

/// An XDP document carrying `pdf` in base64 chunks of 76 characters.
fn xdp_with(payload: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?xfa generator=\"test\"?>\n\
         <xdp:xdp xmlns:xdp=\"http://ns.adobe.com/xdp/\">\n\
         <config xmlns=\"http://www.xfa.org/schema/xci/1.0/\"><present><pdf><version>1.7</version></pdf></present></config>\n\
         <pdf xmlns=\"http://ns.adobe.com/xdp/pdf/\"><document><chunk>\n{}\n</chunk></document></pdf>\n\
         </xdp:xdp>\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

#[tokio::test]
async fn xdpcarve_golden_real_pdf_in_xdp() {
    let pdf = read("pdf/issue-297.pdf");
    let w = worker("xdpcarve", &[]);
    let r = scan_bytes(&w, &xdp_with(&pdf)).await.unwrap();
    assert!(r.results.is_none() && r.errors.is_empty());
    assert_eq!(r.extracted.len(), 1);
    assert_eq!(&r.extracted[0].content[..], &pdf[..]);
    assert_eq!(
        Value::Object(r.extracted[0].payload_meta.extra_data.clone()),
        json!({"element_name": "chunk"})
    );
    // Other elements by option; `version` is not base64 -> raw text.
    let w = worker("xdpcarve", &[("elements", "version, nothing")]);
    let r = scan_bytes(&w, &xdp_with(&pdf)).await.unwrap();
    assert_eq!(r.extracted.len(), 1);
    assert_eq!(&r.extracted[0].content[..], b"1.7");
    assert_eq!(
        r.extracted[0].payload_meta.extra_data["element_name"],
        "version"
    );
    // Not XML / no such element: no results.
    assert!(scan_bytes(&w, &pdf).await.is_none());
    assert!(scan_bytes(&w, b"<a><b>x</b></a>").await.is_none());
    let registry = stoq_plugins_misc::registry();
    let e = (registry.get("xdpcarve").unwrap().build)(&stoq_core::PluginConfig::new(
        "xdpcarve",
        [("elements", " , ")],
    ))
    .unwrap_err();
    assert!(e.to_string().contains("elements"), "{e}");
}
