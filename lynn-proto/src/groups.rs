//! Named groups of connections, for broadcast. Pure bookkeeping: sending is the runtime's job.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::ConnectionId;

/// Bounds on [`Groups`], so a peer that may pick group names cannot exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct GroupLimits {
    /// Maximum number of non-empty groups at once (default 65 536).
    pub max_groups: usize,
    /// Maximum number of groups one connection may be in (default 64).
    pub max_groups_per_connection: usize,
    /// Maximum length of a group name in bytes (default 128).
    pub max_name_len: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            max_groups: 65_536,
            max_groups_per_connection: 64,
            max_name_len: 128,
        }
    }
}

/// Why [`Groups::join`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Creating the group would exceed `max_groups`.
    #[error("too many groups (limit {limit})")]
    TooManyGroups {
        /// The configured `max_groups`.
        limit: usize,
    },
    /// The connection is already in `max_groups_per_connection` groups.
    #[error("{id} is in too many groups (limit {limit})")]
    TooManyGroupsForConnection {
        /// The connection that tried to join.
        id: ConnectionId,
        /// The configured `max_groups_per_connection`.
        limit: usize,
    },
    /// The group name is longer than `max_name_len` bytes.
    #[error("group name is {len} bytes long (limit {limit})")]
    NameTooLong {
        /// Length of the refused name, in bytes.
        len: usize,
        /// The configured `max_name_len`.
        limit: usize,
    },
    /// The group name is empty.
    #[error("group name is empty")]
    EmptyName,
}

/// Named groups of [`ConnectionId`]s.
///
/// Groups exist while they have members: the first join creates a group, the last leave
/// removes it. A reverse index from connection to groups makes
/// [`leave_all`](Groups::leave_all) cost O(groups of that connection), so call it on every
/// disconnect. Members iterate in ascending id order.
///
/// Runtimes keep one `Groups` per server behind a lock taken per join, leave and broadcast
/// (to collect the members), never per message.
///
/// # Example
///
/// ```
/// use lynn_proto::ConnectionId;
/// use lynn_proto::groups::{GroupLimits, Groups};
///
/// let mut groups = Groups::new(GroupLimits::default());
/// let (a, b) = (ConnectionId(1), ConnectionId(2));
/// assert!(groups.join("lobby", a)?);
/// assert!(groups.join("lobby", b)?);
/// assert!(!groups.join("lobby", b)?, "already a member");
/// assert_eq!(groups.members("lobby").collect::<Vec<_>>(), [a, b]);
///
/// groups.leave_all(b); // b disconnected
/// assert_eq!(groups.members("lobby").collect::<Vec<_>>(), [a]);
/// assert!(groups.leave("lobby", a));
/// assert!(groups.is_empty(), "empty groups are removed");
/// # Ok::<(), lynn_proto::groups::GroupError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Groups {
    limits: GroupLimits,
    members: HashMap<Arc<str>, BTreeSet<ConnectionId>>,
    /// Reverse index: the groups each connection is in.
    joined: HashMap<ConnectionId, Vec<Arc<str>>>,
}

impl Groups {
    /// An empty set of groups with the given limits.
    #[must_use]
    pub fn new(limits: GroupLimits) -> Groups {
        Groups {
            limits,
            members: HashMap::new(),
            joined: HashMap::new(),
        }
    }

    /// Adds `id` to `group`, creating the group if needed. Returns `Ok(true)` if newly joined,
    /// `Ok(false)` if `id` was already a member (which never fails on a limit).
    pub fn join(&mut self, group: &str, id: ConnectionId) -> Result<bool, GroupError> {
        let limit = self.limits.max_name_len;
        if group.is_empty() {
            return Err(GroupError::EmptyName);
        }
        if group.len() > limit {
            return Err(GroupError::NameTooLong {
                len: group.len(),
                limit,
            });
        }
        let existing = self.members.get_key_value(group);
        if existing.is_some_and(|(_, set)| set.contains(&id)) {
            return Ok(false);
        }
        let limit = self.limits.max_groups_per_connection;
        if self.joined.get(&id).map_or(0, Vec::len) >= limit {
            return Err(GroupError::TooManyGroupsForConnection { id, limit });
        }
        let name = match existing {
            Some((name, _)) => Arc::clone(name),
            None if self.members.len() >= self.limits.max_groups => {
                return Err(GroupError::TooManyGroups {
                    limit: self.limits.max_groups,
                });
            }
            None => Arc::from(group),
        };
        self.joined.entry(id).or_default().push(Arc::clone(&name));
        self.members.entry(name).or_default().insert(id);
        Ok(true)
    }

    /// Removes `id` from `group`. Returns whether it was a member.
    pub fn leave(&mut self, group: &str, id: ConnectionId) -> bool {
        let Some(set) = self.members.get_mut(group) else {
            return false;
        };
        if !set.remove(&id) {
            return false;
        }
        if set.is_empty() {
            self.members.remove(group);
        }
        if let Some(names) = self.joined.get_mut(&id) {
            names.retain(|n| &**n != group);
            if names.is_empty() {
                self.joined.remove(&id);
            }
        }
        true
    }

    /// Removes `id` from every group (call on disconnect). Returns how many it left.
    pub fn leave_all(&mut self, id: ConnectionId) -> usize {
        let names = self.joined.remove(&id).unwrap_or_default();
        for name in &names {
            if let Some(set) = self.members.get_mut(name) {
                set.remove(&id);
                if set.is_empty() {
                    self.members.remove(name);
                }
            }
        }
        names.len()
    }

