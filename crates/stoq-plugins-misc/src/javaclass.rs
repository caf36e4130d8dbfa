//! `javaclass` worker: the API a Java class file provides and requires, and
//! its constant pool, in the shape of the Python plugin (which used
//! javatools).
//!
//! A small parser of its own reads the class file (magic, version, constant
//! pool, this/super class, interfaces, fields, methods; attributes are
//! skipped). It keeps constant-pool indices and raw descriptors, which the
//! output needs, and it is lenient where a JVM would be strict.
//!
//! Results, keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `provided` | this class, then its public fields `Class.name:type` and public methods `Class.name(args):return`, dotted names |
//! | `required` | classes, fields and methods named by the constant pool (class, field, method and interface-method references) that the class does not define itself; array classes give their element class |
//! | `constants` | `[{id, type, data}]`: constant-pool entries whose text (as javatools prints it) is longer than 6 characters |
//! | `major_version`, `minor_version` | class-file version |
//!
//! Lists keep first-seen order (the Python plugin returned sets, in no
//! particular order). A payload that does not start with the class-file
//! magic (or that is a Mach-O universal binary, which shares it) gives no
//! results (`Ok(None)`); the Python plugin raised an error there. A class
//! file that does not parse is an error.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, ModuleDescriptor, Payload, PluginClass, PluginError, PluginInstance, PluginResult,
    Request, Worker, WorkerResponse,
};

const ACC_PUBLIC: u16 = 0x0001;
/// Constant-pool texts at most this long are left out of `constants`.
const MIN_CONSTANT_CHARS: usize = 7;

/// One constant-pool entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    Utf8(String),
    Integer(i32),
    Float(f32),
    Long(i64),
    Double(f64),
    Class(u16),
    String(u16),
    FieldRef(u16, u16),
    MethodRef(u16, u16),
    InterfaceMethodRef(u16, u16),
    NameAndType(u16, u16),
    MethodHandle(u8, u16),
    MethodType(u16),
    Dynamic(u16, u16),
    InvokeDynamic(u16, u16),
    Module(u16),
    Package(u16),
    /// Index 0, and the slot after a long or double.
    Unusable,
}

/// A field or method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub access_flags: u16,
    pub name: String,
    pub descriptor: String,
}

/// A parsed class file.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassFile {
    pub minor_version: u16,
    pub major_version: u16,
    /// Indexed as in the file: entry 0 is [`Constant::Unusable`].
    pub constants: Vec<Constant>,
    pub access_flags: u16,
    pub this_class: String,
    pub super_class: Option<String>,
    pub interfaces: Vec<String>,
    pub fields: Vec<Member>,
    pub methods: Vec<Member>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("truncated at offset {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u1(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u2(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u4(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u8(&mut self) -> Result<u64, String> {
        Ok(u64::from(self.u4()?) << 32 | u64::from(self.u4()?))
    }
}

/// Whether `data` starts like a class file: the magic and a class-file
/// major version (a Mach-O universal binary has the same magic followed by
/// a small architecture count).
pub fn is_class(data: &[u8]) -> bool {
    data.len() >= 8
        && data[..4] == [0xCA, 0xFE, 0xBA, 0xBE]
        && (45..=100).contains(&u16::from_be_bytes([data[6], data[7]]))
}

/// Java's modified UTF-8 (NUL as C0 80, supplementary characters as
/// surrogate pairs), decoded leniently.
fn modified_utf8(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return s.to_string();
    }
    let mut units: Vec<u16> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (unit, len) = if c & 0x80 == 0 {
            (u16::from(c), 1)
        } else if c & 0xE0 == 0xC0 && i + 1 < b.len() {
            ((u16::from(c & 0x1F) << 6) | u16::from(b[i + 1] & 0x3F), 2)
        } else if c & 0xF0 == 0xE0 && i + 2 < b.len() {
            (
                (u16::from(c & 0x0F) << 12)
                    | (u16::from(b[i + 1] & 0x3F) << 6)
                    | u16::from(b[i + 2] & 0x3F),
                3,
            )
        } else {
            (0xFFFD, 1)
        };
        units.push(unit);
        i += len;
    }
    String::from_utf16_lossy(&units)
}

