//! The JSON layer: `miniserde`'s [`Value`], parser and printer (chosen over
//! `serde_json` for size, docs/design.md), plus the few accessors and the object
//! builder the other modules share. Objects are `BTreeMap`s, so output keys come
//! out sorted, exactly as `serde_json::Value` printed them.

pub use miniserde::json::{Array, Number, Object, Value};

/// The deepest nesting of arrays and objects accepted: serde_json's default limit.
/// AliDNS answers, the state file and GoEdge requests nest three or four levels;
/// miniserde has no limit of its own (it parses with a heap stack), so without
/// this a 32 KiB `serve` body of `[[[[...` would build 16,000 levels, each a few
/// heap blocks, in every worker that reads one.
pub const MAX_DEPTH: usize = 127;

/// Parses one JSON document; None for anything that is not exactly one value, or
/// that nests deeper than [`MAX_DEPTH`].
pub fn parse(text: &str) -> Option<Value> {
    if !nesting_within(text, MAX_DEPTH) {
        return None;
    }
    miniserde::json::from_str(text).ok()
}

/// Whether no `[`/`{` outside a string literal is deeper than `max`: a bound on
/// the work and memory of the parse, checked first. It only looks at brackets
/// and quotes; whether the text is JSON at all is the parser's call.
fn nesting_within(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses a request or file body, which must also be UTF-8.
pub fn parse_bytes(body: &[u8]) -> Option<Value> {
    parse(std::str::from_utf8(body).ok()?)
}

/// The compact encoding (no spaces), strings escaped as `serde_json` does.
pub fn to_string(v: &Value) -> String {
    miniserde::json::to_string(v)
}

/// The compact encoding of a string, quotes included.
pub fn quote(s: &str) -> String {
    miniserde::json::to_string(s)
}

/// The `serde_json::Value` accessors the modules use, with the same meaning.
pub trait ValueExt {
    /// A member of an object; None for a missing key or a non-object.
    fn get(&self, key: &str) -> Option<&Value>;
    /// The text of a string value.
    fn as_str(&self) -> Option<&str>;
    /// An integer that fits an i64 (not a float).
    fn as_i64(&self) -> Option<i64>;
    /// A non-negative integer (not a float).
    fn as_u64(&self) -> Option<u64>;
    /// The members of an object.
    fn as_object(&self) -> Option<&Object>;
}

impl ValueExt for Value {
    fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(Number::I64(n)) => Some(*n),
            Value::Number(Number::U64(n)) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(Number::U64(n)) => Some(*n),
            Value::Number(Number::I64(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// What may go into a JSON document built with [`object!`].
pub trait ToJson {
    /// This value as JSON.
    fn to_json(&self) -> Value;
}

impl ToJson for str {
    fn to_json(&self) -> Value {
        Value::String(self.to_owned())
    }
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ToJson for i64 {
    fn to_json(&self) -> Value {
        Value::Number(Number::I64(*self))
    }
}

impl ToJson for u64 {
    fn to_json(&self) -> Value {
        Value::Number(Number::U64(*self))
    }
}

impl ToJson for u32 {
    fn to_json(&self) -> Value {
        Value::Number(Number::U64((*self).into()))
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn to_json(&self) -> Value {
        (**self).to_json()
    }
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}

/// A JSON object from `{"key": expr, "key" => expr}`: a `:` member is borrowed and
/// converted with [`ToJson`], a `=>` member is a [`Value`] moved in as it is. The
/// keys print sorted, whatever order they are written in.
macro_rules! object {
    ({}) => { $crate::json::Value::Object($crate::json::Object::new()) };
    ({ $($key:literal $how:tt $value:expr),* $(,)? }) => {{
        let mut o = $crate::json::Object::new();
        $(o.insert(String::from($key), $crate::json::object!(@member $how $value));)*
        $crate::json::Value::Object(o)
    }};
    (@member : $value:expr) => { $crate::json::ToJson::to_json(&$value) };
    (@member => $value:expr) => { $value };
}
pub(crate) use object;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_what_serde_json_printed() {
        let v = object!({"b": "x\"\\\n\t\u{1}é中", "a": -3i64, "c": 18_446_744_073_709_551_615u64,
            "d": Option::<i64>::None, "e": vec![true, false], "f" => object!({})});
        let want = r#"{"a":-3,"b":"x\"\\\n\t\u0001é中","c":18446744073709551615,"d":null,"e":[true,false],"f":{}}"#;
        assert_eq!(to_string(&v), want);
        assert_eq!(
            to_string(&v),
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(want).unwrap()).unwrap()
        );
        assert_eq!(quote("a/b\u{8}\u{c}\r"), r#""a/b\b\f\r""#);
        assert_eq!(quote("\u{7f}"), "\"\u{7f}\"");
    }

    #[test]
    fn reads_numbers_like_serde_json() {
        let v = parse(r#"{"u":18446744073709551615,"i":-9223372036854775808,"f":1.5,"e":1e3}"#);
        let v = v.unwrap();
        let n = |k: &str| v.get(k).unwrap();
        assert_eq!(n("u").as_u64(), Some(u64::MAX));
        assert_eq!(n("u").as_i64(), None);
        assert_eq!(n("i").as_i64(), Some(i64::MIN));
        assert_eq!(n("i").as_u64(), None);
        assert_eq!(n("f").as_i64(), None);
        assert!(matches!(n("f"), Value::Number(Number::F64(f)) if *f == 1.5));
        assert!(matches!(n("e"), Value::Number(Number::F64(f)) if *f == 1000.0));
        assert_eq!(parse("1e400").is_none(), serde_json::from_str::<serde_json::Value>("1e400").is_err());
    }

    #[test]
    fn rejects_what_is_not_one_document() {
        for bad in ["", "{", "{} {}", "[1,]", "{\"a\":1,}", "'a'", "nul", "\"\\ud800\"", "01"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(parse_bytes(b"\"\xff\"").is_none());
        assert!(parse(" {\"a\" : [ 1 , {} ] } \n").is_some());
    }

    /// The nesting limit is serde_json's: 127 levels are read, 128 are not, and
    /// brackets inside strings (escaped quotes included) do not count.
    #[test]
    fn nesting_is_bounded_like_serde_json() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        for (text, ok) in [(nested(MAX_DEPTH), true), (nested(MAX_DEPTH + 1), false), (nested(100_000), false)]
            .into_iter()
            .chain([(objects(MAX_DEPTH), true), (objects(MAX_DEPTH + 1), false)])
        {
            assert_eq!(parse(&text).is_some(), ok, "{}", text.len());
            assert_eq!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), ok, "{}", text.len());
        }
        let in_string =
            format!(r#"{{"v":"{}\"{}","w":[{}]}}"#, "[".repeat(500), "{".repeat(500), ["[]"; 500].join(","));
        assert!(parse(&in_string).is_some());
        assert!(parse(r#"["\\"]"#).is_some());
        assert!(parse(&format!(r#"["\\",{}]"#, nested(MAX_DEPTH))).is_none());
    }

    #[test]
    fn accessors() {
        let v = parse(r#"{"s":"t","o":{"k":1},"a":[1]}"#).unwrap();
        assert_eq!(v.get("s").and_then(ValueExt::as_str), Some("t"));
        assert_eq!(v.get("o").and_then(|o| o.get("k")).and_then(ValueExt::as_u64), Some(1));
        assert!(v.get("a").unwrap().get("0").is_none());
        assert!(v.get("missing").is_none());
        assert!(v.get("s").unwrap().as_object().is_none());
    }

    /// AliDNS fields read as text (`string` in alidns.rs) print a number the way
    /// `serde_json` did, floats and integers beyond u64 included.
    #[test]
    fn numbers_print_like_serde_json() {
        for t in ["7", "-7", "1.0", "1.5", "1e20", "0.1", "1e-7", "123456789012345678901234", "-0.0", "2.5e15"] {
            let Some(Value::Number(ours)) = parse(t) else { panic!("{t}") };
            let theirs = serde_json::from_str::<serde_json::Number>(t).unwrap();
            assert_eq!(ours.to_string(), theirs.to_string(), "{t}");
        }
    }
}
