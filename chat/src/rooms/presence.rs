//! Presence in a crowd: when a room announces joins and leaves one by one, and when it folds them
//! into one `presence` summary per window (the rule is in chat/README.md, "Presence in a crowd").
//!
//! A room counts changes in windows of `CHAT_PRESENCE_WINDOW_MS`, each opened by the first change
//! after the previous one closed; the first `CHAT_PRESENCE_BURST` go out at once, the rest are
//! folded into a summary sent when the window closes.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::RoomState;
use super::everywhere::Remote;
use crate::protocol::{SUMMARY_NAMES, ServerEvent};

/// One connection joining or leaving, as [`RoomState::announce`] tells it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    /// `first`: the person's first open tab in the room.
    Joined { first: bool },
    /// `last`: the person's last open tab in the room.
    Left { last: bool },
}

impl RoomState {
    /// Applies a presence fact (with Redis) and announces each change; returns when a summary it
    /// started is due.
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

    /// Tells the room that `user` joined or left (already counted in `tabs`): at once as
    /// `joined` / `left`, or folded into the pending summary. Returns when that summary is due
    /// if this change started it; the caller schedules it once the lock is released.
    pub(super) fn announce(
        &mut self,
        user: &str,
        change: Change,
        rule: PresenceRule,
    ) -> Option<Instant> {
        let now = Instant::now();
        match self.presence.route(rule, now) {
            Route::AtOnce => {
                let (online, at) = (self.online(), OffsetDateTime::now_utc());
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

    /// The pending summary as an event, by person: who is here now and was not when the summary
    /// began, and the reverse. `None` when there is none, or when it nets out to nothing.
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
            at: OffsetDateTime::now_utc(),
        })
    }
}

/// When a room announces presence changes one by one, and when it folds them into a summary.
#[derive(Debug, Clone, Copy)]
pub(super) struct PresenceRule {
    /// `CHAT_PRESENCE_WINDOW_MS`.
    pub(super) window: Duration,
    /// `CHAT_PRESENCE_BURST`.
    pub(super) burst: usize,
}

/// A room's presence windows and the summary changes are being folded into. Small and
/// allocation-free until a burst: every room carries one.
#[derive(Default)]
pub(super) struct Presence {
    /// When the current window opened: at the first change after the previous one closed.
    opened: Option<Instant>,
    /// Changes in the current window.
    changes: usize,
    /// This window folds from its first change: it opened right as a crowded one closed.
    burst_goes_on: bool,
    /// Changes waiting for the next summary.
    pending: Option<Box<PendingSummary>>,
}

/// How one presence change goes out.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// As its own `joined` / `left`, now.
    AtOnce,
    /// Into the pending summary; `summary_due` is set when this change started it.
    Fold { summary_due: Option<Instant> },
}

impl Presence {
    /// Routes the change happening `now`. The first `burst` changes of a window go out at once;
    /// the ones after them are folded into a summary due when the window closes. A window that
    /// opens within a window's time of a crowded one closing folds from its first change (the
    /// burst goes on), and so does any change while a summary is pending — an event sent past
    /// it would overtake the changes it holds.
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

/// The people whose presence changed since the summary began.
#[derive(Default)]
struct PendingSummary {
    /// Each person once, in order of their first change, with whether they were in the room
    /// just before it.
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