/// Parse a class file.
pub fn parse_class(data: &[u8]) -> Result<ClassFile, String> {
    let mut c = Cursor { data, pos: 0 };
    if c.u4()? != 0xCAFE_BABE {
        return Err("not a class file".into());
    }
    let minor_version = c.u2()?;
    let major_version = c.u2()?;
    let count = c.u2()?;
    let mut constants = Vec::with_capacity(usize::from(count));
    constants.push(Constant::Unusable);
    while constants.len() < usize::from(count) {
        let tag = c.u1()?;
        let entry = match tag {
            1 => {
                let len = c.u2()?;
                Constant::Utf8(modified_utf8(c.take(usize::from(len))?))
            }
            3 => Constant::Integer(c.u4()? as i32),
            4 => Constant::Float(f32::from_bits(c.u4()?)),
            5 => Constant::Long(c.u8()? as i64),
            6 => Constant::Double(f64::from_bits(c.u8()?)),
            7 => Constant::Class(c.u2()?),
            8 => Constant::String(c.u2()?),
            9 => Constant::FieldRef(c.u2()?, c.u2()?),
            10 => Constant::MethodRef(c.u2()?, c.u2()?),
            11 => Constant::InterfaceMethodRef(c.u2()?, c.u2()?),
            12 => Constant::NameAndType(c.u2()?, c.u2()?),
            15 => Constant::MethodHandle(c.u1()?, c.u2()?),
            16 => Constant::MethodType(c.u2()?),
            17 => Constant::Dynamic(c.u2()?, c.u2()?),
            18 => Constant::InvokeDynamic(c.u2()?, c.u2()?),
            19 => Constant::Module(c.u2()?),
            20 => Constant::Package(c.u2()?),
            t => {
                return Err(format!(
                    "unknown constant type {t} at index {}",
                    constants.len()
                ))
            }
        };
        let wide = matches!(entry, Constant::Long(_) | Constant::Double(_));
        constants.push(entry);
        if wide {
            constants.push(Constant::Unusable);
        }
    }
    let pool = Pool(&constants);
    let access_flags = c.u2()?;
    let this_class = pool
        .class_name(c.u2()?)
        .ok_or("this_class is not a class constant")?;
    let super_class = pool.class_name(c.u2()?);
    let n = c.u2()?;
    let mut interfaces = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        interfaces.extend(pool.class_name(c.u2()?));
    }
    let members = |c: &mut Cursor| -> Result<Vec<Member>, String> {
        let n = c.u2()?;
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let access_flags = c.u2()?;
            let name = pool
                .utf8(c.u2()?)
                .ok_or("member name is not a Utf8 constant")?;
            let descriptor = pool
                .utf8(c.u2()?)
                .ok_or("member descriptor is not a Utf8 constant")?;
            skip_attributes(c)?;
            out.push(Member {
                access_flags,
                name: name.to_string(),
                descriptor: descriptor.to_string(),
            });
        }
        Ok(out)
    };
    let fields = members(&mut c)?;
    let methods = members(&mut c)?;
    skip_attributes(&mut c)?;
    Ok(ClassFile {
        minor_version,
        major_version,
        constants: constants.clone(),
        access_flags,
        this_class,
        super_class,
        interfaces,
        fields,
        methods,
    })
}

fn skip_attributes(c: &mut Cursor) -> Result<(), String> {
    let n = c.u2()?;
    for _ in 0..n {
        c.u2()?;
        let len = c.u4()?;
        c.take(len as usize)?;
    }
    Ok(())
}

/// Constant-pool lookups.
struct Pool<'a>(&'a [Constant]);

impl Pool<'_> {
    fn get(&self, i: u16) -> Option<&Constant> {
        self.0.get(usize::from(i))
    }
    fn utf8(&self, i: u16) -> Option<&str> {
        match self.get(i)? {
            Constant::Utf8(s) => Some(s),
            _ => None,
        }
    }
    /// Dotted class name of a Class constant.
    fn class_name(&self, i: u16) -> Option<String> {
        match self.get(i)? {
            Constant::Class(n) => Some(pretty_class(self.utf8(*n)?)),
            _ => None,
        }
    }
    fn name_and_type(&self, i: u16) -> Option<(&str, &str)> {
        match self.get(i)? {
            Constant::NameAndType(n, t) => Some((self.utf8(*n)?, self.utf8(*t)?)),
            _ => None,
        }
    }
}

fn pretty_class(s: &str) -> String {
    s.replace('/', ".")
}

/// Split a descriptor into its type signatures (`(II)V` → `(II)`, `V`).
fn typeseq(s: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let len = next_sig_len(rest)?;
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    Some(out)
}

