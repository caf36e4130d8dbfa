//! `exif` worker: the EXIF tags of an image, read natively with
//! kamadak-exif (JPEG, TIFF and TIFF-based raw formats, PNG `eXIf`, WebP,
//! HEIF/HEIC/AVIF).
//!
//! The Python plugin ran ExifTool on any file type; this one covers EXIF in
//! images only (no ExifTool binary, no PDF/Office/XMP/IPTC/ICC metadata).
//! Other payloads, and images without EXIF, give no results (`Ok(None)`).
//!
//! Results, keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `FileType` | `JPEG`, `TIFF`, `PNG`, `WEBP` or `HEIF` |
//! | `ExifByteOrder` | `II` (little-endian) or `MM` (big-endian), as ExifTool |
//! | `<Tag>` | every tag of the primary image (IFD0, Exif, GPS, Interoperability IFDs), named as kamadak-exif names them (the EXIF specification names: `DateTime`, `PixelXDimension`, ...; ExifTool renames some, e.g. `ModifyDate`, `ExifImageWidth`). ASCII values as stored (`2003:05:24 22:21:01`); `UserComment`, `GPSProcessingMethod` and `GPSAreaInformation` decoded from their character-code prefix (`HYBRID-FIX`); others as kamadak-exif displays them (`72`, `inch`, `35 deg 36 min 57.67 sec`). Unknown tags as `Tag_<context>_0x<number>` |
//! | `GPSLatitudeDecimal`, `GPSLongitudeDecimal` | signed decimal degrees (negative south/west), when the GPS position is present |
//! | `IFD1`, ... | `{tag: value}` of further IFDs (IFD1 = thumbnail) |
//! | `warnings` | errors met while parsing the rest (partial result) |

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use exif::{In, Reader, Tag, Value as ExifValue};
use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, ModuleDescriptor, Payload, PluginClass, PluginInstance, PluginResult, Request,
    Worker, WorkerResponse,
};

/// Longest text kept for one value (a maker note can be large).
const MAX_VALUE_CHARS: usize = 4096;

/// The container type of an image kamadak-exif can read, if `data` is one.
pub fn image_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\xFF\xD8") {
        Some("JPEG")
    } else if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        Some("TIFF")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("PNG")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("WEBP")
    } else if data.len() >= 12 && &data[4..8] == b"ftyp" {
        Some("HEIF")
    } else {
        None
    }
}

fn tag_name(tag: Tag) -> String {
    if tag.description().is_some() {
        tag.to_string()
    } else {
        format!("Tag_{:?}_0x{:04x}", tag.context(), tag.number())
    }
}

