//! Reading a request body within its limits, and parsing it into a bounded JSON value.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Granularity of the request-body budget (`RpcLimits::max_buffered_body_bytes`), bytes.
pub(super) const BUDGET_UNIT_BYTES: usize = 1024;

/// Why a body was not read.
pub(super) enum BodyError {
    TooLarge,
    Busy,
    Broken,
}

/// A request body and its share of the body budget.
pub(super) struct Buffered {
    pub(super) bytes: Vec<u8>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Read a body of at most `max` bytes, taking its bytes from `budget` (in
/// [`BUDGET_UNIT_BYTES`] units) as they arrive, so memory follows what was received, never
/// what was declared.
pub(super) async fn read_body(
    mut body: Incoming,
    max: usize,
    budget: &Arc<Semaphore>,
) -> Result<Buffered, BodyError> {
    let mut bytes = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut held_units = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.len() > max.saturating_sub(bytes.len()) {
            return Err(BodyError::TooLarge);
        }
        let units = (bytes.len() + data.len()).div_ceil(BUDGET_UNIT_BYTES);
        if units > held_units {
            let more = u32::try_from(units - held_units).map_err(|_| BodyError::Busy)?;
            let permit = budget
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BodyError::Busy)?;
            match held.as_mut() {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
            held_units = units;
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Buffered {
        bytes,
        _budget: held,
    })
}

/// Why a body did not parse.
pub(super) enum ParseFailure {
    TooManyValues,
    Json(serde_json::Error),
}

/// Builds a [`Value`] while counting values against a budget.
struct Budgeted<'a> {
    left: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Budgeted<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("too many JSON values"))
            }
        }
    }

    fn again(&self) -> Self {
        Budgeted {
            left: self.left,
            exceeded: self.exceeded,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Value, S::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.again())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Value, M::Error> {
        self.spend()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.again())?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parse a body holding at most `max_values` JSON values (serde_json's nesting limit of 128
/// applies too).
pub(super) fn parse_body(body: &[u8], max_values: usize) -> Result<Value, ParseFailure> {
    let left = Cell::new(max_values);
    let exceeded = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Budgeted {
        left: &left,
        exceeded: &exceeded,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if exceeded.get() => Err(ParseFailure::TooManyValues),
        Err(e) => Err(ParseFailure::Json(e)),
    }
}
