//! Reading a [`ConnectionConfig`] table over a preset: the server's for
//! `ConnectionConfig`'s own `Deserialize` (its `Default`), the client's for
//! `ClientConfig::connection`. A derived `#[serde(default)]` can start only from
//! `Default`, which is the server preset, so a client's partial `[connection]` table would
//! lose the client's heartbeats; the preset is therefore an argument here (a
//! `DeserializeSeed`), with no state outside the call.
//!
//! Serialization stays derived. A field added to `ConnectionConfig` must get its key here
//! too: `every_field_has_a_key` below stops compiling until it does.

use std::fmt;
use std::time::Duration;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::config::{ConnectionConfig, Linger};

/// The keys of a `[connection]` table, in declaration order.
const FIELDS: &[&str] = &[
    "marks",
    "max_frame_len",
    "peer_max_frame_len",
    "heartbeat_interval",
    "idle_timeout",
    "liveness",
    "read_timeout",
    "write_timeout",
    "release_buffers_after",
    "send_queue_limit",
    "send_full",
    "max_in_flight",
    "max_queued_events",
    "read_chunk",
    "linger",
];

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Marks,
    MaxFrameLen,
    PeerMaxFrameLen,
    HeartbeatInterval,
    IdleTimeout,
    Liveness,
    ReadTimeout,
    WriteTimeout,
    ReleaseBuffersAfter,
    SendQueueLimit,
    SendFull,
    MaxInFlight,
    MaxQueuedEvents,
    ReadChunk,
    Linger,
}

/// A table read over this preset: each key present replaces the preset's value.
struct OverPreset(ConnectionConfig);

impl<'de> DeserializeSeed<'de> for OverPreset {
    type Value = ConnectionConfig;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ConnectionConfig, D::Error> {
        d.deserialize_struct("ConnectionConfig", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for OverPreset {
    type Value = ConnectionConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a connection table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConnectionConfig, A::Error> {
        let mut c = self.0;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Marks => c.marks = map.next_value()?,
                Field::MaxFrameLen => c.max_frame_len = map.next_value()?,
                Field::PeerMaxFrameLen => c.peer_max_frame_len = map.next_value()?,
                Field::HeartbeatInterval => c.heartbeat_interval = off_duration(&mut map)?,
                Field::IdleTimeout => c.idle_timeout = off_duration(&mut map)?,
                Field::Liveness => c.liveness = map.next_value()?,
                Field::ReadTimeout => c.read_timeout = off_duration(&mut map)?,
                Field::WriteTimeout => c.write_timeout = off_duration(&mut map)?,
                Field::ReleaseBuffersAfter => c.release_buffers_after = off_duration(&mut map)?,
                Field::SendQueueLimit => c.send_queue_limit = map.next_value()?,
                Field::SendFull => c.send_full = map.next_value()?,
                Field::MaxInFlight => c.max_in_flight = map.next_value()?,
                Field::MaxQueuedEvents => c.max_queued_events = map.next_value()?,
                Field::ReadChunk => c.read_chunk = map.next_value()?,
                Field::Linger => c.linger = map.next_value::<OffLinger>()?.0,
            }
        }
        Ok(c)
    }
}

/// The next value as an optional duration (`"off"` or `"30s"`).
fn off_duration<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Duration>, A::Error> {
    Ok(map.next_value::<OffDuration>()?.0)
}

struct OffDuration(Option<Duration>);

impl<'de> Deserialize<'de> for OffDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::off_duration::deserialize(d).map(OffDuration)
    }
}

struct OffLinger(Option<Linger>);

impl<'de> Deserialize<'de> for OffLinger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::off::deserialize(d).map(OffLinger)
    }
}

impl<'de> Deserialize<'de> for ConnectionConfig {
    /// A `[connection]` table over the server preset ([`ConnectionConfig::default`]).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OverPreset(ConnectionConfig::server()).deserialize(d)
    }
}

/// A client's `connection` table, over the client preset.
pub(crate) fn client_connection<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<ConnectionConfig, D::Error> {
    OverPreset(ConnectionConfig::client()).deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_key() {
        // Exhaustive on purpose: a field added to ConnectionConfig fails to compile here
        // until it has a key in FIELDS, Field and visit_map.
        let ConnectionConfig {
            marks: _,
            max_frame_len: _,
            peer_max_frame_len: _,
            heartbeat_interval: _,
            idle_timeout: _,
            liveness: _,
            read_timeout: _,
            write_timeout: _,
            release_buffers_after: _,
            send_queue_limit: _,
            send_full: _,
            max_in_flight: _,
            max_queued_events: _,
            read_chunk: _,
            linger: _,
        } = ConnectionConfig::server();
        assert_eq!(FIELDS.len(), 15);
    }
}
