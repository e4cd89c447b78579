//! How many sockets one person (one email) holds open on this process, with a cap: a ticket may
//! open any number of connections in its 60 s, so without one a script could hold thousands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sync::lock;

#[derive(Debug)]
pub struct SocketsPerPerson {
    open: Mutex<HashMap<String, usize>>,
    max: usize,
}

/// One open socket of one person; dropping it gives the place back.
#[derive(Debug)]
pub struct PersonSlot {
    owner: Arc<SocketsPerPerson>,
    email: String,
}

impl SocketsPerPerson {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            max,
        })
    }

    pub fn take(self: &Arc<Self>, email: &str) -> Option<PersonSlot> {
        let mut open = lock(&self.open);
        let count = open.entry(email.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PersonSlot {
            owner: self.clone(),
            email: email.to_owned(),
        })
    }

    #[cfg(test)]
    fn open_for(&self, email: &str) -> usize {
        lock(&self.open).get(email).copied().unwrap_or(0)
    }
}

impl Drop for PersonSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.owner.open);
        if let Some(count) = open.get_mut(&self.email) {
            *count -= 1;
            if *count == 0 {
                // Nobody is kept for nothing: the map only holds people who are connected.
                open.remove(&self.email);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_gets_max_slots_and_one_more_once_one_is_given_back() {
        let sockets = SocketsPerPerson::new(2);
        let first = sockets.take("ann@x.io").unwrap();
        let _second = sockets.take("ann@x.io").unwrap();
        assert!(sockets.take("ann@x.io").is_none());
        assert!(
            sockets.take("bob@x.io").is_some(),
            "others are not affected"
        );
        drop(first);
        assert!(sockets.take("ann@x.io").is_some());
    }

    #[test]
    fn people_without_sockets_are_forgotten() {
        let sockets = SocketsPerPerson::new(3);
        let slot = sockets.take("ann@x.io").unwrap();
        assert_eq!(sockets.open_for("ann@x.io"), 1);
        drop(slot);
        assert_eq!(sockets.open_for("ann@x.io"), 0);
        assert!(sockets.open.lock().unwrap().is_empty());
    }
}
