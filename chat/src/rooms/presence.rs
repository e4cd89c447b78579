//! Presence in a crowd: when a room announces joins and leaves one by one, and when it folds them
//! into one `presence` summary per window (the rule is in chat/README.md, "Presence in a crowd").

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::RoomState;
use super::everywhere::Remote;
use crate::protocol::{self, SUMMARY_NAMES, ServerEvent};

#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Joined { first: bool },
    Left { last: bool },
}

impl RoomState {
    /// Returns when a summary it started is due.
    pub(super) fn apply(
        &mut self,
        remote: Remote,
        rule: PresenceRule,
        closing: bool,
    ) -> Option<Instant> {
        let changes = self.everywhere.as_mut()?.apply(remote);
        let mut summary_due = None;
        for (user, change) in changes {
            if !closing {
                summary_due = summary_due.or(self.announce(&user, change, rule));
            }
        }
        summary_due
    }

    /// `user` is already counted in `tabs`. Returns when the summary is due if this change started
    /// it; the caller schedules it once the lock is released.
    pub(super) fn announce(
        &mut self,
        user: &str,
        change: Change,
        rule: PresenceRule,
    ) -> Option<Instant> {
        let now = Instant::now();
        match self.presence.route(rule, now) {
            Route::AtOnce => {
                let (online, at) = (self.online(), protocol::now());
                let user = user.to_owned();
                self.broadcast(&match change {
                    Change::Joined { first } => ServerEvent::Joined {
                        user,
                        online,
                        at,
                        first,
                    },
                    Change::Left { last } => ServerEvent::Left {
                        user,
                        online,
                        at,
                        last,
                    },
                });
                None
            }
            Route::Fold { summary_due } => {
                let present_before = match change {
                    // Present before this join unless it was the first tab.
                    Change::Joined { first } => !first,
                    Change::Left { .. } => true,
                };
                self.presence.pending_mut().note(user, present_before);
                summary_due
            }
        }
    }

    /// `None` also when the summary nets out to nothing.
    pub(super) fn take_summary(&mut self) -> Option<ServerEvent> {
        let pending = *self.presence.pending.take()?;
        let (mut joined, mut joined_count, mut left, mut left_count) =
            (Vec::new(), 0, Vec::new(), 0);
        for (user, present_before) in pending.people {
            let (names, count) = match (present_before, self.is_present(&user)) {
                (false, true) => (&mut joined, &mut joined_count),
                (true, false) => (&mut left, &mut left_count),
                _ => continue,
            };
            *count += 1;
            if names.len() < SUMMARY_NAMES {
                names.push(user);
            }
        }
        (joined_count + left_count > 0).then(|| ServerEvent::Presence {
            joined,
            joined_count,
            left,
            left_count,
            online: self.online(),
            at: protocol::now(),
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PresenceRule {
    pub(super) window: Duration,
    pub(super) burst: usize,
}

/// Small and allocation-free until a burst: every room carries one.
#[derive(Default)]
pub(super) struct Presence {
    opened: Option<Instant>,
    changes: usize,
    burst_goes_on: bool,
    pending: Option<Box<PendingSummary>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    AtOnce,
    Fold { summary_due: Option<Instant> },
}

impl Presence {
    /// While a summary is pending every change folds: an event sent past it would overtake the
    /// changes it holds.
    fn route(&mut self, rule: PresenceRule, now: Instant) -> Route {
        let closes = self.opened.map(|opened| opened + rule.window);
        if closes.is_none_or(|closes| now >= closes) {
            self.burst_goes_on = self.changes > rule.burst
                && closes.is_some_and(|closed| now < closed + rule.window);
            self.opened = Some(now);
            self.changes = 0;
        }
        self.changes += 1;
        if !self.burst_goes_on && self.changes <= rule.burst && self.pending.is_none() {
            return Route::AtOnce;
        }
        let summary_due = self
            .pending
            .is_none()
            .then(|| self.opened.map_or(now, |opened| opened + rule.window));
        self.pending_mut();
        Route::Fold { summary_due }
    }

    fn pending_mut(&mut self) -> &mut PendingSummary {
        self.pending.get_or_insert_with(Box::default)
    }
}

#[derive(Default)]
struct PendingSummary {
    /// In order of their first change, with whether they were in the room just before it.
    people: Vec<(String, bool)>,
    noted: HashSet<String>,
}

impl PendingSummary {
    fn note(&mut self, user: &str, present_before: bool) {
        if self.noted.insert(user.to_owned()) {
            self.people.push((user.to_owned(), present_before));
        }
    }
}
