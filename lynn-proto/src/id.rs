use std::fmt;

/// Identity of one connection within an endpoint.
///
/// lynn identifies peers by connection, never by address: two connections from the same
/// address are two peers. Ids are assigned by the runtime (usually from a counter) and never
/// reused within a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}
