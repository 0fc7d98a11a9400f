//! [`Registry`]: the server's table of open connections and their groups.
//!
//! Pure bookkeeping, generic over what a runtime keeps per connection (typically the sending
//! half of that connection's bounded outbound channel). The runtime wraps it in a lock taken
//! once per connect, disconnect, join, leave and fanout, never once per recipient and never
//! on the request/reply path, which stays inside the connection's own task.
//!
//! ```
//! use lynn_service::Target;
//! use lynn_service::Registry;
//! use lynn_proto::groups::GroupLimits;
//!
//! let mut reg: Registry<&str> = Registry::new(GroupLimits::default());
//! let a = reg.insert("a");
//! let b = reg.insert("b");
//! reg.join("room", b).unwrap();
//! let mut got = Vec::new();
//! reg.for_each_recipient(&Target::Group("room".into()), |_, s| got.push(*s));
//! assert_eq!(got, ["b"]);
//! reg.remove(b);
//! assert_eq!(reg.for_each_recipient(&Target::All, |_, _| {}), 1);
//! # let _ = a;
//! ```

use std::collections::HashMap;

use crate::Target;
use lynn_proto::ConnectionId;
use lynn_proto::groups::{GroupError, GroupLimits, Groups};

/// Open connections by id, with their group memberships.
#[derive(Debug)]
pub struct Registry<S> {
    conns: HashMap<ConnectionId, S>,
    groups: Groups,
    next_id: u64,
}

impl<S> Registry<S> {
    /// An empty registry whose group table has `limits`.
    pub fn new(limits: GroupLimits) -> Self {
        Registry {
            conns: HashMap::new(),
            groups: Groups::new(limits),
            next_id: 1,
        }
    }

    /// Adds a connection and returns its new id (never reused).
    pub fn insert(&mut self, value: S) -> ConnectionId {
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        self.conns.insert(id, value);
        id
    }

    /// Removes a connection and its memberships.
    pub fn remove(&mut self, id: ConnectionId) -> Option<S> {
        self.groups.leave_all(id);
        self.conns.remove(&id)
    }

    /// The value kept for `id`.
    pub fn get(&self, id: ConnectionId) -> Option<&S> {
        self.conns.get(&id)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Ids of the open connections, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.conns.keys().copied()
    }

    /// Adds `id` to `group`. Returns whether it newly joined; an unknown id joins nothing.
    pub fn join(&mut self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        if !self.conns.contains_key(&id) {
            return Ok(false);
        }
        self.groups.join(group, id)
    }

    /// Removes `id` from `group`; returns whether it was a member.
    pub fn leave(&mut self, group: &str, id: ConnectionId) -> bool {
        self.groups.leave(group, id)
    }

    /// The group table.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Calls `f` once for every open connection `target` names; returns how many.
    pub fn for_each_recipient(
        &self,
        target: &Target,
        mut f: impl FnMut(ConnectionId, &S),
    ) -> usize {
        let mut n = 0;
        let mut visit = |id: ConnectionId| {
            if let Some(s) = self.conns.get(&id) {
                f(id, s);
                n += 1;
            }
        };
        match target {
            Target::Connections(ids) => ids.iter().copied().for_each(&mut visit),
            Target::Group(name) => self.groups.members(name).for_each(&mut visit),
            Target::All => self.conns.keys().copied().for_each(&mut visit),
            Target::AllExcept(skip) => self
                .conns
                .keys()
                .copied()
                .filter(|id| id != skip)
                .for_each(&mut visit),
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_reach_exactly_their_recipients() {
        let mut reg = Registry::new(GroupLimits::default());
        let ids: Vec<_> = (0..4).map(|i| reg.insert(i)).collect();
        reg.join("g", ids[1]).unwrap();
        reg.join("g", ids[3]).unwrap();
        let collect = |t: Target| {
            let mut v = Vec::new();
            reg.for_each_recipient(&t, |_, s| v.push(*s));
            v.sort();
            v
        };
        assert_eq!(collect(Target::All), [0, 1, 2, 3]);
        assert_eq!(collect(Target::AllExcept(ids[2])), [0, 1, 3]);
        assert_eq!(collect(Target::Group("g".into())), [1, 3]);
        assert_eq!(collect(Target::Group("none".into())), Vec::<i32>::new());
        assert_eq!(
            collect(Target::Connections(vec![ids[0], ConnectionId(999)])),
            [0]
        );
    }

    #[test]
    fn removal_leaves_groups_and_ids_are_not_reused() {
        let mut reg = Registry::new(GroupLimits::default());
        let a = reg.insert(());
        reg.join("g", a).unwrap();
        assert_eq!(reg.remove(a), Some(()));
        assert_eq!(reg.groups().member_count("g"), 0);
        assert_eq!(reg.join("g", a), Ok(false), "closed ids join nothing");
        assert_ne!(reg.insert(()), a);
    }
}
