//! Model params as requests send them, parsed once at the edge into each
//! model's typed params: unknown and ill-typed params are refused with a
//! message naming the field. The field types here check their own range,
//! so a model's params type is its whole validation.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::ModelError;

/// The `params` object of a request.
pub type RawParams = Map<String, Value>;

/// `raw` as the params type `T`; an error names the param at fault
/// (`params.epochs must be an integer from 1 to 200, got 0`).
pub fn parse<T: DeserializeOwned>(raw: &RawParams) -> Result<T, ModelError> {
    let value = Value::Object(raw.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let at = if path == "." || path.is_empty() {
            "params".to_string()
        } else {
            format!("params.{path}")
        };
        // Range messages read as a sentence after the name, and a message
        // about one entry of the param names it (`.AAPL must be ...`).
        let joined = if message.starts_with("must ") || message.starts_with("is ") {
            format!("{at} {message}")
        } else if message.starts_with('.') {
            format!("{at}{message}")
        } else {
            format!("{at}: {message}")
        };
        ModelError::InvalidInput(joined)
    })
}

/// The params a params type reads, as serde names them: a batch hands
/// each model only these, so the list cannot fall behind the type.
pub fn names_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The deserializer records the fields it is asked for, then gives up.
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("a params type is a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(Self::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A param read as JSON and picked by `pick`, or refused with "must be
/// `expected`, got <the value as sent>".
fn read<'de, D, T>(
    d: D,
    expected: impl fmt::Display,
    pick: impl FnOnce(&Value) -> Option<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    pick(&value).ok_or_else(|| D::Error::custom(format!("must be {expected}, got {value}")))
}

/// Declares [`Bounds`] markers: `bounds!(Threshold: 0.0, 0.1, "0 to 0.1");`.
macro_rules! bounds {
    ($($(#[$doc:meta])* $name:ident: $min:expr, $max:expr, $text:expr;)+) => {$(
        $(#[$doc])*
        pub struct $name;
        impl $crate::models::params::Bounds for $name {
            const MIN: f64 = $min;
            const MAX: f64 = $max;
            const TEXT: &'static str = $text;
        }
    )+};
}
pub(crate) use bounds;

/// Declares [`Expected`] markers: `expected!(AString: "a string");`.
macro_rules! expected {
    ($($name:ident: $text:expr;)+) => {$(
        pub struct $name;
        impl $crate::models::params::Expected for $name {
            const TEXT: &'static str = $text;
        }
    )+};
}
pub(crate) use expected;

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Count<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Count<MIN, MAX> {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = format!("an integer from {MIN} to {MAX}");
        read(d, expected, |v| {
            v.as_u64().filter(|n| (MIN..=MAX).contains(n)).map(Count)
        })
    }
}

/// Bounds of a [`Number`].
pub trait Bounds {
    const MIN: f64;
    const MAX: f64;
    /// How the bounds read in a message (`1e-6 to 0.1`).
    const TEXT: &'static str;
}

/// A number within `B`'s bounds.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Number<B: Bounds>(pub f64, #[serde(skip)] PhantomData<B>);

// By hand: derives would ask the same of the marker `B`.
impl<B: Bounds> Clone for Number<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Bounds> Copy for Number<B> {}

impl<B: Bounds> PartialEq for Number<B> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<B: Bounds> fmt::Debug for Number<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<B: Bounds> Number<B> {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl<'de, B: Bounds> Deserialize<'de> for Number<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d, format!("a number from {}", B::TEXT), |v| {
            v.as_f64()
                .filter(|x| (B::MIN..=B::MAX).contains(x))
                .map(|x| Number(x, PhantomData))
        })
    }
}

/// What a [`Given`] value must be, as its message says it.
pub trait Expected {
    /// e.g. `a number (per period)`.
    const TEXT: &'static str;
}

/// A value of type `T`, refused with "must be `E::TEXT`, got ..." when it
/// is not one.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Given<T, E>(pub T, #[serde(skip)] PhantomData<E>);

impl<T: Clone, E> Clone for Given<T, E> {
    fn clone(&self) -> Self {
        Given(self.0.clone(), PhantomData)
    }
}