fn next_sig_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
    }
    match b.get(i)? {
        b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' | b'V' | b'Z' => Some(i + 1),
        b'L' => Some(i + s[i..].find(';')? + 1),
        b'(' if i == 0 => Some(s.find(')')? + 1),
        _ => None,
    }
}

/// `I` → `int`, `[Ljava/lang/String;` → `java.lang.String[]`,
/// `(IJ)` → `(int,long)`; an unknown signature stays as it is.
fn pretty_type(s: &str) -> String {
    let pretty = || -> Option<String> {
        Some(match s.as_bytes().first()? {
            b'V' => "void".into(),
            b'Z' => "boolean".into(),
            b'C' => "char".into(),
            b'B' => "byte".into(),
            b'S' => "short".into(),
            b'I' => "int".into(),
            b'J' => "long".into(),
            b'D' => "double".into(),
            b'F' => "float".into(),
            b'L' => pretty_class(s.get(1..s.len().checked_sub(1)?)?),
            b'[' => format!("{}[]", pretty_type(&s[1..])),
            b'(' => {
                let inner = s.get(1..s.len().checked_sub(1)?)?;
                let parts: Vec<String> = typeseq(inner)?.into_iter().map(pretty_type).collect();
                format!("({})", parts.join(","))
            }
            _ => return None,
        })
    };
    pretty().unwrap_or_else(|| s.to_string())
}

/// `(Ljava/lang/String;)V` → `("(java.lang.String)", "void")`.
fn pretty_method_descriptor(desc: &str) -> (String, String) {
    match typeseq(desc).as_deref() {
        Some([args, ret]) if args.starts_with('(') => (pretty_type(args), pretty_type(ret)),
        _ => (format!("({desc})"), String::new()),
    }
}

fn member_identifier(class: &str, m: &Member, is_method: bool) -> String {
    if is_method {
        let (args, ret) = pretty_method_descriptor(&m.descriptor);
        format!("{class}.{}{args}:{ret}", m.name)
    } else {
        format!("{class}.{}:{}", m.name, pretty_type(&m.descriptor))
    }
}