/// An "encoded string" (UserComment, GPSProcessingMethod,
/// GPSAreaInformation): an 8-byte character-code prefix, then the text.
fn encoded_string(v: &[u8], little_endian: bool) -> Option<String> {
    let (code, rest) = v.split_at_checked(8)?;
    let text = match code {
        b"UNICODE\0" => {
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|c| {
                    if little_endian {
                        u16::from_le_bytes([c[0], c[1]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]])
                    }
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        b"ASCII\0\0\0" | b"JIS\0\0\0\0\0" | b"\0\0\0\0\0\0\0\0" => {
            String::from_utf8_lossy(rest).into_owned()
        }
        _ => return None,
    };
    Some(text.trim_end_matches(['\0', ' ']).to_string())
}

fn value_text(field: &exif::Field, little_endian: bool) -> String {
    let encoded = matches!(
        field.tag,
        Tag::UserComment | Tag::GPSProcessingMethod | Tag::GPSAreaInformation
    );
    let mut s = match &field.value {
        ExifValue::Ascii(parts) => parts
            .iter()
            .map(|p| String::from_utf8_lossy(p).trim_end().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        ExifValue::Undefined(v, _) if encoded => {
            encoded_string(v, little_endian).unwrap_or_else(|| field.display_value().to_string())
        }
        _ => field.display_value().to_string(),
    };
    crate::util::truncate_chars(&mut s, MAX_VALUE_CHARS);
    s
}

/// Degrees/minutes/seconds rationals and a reference letter as signed
/// decimal degrees.
fn gps_decimal(exif: &exif::Exif, value: Tag, reference: Tag, negative: u8) -> Option<f64> {
    let ExifValue::Rational(dms) = &exif.get_field(value, In::PRIMARY)?.value else {
        return None;
    };
    let part = |i: usize| {
        dms.get(i)
            .filter(|r| r.denom != 0)
            .map(|r| r.to_f64())
            .unwrap_or(0.0)
    };
    if dms.is_empty() || dms[0].denom == 0 {
        return None;
    }
    let mut deg = part(0) + part(1) / 60.0 + part(2) / 3600.0;
    if let Some(f) = exif.get_field(reference, In::PRIMARY) {
        if let ExifValue::Ascii(parts) = &f.value {
            if parts.first().and_then(|p| p.first()) == Some(&negative) {
                deg = -deg;
            }
        }
    }
    deg.is_finite().then_some(deg)
}

/// The results for `data` (see the module docs); `None` when it is not an
/// image kamadak-exif reads or it holds no EXIF. Never panics.
pub fn exif_results(data: &[u8]) -> Option<Value> {
    let file_type = image_type(data)?;
    catch_unwind(AssertUnwindSafe(|| read(data, file_type))).ok()?
}

fn read(data: &[u8], file_type: &str) -> Option<Value> {
    let mut reader = Reader::new();
    reader.continue_on_error(true);
    let mut warnings: Vec<String> = Vec::new();
    let exif = match reader.read_from_container(&mut Cursor::new(data)) {
        Ok(e) => e,
        Err(e) => e
            .distill_partial_result(|errors| {
                warnings = errors.iter().map(|e| e.to_string()).collect();
            })
            .ok()?,
    };
    let mut m = Map::new();
    m.insert("FileType".into(), json!(file_type));
    m.insert(
        "ExifByteOrder".into(),
        json!(if exif.little_endian() { "II" } else { "MM" }),
    );
    let mut others: Vec<(u16, Map<String, Value>)> = Vec::new();
    for f in exif.fields() {
        let name = tag_name(f.tag);
        let target = if f.ifd_num == In::PRIMARY {
            &mut m
        } else {
            let n = f.ifd_num.index();
            let idx = match others.iter().position(|(i, _)| *i == n) {
                Some(i) => i,
                None => {
                    others.push((n, Map::new()));
                    others.len() - 1
                }
            };
            &mut others[idx].1
        };
        if !target.contains_key(&name) {
            target.insert(name, json!(value_text(f, exif.little_endian())));
        }
    }
    if m.len() <= 2 && others.is_empty() {
        return None;
    }
    if let Some(lat) = gps_decimal(&exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S') {
        m.insert("GPSLatitudeDecimal".into(), json!(lat));
    }
    if let Some(lon) = gps_decimal(&exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W') {
        m.insert("GPSLongitudeDecimal".into(), json!(lon));
    }
    others.sort_by_key(|(n, _)| *n);
    for (n, fields) in others {
        m.insert(format!("IFD{n}"), Value::Object(fields));
    }
    if !warnings.is_empty() {
        m.insert("warnings".into(), json!(warnings));
    }
    Some(Value::Object(m))
}

/// The `exif` worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExifWorker;

#[async_trait]
impl Worker for ExifWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        if image_type(&payload.content).is_none() {
            return Ok(None);
        }
        let content = payload.content.clone();
        let results = crate::util::run_cpu(content.len(), move || exif_results(&content)).await?;
        Ok(results.map(WorkerResponse::with_results))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("exif", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(ExifWorker)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("EXIF tags of JPEG, TIFF, PNG, WebP and HEIF images (native, no ExifTool)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_images_and_garbage() {
        assert_eq!(exif_results(b"hello"), None);
        assert_eq!(exif_results(b"\xFF\xD8"), None);
        assert_eq!(exif_results(b"II*\0\x08\0\0\0"), None);
        assert_eq!(exif_results(b"MM\0*\xff\xff\xff\xff\0\0"), None);
        assert_eq!(exif_results(b"\x89PNG\r\n\x1a\n\0\0"), None);
    }
}
