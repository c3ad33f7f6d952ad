//! `price_data` as a request sends it, read straight into numbers while the
//! body is parsed: an array of closes becomes a `Vec<f64>` with no tree of
//! JSON values in between (a 500-asset body holds 600 000 closes). What is
//! not a number is kept as JSON, so the refusal in `input.rs` can show it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// The request's `price_data`, any JSON accepted here and judged later
/// against what the model takes.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceData {
    /// An array: one series of closes.
    Series(Closes),
    /// An object `{symbol: closes}`, ordered by symbol as a JSON object
    /// reads (a symbol sent twice keeps its last series).
    BySymbol(BTreeMap<String, Closes>),
    /// Anything else.
    Other(Value),
}

/// One series as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Closes {
    /// An array of numbers only.
    Numbers(Vec<f64>),
    /// An array of `len` entries whose entry `index` (the first such) is
    /// not a number.
    NotNumbers {
        len: usize,
        index: usize,
        entry: Value,
    },
    /// Not an array.
    NotArray(Value),
}

impl From<&Value> for Closes {
    fn from(value: &Value) -> Self {
        let Value::Array(items) = value else {
            return Closes::NotArray(value.clone());
        };
        let mut numbers = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item.as_f64() {
                Some(x) => numbers.push(x),
                None => {
                    return Closes::NotNumbers {
                        len: items.len(),
                        index,
                        entry: item.clone(),
                    }
                }
            }
        }
        Closes::Numbers(numbers)
    }
}

impl<'de> Deserialize<'de> for PriceData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Reader::Top.deserialize(d)? {
            Read::Closes(closes) => PriceData::Series(closes),
            Read::BySymbol(map) => PriceData::BySymbol(map),
            Read::Number(x) => PriceData::Other(number(x)),
            Read::Json(value) => PriceData::Other(value),
        })
    }
}

/// What is being read: the whole `price_data`, one series, or one entry.
#[derive(Clone, Copy, PartialEq)]
enum Reader {
    Top,
    Series,
    Entry,
}

enum Read {
    Number(f64),
    Closes(Closes),
    BySymbol(BTreeMap<String, Closes>),
    Json(Value),
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

impl Reader {
    /// A number, as `Value::as_f64` would read it.
    fn number(self, x: f64, json: impl FnOnce() -> Value) -> Read {
        if self == Reader::Entry {
            Read::Number(x)
        } else {
            Read::Json(json())
        }
    }

    fn series(read: Read) -> Closes {
        match read {
            Read::Closes(closes) => closes,
            Read::Number(x) => Closes::NotArray(number(x)),
            Read::Json(value) => Closes::NotArray(value),
            Read::BySymbol(_) => unreachable!("objects are read as such only at the top"),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Reader {
    type Value = Read;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Read, E> {
        Ok(Read::Json(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Read, E> {
        Ok(self.number(v as f64, || Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Read, E> {
        Ok(self.number(v as f64, || Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Read, E> {
        Ok(self.number(v, || number(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Read, E> {
        Ok(Read::Json(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Read, E> {
        Ok(Read::Json(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Read, E> {
        Ok(Read::Json(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Read, E> {
        Ok(Read::Json(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        if self == Reader::Entry {
            return Value::deserialize(SeqAccessDeserializer::new(seq)).map(Read::Json);
        }
        let mut numbers = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(entry) = seq.next_element_seed(Reader::Entry)? {
            match entry {
                Read::Number(x) => numbers.push(x),
                Read::Json(entry) => {
                    // The rest is only counted: the refusal gives the length.
                    let index = numbers.len();
                    let mut len = index + 1;
                    while seq.next_element::<IgnoredAny>()?.is_some() {
                        len += 1;
                    }
                    return Ok(Read::Closes(Closes::NotNumbers { len, index, entry }));
                }
                Read::Closes(_) | Read::BySymbol(_) => {
                    unreachable!("an entry is read as a number or as JSON")
                }
            }
        }
        Ok(Read::Closes(Closes::Numbers(numbers)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        if self != Reader::Top {
            return Value::deserialize(MapAccessDeserializer::new(map)).map(Read::Json);
        }
        let mut series = BTreeMap::new();
        while let Some(symbol) = map.next_key::<String>()? {
            let closes = Reader::series(map.next_value_seed(Reader::Series)?);
            series.insert(symbol, closes);
        }
        Ok(Read::BySymbol(series))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> PriceData {
        serde_json::from_str(text).unwrap()
    }

    /// The typed read agrees with reading the JSON tree first.
    fn same_as_tree(text: &str) {
        let tree: Value = serde_json::from_str(text).unwrap();
        let expected = match &tree {
            Value::Array(_) => PriceData::Series(Closes::from(&tree)),
            Value::Object(map) => PriceData::BySymbol(
                map.iter()
                    .map(|(k, v)| (k.clone(), Closes::from(v)))
                    .collect(),
            ),
            other => PriceData::Other(other.clone()),
        };
        assert_eq!(read(text), expected, "{text}");
    }

    #[test]
    fn numbers_are_read_as_the_json_tree_reads_them() {
        for text in [
            "[1, 2.5, -3, 1e300, 18446744073709551615, 123456789012345678901234567890]",
            r#"{"B": [1.0, 2.0], "A": [3, 4]}"#,
            "[]",
            "{}",
            r#""AAPL""#,
            "42",
            "true",
        ] {
            same_as_tree(text);
        }
        assert_eq!(
            read("[1, 2]"),
            PriceData::Series(Closes::Numbers(vec![1.0, 2.0]))
        );
    }

    #[test]
    fn the_first_entry_that_is_not_a_number_is_kept_with_the_length() {
        for text in [
            r#"[1, "2", 3, null]"#,
            r#"[1, 2, [3], {"a": 1}]"#,
            "[null]",
            r#"{"A": [1, true], "B": {"x": [1]}, "C": 5, "D": "x", "E": null}"#,
        ] {
            same_as_tree(text);
        }
        assert_eq!(
            read(r#"[1, "2", 3, null]"#),
            PriceData::Series(Closes::NotNumbers {
                len: 4,
                index: 1,
                entry: json!("2")
            })
        );
    }

    #[test]
    fn symbols_are_ordered_and_a_repeated_one_keeps_its_last_series() {
        let data = read(r#"{"MSFT": [1], "AAPL": [2], "MSFT": [3]}"#);
        let PriceData::BySymbol(map) = data else {
            panic!("an object")
        };
        assert_eq!(map.keys().collect::<Vec<_>>(), ["AAPL", "MSFT"]);
        assert_eq!(map["MSFT"], Closes::Numbers(vec![3.0]));
    }

    #[test]
    fn a_flattened_body_reads_the_same() {
        #[derive(Deserialize)]
        struct Inner {
            price_data: Option<PriceData>,
        }
        #[derive(Deserialize)]
        struct Outer {
            #[serde(flatten)]
            inner: Inner,
        }
        let text = r#"{"price_data": {"A": [1, 2.5], "B": [1, "x"]}}"#;
        let outer: Outer = serde_json::from_str(text).unwrap();
        let direct: Inner = serde_json::from_str(text).unwrap();
        assert_eq!(outer.inner.price_data, direct.price_data);
        let none: Outer = serde_json::from_str(r#"{"price_data": null}"#).unwrap();
        assert_eq!(none.inner.price_data, None);
    }
}
