//! How the settings are written in a configuration file (feature `serde`).
//!
//! The conventions, the same for every type inside [`ServerConfig`](crate::ServerConfig)
//! and [`ClientConfig`](crate::ClientConfig):
//!
//! - Keys are the Rust field names (snake_case); enum values are snake_case strings
//!   (`send_full = "reject"`, `push_full = "drop_oldest"`).
//! - Every key may be left out and then takes today's default; an unknown key is an error.
//! - Durations are human-readable strings (humantime): `"30s"`, `"250ms"`, `"3m"`,
//!   `"1h 30m"`.
//! - An optional setting (an `Option` in Rust) is turned off, `None`, with the string
//!   `"off"`: `idle_timeout = "off"`, `linger = "off"`, `reconnect = "off"`. Serializing
//!   writes `None` as `"off"` too, so a written configuration names every key.
//! - A rate table needs `per_second`; its `burst` defaults to `per_second`.
//!
//! A client's `[connection]` table starts from the client preset
//! ([`ConnectionConfig::client`](crate::ConnectionConfig::client)), a server's from the
//! server preset: a key left out of the table keeps that side's default.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};
use serde::{Serialize, Serializer};

use crate::admission::Rate;

mod connection;

pub(crate) use connection::client_connection;

/// The string that stands for `None`.
pub(crate) const OFF: &str = "off";

/// `Option<T>` as `"off"` (`None`) or the value itself.
pub(crate) mod off {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_str(OFF),
            Some(v) => v.serialize(s),
        }
    }

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        d.deserialize_any(OrOff::<T>(PhantomData))
    }
}

/// `Option<Duration>` as `"off"` (`None`) or a humantime string (`"30s"`).
pub(crate) mod off_duration {
    use super::*;
    use humantime_serde::Serde;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        super::off::serialize(&value.map(Serde::from), s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let value: Option<Serde<Duration>> = super::off::deserialize(d)?;
        Ok(value.map(Serde::into_inner))
    }
}

/// Takes `"off"` as `None` and hands anything else to `T`, so `T`'s own error (a wrong
/// type, a bad duration, an unknown key of a table) reaches the caller unchanged.
struct OrOff<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OrOff<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"off\" or a value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v == OFF {
            return Ok(None);
        }
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::deserialize(SeqAccessDeserializer::new(seq)).map(Some)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    /// A table with `per_second` and, optionally, `burst` (default: `per_second`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "\"off\" or a table such as { per_second = 200, burst = 400 }"
        )]
        struct RateTable {
            per_second: u32,
            burst: Option<u32>,
        }
        let t = RateTable::deserialize(d)?;
        Ok(Rate {
            per_second: t.per_second,
            burst: t.burst.unwrap_or(t.per_second),
        })
    }
}