impl<T: PartialEq, E> PartialEq for Given<T, E> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T: fmt::Debug, E> fmt::Debug for Given<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T, E> Given<T, E> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<'de, T: DeserializeOwned, E: Expected> Deserialize<'de> for Given<T, E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d, E::TEXT, |v| {
            serde_json::from_value(v.clone())
                .ok()
                .map(|v| Given(v, PhantomData))
        })
    }
}

expected! {
    NonNegativeInteger: "a non-negative integer";
    TrueOrFalse: "true or false";
}

/// A seed for a model's random start.
pub type Seed = Given<u64, NonNegativeInteger>;

/// A yes or no.
pub type Flag = Given<bool, TrueOrFalse>;

bounds! {
    OpenUnit: 1e-9, 1.0 - 1e-9, "0 to 1, both exclusive";
}

/// The coverage a forecast's prediction interval aims at, in (0, 1).
pub type IntervalLevel = Number<OpenUnit>;

/// The level asked for, else [`DEFAULT_LEVEL`](super::interval::DEFAULT_LEVEL).
pub fn level_or_default(level: Option<IntervalLevel>) -> f64 {
    level.map_or(super::interval::DEFAULT_LEVEL, Number::get)
}

/// Periods ahead a forecast is for, 1 to 20: an integer, or the legacy
/// form `"5_period"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Horizon(usize);

/// The longest horizon any model forecasts.
const MAX_HORIZON: u64 = 20;

impl Horizon {
    pub const ONE: Horizon = Horizon(1);

    /// `periods` ahead, when within 1..=20.
    pub fn new(periods: usize) -> Option<Self> {
        (1..=MAX_HORIZON as usize)
            .contains(&periods)
            .then_some(Horizon(periods))
    }

    pub fn periods(self) -> usize {
        self.0
    }

    /// The legacy spelling, `"1_period"`.
    pub fn label(self) -> String {
        format!("{}_period", self.0)
    }

    /// Parses the legacy spelling back.
    pub fn from_label(label: &str) -> Option<Self> {
        label
            .strip_suffix("_period")
            .and_then(|n| n.parse().ok())
            .and_then(Horizon::new)
    }
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Horizon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = format!("an integer from 1 to {MAX_HORIZON}");
        read(d, expected, |v| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(Horizon::new)
                .or_else(|| v.as_str().and_then(Horizon::from_label))
        })
    }
}

/// The horizon a request names under either of its keys,
/// `prediction_horizon` (first) or `horizon`, with the key it came under.
pub fn either_horizon(
    prediction_horizon: Option<Horizon>,
    horizon: Option<Horizon>,
) -> Option<(&'static str, Horizon)> {
    prediction_horizon
        .map(|h| ("prediction_horizon", h))
        .or_else(|| horizon.map(|h| ("horizon", h)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_params_type_names_its_own_fields() {
        assert_eq!(
            names_of::<Example>(),
            ["window", "prediction_horizon", "horizon"]
        );
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        window: Option<Count<10, 500>>,
        prediction_horizon: Option<Horizon>,
        horizon: Option<Horizon>,
    }

    fn raw(v: Value) -> RawParams {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_horizon_form_reads_the_same() {
        for form in [json!(3), json!("3_period")] {
            let h: Horizon = serde_json::from_value(form).unwrap();
            assert_eq!((h.periods(), h.label()), (3, "3_period".to_string()));
        }
        for bad in [json!(0), json!(21), json!("x_period"), json!(1.5)] {
            assert!(serde_json::from_value::<Horizon>(bad).is_err());
        }
    }

    #[test]
    fn errors_name_the_param_and_unknown_ones_are_refused() {
        let err = parse::<Example>(&raw(json!({"window": 5}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "params.window must be an integer from 10 to 500, got 5"
        );
        let err = parse::<Example>(&raw(json!({"horizon": "soon"}))).unwrap_err();
        assert!(err.to_string().contains("horizon"), "{err}");
        let err = parse::<Example>(&raw(json!({"epoch": 3}))).unwrap_err();
        assert!(err.to_string().contains("epoch"), "{err}");
        let ok = parse::<Example>(&raw(json!({"window": null, "prediction_horizon": 2}))).unwrap();
        assert!(ok.window.is_none());
        let given = either_horizon(ok.prediction_horizon, ok.horizon);
        assert_eq!(
            given,
            Some(("prediction_horizon", Horizon::new(2).unwrap()))
        );
    }
}
