//! Who is in a room on every replica: the arithmetic of presence across replicas, apart from Redis.
//! A person is present while any replica holds a tab of theirs.

use std::collections::{BTreeMap, HashMap};

use super::presence::Change;
use super::redis::ReplicaId;

/// As the room channel (or a liveness check) tells it.
#[derive(Debug)]
pub enum Remote {
    Tabs {
        replica: ReplicaId,
        user: String,
        tabs: usize,
    },
    /// Exactly these people, nobody else.
    All {
        replica: ReplicaId,
        people: HashMap<String, usize>,
    },
    Gone {
        replica: ReplicaId,
    },
}

/// Two tabs of one person on two replicas are one person.
#[derive(Debug, Default)]
pub(super) struct Everywhere {
    by_replica: HashMap<ReplicaId, HashMap<String, usize>>,
    /// On how many replicas each person has a tab.
    pub(super) people: BTreeMap<String, usize>,
}

impl Everywhere {
    fn set(&mut self, replica: &ReplicaId, user: &str, tabs: usize) -> Option<Change> {
        let held = self.by_replica.entry(replica.clone()).or_default();
        let before = held.get(user).copied().unwrap_or(0);
        if tabs == 0 {
            held.remove(user);
        } else {
            held.insert(user.to_owned(), tabs);
        }
        if held.is_empty() {
            self.by_replica.remove(replica);
        }
        if before == tabs {
            return None;
        }
        let present_before = self.people.contains_key(user);
        if before == 0 {
            *self.people.entry(user.to_owned()).or_insert(0) += 1;
        } else if tabs == 0
            && let Some(replicas) = self.people.get_mut(user)
        {
            *replicas -= 1;
            if *replicas == 0 {
                self.people.remove(user);
            }
        }
        Some(if tabs > before {
            Change::Joined {
                first: !present_before,
            }
        } else {
            Change::Left {
                last: !self.people.contains_key(user),
            }
        })
    }

    /// The changes to announce, in order.
    pub(super) fn apply(&mut self, remote: Remote) -> Vec<(String, Change)> {
        let (replica, people) = match remote {
            Remote::Tabs {
                replica,
                user,
                tabs,
            } => {
                let change = self.set(&replica, &user, tabs);
                return change.map(|change| (user, change)).into_iter().collect();
            }
            Remote::All { replica, people } => (replica, people),
            Remote::Gone { replica } => (replica, HashMap::new()),
        };
        let mut changes = Vec::new();
        let before: Vec<String> = self
            .by_replica
            .get(&replica)
            .map(|held| held.keys().cloned().collect())
            .unwrap_or_default();
        for user in before {
            if !people.contains_key(&user)
                && let Some(change) = self.set(&replica, &user, 0)
            {
                changes.push((user, change));
            }
        }
        let mut people: Vec<(String, usize)> = people.into_iter().collect();
        people.sort();
        for (user, tabs) in people {
            if let Some(change) = self.set(&replica, &user, tabs) {
                changes.push((user, change));
            }
        }
        changes
    }
}

impl Everywhere {
    pub(super) fn replicas(&self) -> impl Iterator<Item = &ReplicaId> {
        self.by_replica.keys()
    }

    pub(super) fn is_present(&self, user: &str) -> bool {
        self.people.contains_key(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str) -> ReplicaId {
        name.into()
    }

    fn tabs(replica_name: &str, user: &str, tabs: usize) -> Remote {
        Remote::Tabs {
            replica: replica(replica_name),
            user: user.into(),
            tabs,
        }
    }

    fn names(changes: &[(String, Change)]) -> Vec<String> {
        changes
            .iter()
            .map(|(user, change)| match change {
                Change::Joined { first } => {
                    format!("+{user}{}", if *first { " first" } else { "" })
                }
                Change::Left { last } => format!("-{user}{}", if *last { " last" } else { "" }),
            })
            .collect()
    }

    #[test]
    fn a_join_and_a_leave_on_one_replica() {
        let mut room = Everywhere::default();
        assert_eq!(names(&room.apply(tabs("a", "ann", 1))), ["+ann first"]);
        assert!(room.is_present("ann"));
        assert_eq!(names(&room.apply(tabs("a", "ann", 0))), ["-ann last"]);
        assert!(!room.is_present("ann"));
        assert_eq!(
            room.replicas().count(),
            0,
            "a replica holding nobody is forgotten"
        );
    }

    #[test]
    fn tabs_of_one_person_on_two_replicas_are_one_person() {
        let mut room = Everywhere::default();
        room.apply(tabs("a", "ann", 1));
        assert_eq!(names(&room.apply(tabs("b", "ann", 2))), ["+ann"]);
        assert_eq!(room.people.len(), 1);
        // Every tab is announced (a `joined` per page), but only the first made her present.
        assert_eq!(names(&room.apply(tabs("b", "ann", 3))), ["+ann"]);
        assert!(
            room.apply(tabs("b", "ann", 3)).is_empty(),
            "no change, nothing to say"
        );
        assert_eq!(names(&room.apply(tabs("a", "ann", 0))), ["-ann"]);
        assert!(room.is_present("ann"), "still on replica b");
        assert_eq!(names(&room.apply(tabs("b", "ann", 0))), ["-ann last"]);
    }

    #[test]
    fn a_replica_gone_takes_only_its_own_people_away() {
        let mut room = Everywhere::default();
        room.apply(tabs("a", "ann", 1));
        room.apply(tabs("b", "bob", 1));
        room.apply(tabs("b", "ann", 1));

        let mut changes = names(&room.apply(Remote::Gone {
            replica: replica("b"),
        }));
        changes.sort();

        assert_eq!(changes, ["-ann", "-bob last"]);
        assert_eq!(room.people.keys().collect::<Vec<_>>(), ["ann"]);
        assert_eq!(room.replicas().collect::<Vec<_>>(), [&replica("a")]);
    }

    #[test]
    fn a_resync_replaces_a_replicas_part_and_announces_only_the_difference() {
        let mut room = Everywhere::default();
        room.apply(tabs("b", "ann", 1));
        room.apply(tabs("b", "bob", 2));
        // Redis came back: replica b says who it holds now, which is what it held during the
        // outage: bob left, cid came, ann stayed.
        let people = HashMap::from([("ann".to_owned(), 1), ("cid".to_owned(), 1)]);

        let changes = room.apply(Remote::All {
            replica: replica("b"),
            people,
        });

        assert_eq!(names(&changes), ["-bob last", "+cid first"]);
        assert_eq!(room.people.keys().collect::<Vec<_>>(), ["ann", "cid"]);
    }
}