impl ClassFile {
    /// This class and its fields and methods (public ones only unless
    /// `private`).
    pub fn provides(&self, private: bool) -> Vec<String> {
        let me = &self.this_class;
        let mut out = vec![me.clone()];
        let members = self
            .fields
            .iter()
            .map(|f| (f, false))
            .chain(self.methods.iter().map(|m| (m, true)));
        for (m, is_method) in members {
            if private || m.access_flags & ACC_PUBLIC != 0 {
                let id = member_identifier(me, m, is_method);
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// What the constant pool references that this class does not define.
    pub fn requires(&self) -> Vec<String> {
        let provided: HashSet<String> = self.provides(true).into_iter().collect();
        let pool = Pool(&self.constants);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for c in &self.constants {
            let pv = match c {
                Constant::Class(n) => pool.utf8(*n).map(pretty_class),
                Constant::FieldRef(cl, nt) => (|| {
                    let (n, t) = pool.name_and_type(*nt)?;
                    Some(format!("{}.{n}:{}", pool.class_name(*cl)?, pretty_type(t)))
                })(),
                Constant::MethodRef(cl, nt) | Constant::InterfaceMethodRef(cl, nt) => (|| {
                    let (n, t) = pool.name_and_type(*nt)?;
                    let (args, ret) = pretty_method_descriptor(t);
                    Some(format!("{}.{n}{args}:{ret}", pool.class_name(*cl)?))
                })(
                ),
                _ => None,
            };
            let Some(mut pv) = pv else {
                continue;
            };
            if pv.starts_with('[') {
                // An array type: keep its element class, drop primitives.
                let elem = pv.trim_start_matches('[');
                match elem.strip_prefix('L').and_then(|e| e.split_once(';')) {
                    Some((class, _)) => pv = class.to_string(),
                    None => continue,
                }
            }
            if !provided.contains(&pv) && seen.insert(pv.clone()) {
                out.push(pv);
            }
        }
        out
    }

    /// `(index, type, text)` of each constant as javatools prints it.
    pub fn pretty_constants(&self) -> Vec<(usize, &'static str, String)> {
        let mut out = Vec::new();
        for (i, c) in self.constants.iter().enumerate() {
            let (t, v) = match c {
                Constant::Unusable => continue,
                Constant::Utf8(s) => ("Utf8", python_repr_inner(s)),
                Constant::Integer(v) => ("int", v.to_string()),
                Constant::Float(v) => ("float", format!("{v:.6}f")),
                Constant::Long(v) => ("long", format!("{v}l")),
                Constant::Double(v) => ("double", format!("{v:.6}d")),
                Constant::Class(v) => ("class", format!("#{v}")),
                Constant::String(v) => ("String", format!("#{v}")),
                Constant::FieldRef(a, b) => ("Field", format!("#{a}.#{b}")),
                Constant::MethodRef(a, b) => ("Method", format!("#{a}.#{b}")),
                Constant::InterfaceMethodRef(a, b) => ("InterfaceMethod", format!("#{a}.#{b}")),
                Constant::NameAndType(a, b) => ("NameAndType", format!("#{a}:#{b}")),
                Constant::MethodHandle(a, b) => ("MethodHandle", format!("({a}, {b})")),
                Constant::MethodType(v) => ("MethodType", v.to_string()),
                Constant::Dynamic(a, b) => ("Dynamic", format!("({a}, {b})")),
                Constant::InvokeDynamic(a, b) => ("InvokeDynamic", format!("({a}, {b})")),
                Constant::Module(v) => ("Module", v.to_string()),
                Constant::Package(v) => ("Package", v.to_string()),
            };
            out.push((i, t, v));
        }
        out
    }

    /// The worker results.
    pub fn results(&self) -> Value {
        let constants: Vec<Value> = self
            .pretty_constants()
            .into_iter()
            .filter(|(_, _, v)| v.chars().count() >= MIN_CONSTANT_CHARS)
            .map(|(id, t, data)| json!({"id": id, "type": t, "data": data}))
            .collect();
        let mut m = Map::new();
        m.insert("provided".into(), json!(self.provides(false)));
        m.insert("required".into(), json!(self.requires()));
        m.insert("constants".into(), Value::Array(constants));
        m.insert("major_version".into(), json!(self.major_version));
        m.insert("minor_version".into(), json!(self.minor_version));
        Value::Object(m)
    }
}

/// Python's `repr(s)[1:-1]`: the text between the quotes.
fn python_repr_inner(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The `javaclass` worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct JavaClass;

#[async_trait]
impl Worker for JavaClass {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        if !is_class(&payload.content) {
            return Ok(None);
        }
        let content = payload.content.clone();
        let parsed = crate::util::run_cpu(content.len(), move || {
            parse_class(&content).map(|c| c.results())
        })
        .await?;
        match parsed {
            Ok(results) => Ok(Some(WorkerResponse::with_results(results))),
            Err(e) => Err(PluginError::new(format!(
                "Unable to parse payload as a Java class: {e}"
            ))),
        }
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("javaclass", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(JavaClass)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Java class file: provided and required API, constant pool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors() {
        assert_eq!(pretty_type("I"), "int");
        assert_eq!(pretty_type("[[Ljava/lang/String;"), "java.lang.String[][]");
        assert_eq!(
            pretty_type("(IJLjava/util/Map;)"),
            "(int,long,java.util.Map)"
        );
        assert_eq!(pretty_type("Q"), "Q");
        assert_eq!(
            pretty_method_descriptor("(Ljava/lang/String;)V"),
            ("(java.lang.String)".to_string(), "void".to_string())
        );
        assert_eq!(pretty_method_descriptor("()[I").1, "int[]");
        assert_eq!(pretty_method_descriptor("(").0, "(()");
    }

    #[test]
    fn python_repr() {
        assert_eq!(python_repr_inner("plain"), "plain");
        assert_eq!(python_repr_inner("it's"), "it's");
        assert_eq!(python_repr_inner("'\""), "\\'\"");
        assert_eq!(python_repr_inner("a\tb\\\u{1}é"), "a\\tb\\\\\\x01é");
    }

    #[test]
    fn magic_checks() {
        assert!(!is_class(b"definitely not a javaclass payload"));
        // Mach-O universal binary: same magic, 2 architectures.
        assert!(!is_class(b"\xca\xfe\xba\xbe\x00\x00\x00\x02rest"));
        assert!(is_class(b"\xca\xfe\xba\xbe\x00\x00\x00\x34"));
        assert!(parse_class(b"\xca\xfe\xba\xbe\x00\x00\x00\x34").is_err());
    }

    #[test]
    fn modified_utf8_decoding() {
        assert_eq!(modified_utf8(b"a\xc0\x80b"), "a\0b");
        // U+1F600 as a CESU-8 surrogate pair.
        assert_eq!(modified_utf8(b"\xed\xa0\xbd\xed\xb8\x80"), "\u{1F600}");
    }
}