    /// Members of `group` in ascending id order; empty if the group does not exist.
    pub fn members(&self, group: &str) -> impl Iterator<Item = ConnectionId> + '_ {
        self.members.get(group).into_iter().flatten().copied()
    }

    /// Number of members of `group` (0 if it does not exist).
    #[must_use]
    pub fn member_count(&self, group: &str) -> usize {
        self.members.get(group).map_or(0, BTreeSet::len)
    }

    /// Whether `id` is in `group`.
    #[must_use]
    pub fn contains(&self, group: &str, id: ConnectionId) -> bool {
        self.members.get(group).is_some_and(|set| set.contains(&id))
    }

    /// The groups `id` is in, in the order it joined them.
    pub fn groups_of(&self, id: ConnectionId) -> impl Iterator<Item = &str> + '_ {
        self.joined
            .get(&id)
            .into_iter()
            .flatten()
            .map(|name| &**name)
    }

    /// Names of all groups, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.keys().map(|name| &**name)
    }

    /// Number of groups (every group has at least one member).
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no groups.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> GroupLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ConnectionId = ConnectionId(1);
    const B: ConnectionId = ConnectionId(2);
    const C: ConnectionId = ConnectionId(3);

    fn limits(max_groups: usize, per_connection: usize, name_len: usize) -> GroupLimits {
        GroupLimits {
            max_groups,
            max_groups_per_connection: per_connection,
            max_name_len: name_len,
        }
    }

    fn members(g: &Groups, name: &str) -> Vec<u64> {
        g.members(name).map(|id| id.0).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(GroupLimits::default(), limits(65_536, 64, 128));
        assert_eq!(Groups::default().limits(), GroupLimits::default());
    }

    #[test]
    fn join_is_idempotent_and_members_are_sorted() {
        let mut g = Groups::new(GroupLimits::default());
        assert_eq!(g.join("room", C), Ok(true));
        assert_eq!(g.join("room", A), Ok(true));
        assert_eq!(g.join("room", C), Ok(false));
        assert_eq!(members(&g, "room"), [1, 3]);
        assert_eq!(
            (g.len(), g.member_count("room"), g.member_count("none")),
            (1, 2, 0)
        );
        assert!(g.contains("room", A) && !g.contains("room", B));
        assert_eq!(members(&g, "none"), Vec::<u64>::new());
    }

    #[test]
    fn leave_removes_membership_and_empty_groups() {
        let mut g = Groups::new(GroupLimits::default());
        g.join("x", A).unwrap();
        g.join("x", B).unwrap();
        g.join("y", A).unwrap();
        assert!(g.leave("x", A));
        assert!(!g.leave("x", A), "second leave is a no-op");
        assert!(!g.leave("nope", A));
        assert_eq!(g.groups_of(A).collect::<Vec<_>>(), ["y"]);
        assert!(g.leave("x", B));
        assert_eq!((g.len(), g.names().collect::<Vec<_>>()), (1, vec!["y"]));
        assert!(g.leave("y", A));
        assert!(g.is_empty());
        assert_eq!(g.groups_of(A).count(), 0);
        assert!(g.joined.is_empty(), "reverse index is cleaned too");
    }

    #[test]
    fn leave_all_uses_the_reverse_index() {
        let mut g = Groups::new(GroupLimits::default());
        for name in ["a", "b", "c"] {
            g.join(name, A).unwrap();
        }
        g.join("b", B).unwrap();
        assert_eq!(g.groups_of(A).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(g.leave_all(A), 3);
        assert_eq!(g.leave_all(A), 0);
        assert_eq!((g.len(), members(&g, "b")), (1, vec![2]));
        assert!(!g.contains("a", A));
    }

    #[test]
    fn names_are_validated() {
        let mut g = Groups::new(limits(10, 10, 4));
        assert_eq!(g.join("", A), Err(GroupError::EmptyName));
        assert_eq!(g.join("abcd", A), Ok(true));
        assert_eq!(
            g.join("abcde", A),
            Err(GroupError::NameTooLong { len: 5, limit: 4 })
        );
        // Length is in bytes: "éé" is 4 bytes, "ééé" is 6.
        assert_eq!(g.join("éé", A), Ok(true));
        assert_eq!(
            g.join("ééé", A),
            Err(GroupError::NameTooLong { len: 6, limit: 4 })
        );
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn group_count_is_bounded_but_existing_groups_stay_joinable() {
        let mut g = Groups::new(limits(2, 10, 16));
        g.join("one", A).unwrap();
        g.join("two", A).unwrap();
        assert_eq!(
            g.join("three", B),
            Err(GroupError::TooManyGroups { limit: 2 })
        );
        assert_eq!(g.join("two", B), Ok(true));
        g.leave_all(A);
        g.leave_all(B);
        assert_eq!(g.join("three", B), Ok(true), "freed by empty-group removal");
    }

    #[test]
    fn groups_per_connection_are_bounded() {
        let mut g = Groups::new(limits(10, 2, 16));
        g.join("one", A).unwrap();
        g.join("two", A).unwrap();
        let err = GroupError::TooManyGroupsForConnection { id: A, limit: 2 };
        assert_eq!(g.join("three", A), Err(err.clone()));
        assert_eq!(err.to_string(), "conn#1 is in too many groups (limit 2)");
        assert_eq!(g.join("two", A), Ok(false), "re-joining never hits a limit");
        assert_eq!(g.join("three", B), Ok(true), "limit is per connection");
        assert!(g.leave("one", A));
        assert_eq!(g.join("three", A), Ok(true));
        assert_eq!(g.len(), 2, "a refused join creates no group");
    }
}
