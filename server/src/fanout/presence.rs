//! Presence as agents hear it: the truth, without every flap. Pure: it
//! decides what to announce when, on a clock it is given, and the registry
//! pushes the frames (`registry.rs`), the router's timer asks it what is due
//! (`router.rs`).
//!
//! A user is online while one of its connections is subscribed. Announcing
//! every change let sixteen names flapping connect/subscribe/close make
//! thousands of `presence` frames a second for every agent, and cut off an
//! agent that read steadily. So:
//!
//! - a user coming online is announced at once (agents want to know);
//! - a user whose last connection closed is announced offline only after
//!   the grace (`--presence-grace-ms`), and not at all if it is back by then: a reconnect
//!   within the grace makes no offline/online pair;
//! - each user's announcements draw on a token bucket
//!   ([`CHANGES_BURST`] at once, then one per [`CHANGE_INTERVAL`]): a user
//!   flapping slower than the grace is announced at most that often;
//! - what is held back is never lost: whenever a user's truth differs from
//!   what agents were told, an announcement of the truth is due, at the
//!   latest when the next token comes. The last state is always announced.
//!
//! Agents are provisioned and trusted, and protocol version 2 says an
//! agent's `false` comes when its last connection closes: their presence is
//! [`Presence::exact`], every change announced at once, no grace, no pacing.
//!
//! A subscribing agent is told the users *announced* online
//! ([`Presence::announced_online`]), so it agrees with the agents already
//! subscribed and hears the same pending changes they will.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use switchboard_protocol::Name;

use crate::rate_limit::TokenBucket;

/// Announcements one user may cause at once: online, offline, online,
/// offline (a real departure and return, twice) without any delay.
pub const CHANGES_BURST: u32 = 4;
/// Then one announcement per this long for that user: a user who flaps
/// slower than the grace costs each agent at most one frame per interval.
pub const CHANGE_INTERVAL: Duration = Duration::from_secs(10);
/// How often users who are offline, announced offline and whose bucket has
/// refilled are forgotten (they are as good as never seen).
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// One announcement: a user's name and whether it is online.
pub type Announcement = (Name, bool);

/// What agents were told of each user, and what they are owed.
pub struct Presence {
    grace: Duration,
    /// Whether each name's announcements draw on its token bucket (users'
    /// do; agents' are exact).
    paced: bool,
    users: HashMap<Name, User>,
    /// The pending announcements, earliest first; a user is here at most
    /// once, at its [`User::due`].
    due: BTreeSet<(Instant, Name)>,
    next_sweep: Option<Instant>,
}

struct User {
    /// The truth: a connection of this user is subscribed.
    online: bool,
    /// What agents were last told (`false` before the first announcement).
    announced: bool,
    /// When the announcement of the truth is due, if it differs.
    due: Option<Instant>,
    changes: TokenBucket,
}

impl Presence {
    /// `grace`: how long a user may be gone before it is announced offline;
    /// announcements paced by each user's token bucket.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            paced: true,
            users: HashMap::new(),
            due: BTreeSet::new(),
            next_sweep: None,
        }
    }

    /// Every change announced the moment it happens: for agents, who are
    /// trusted not to flap on purpose.
    pub fn exact() -> Self {
        Self {
            paced: false,
            ..Self::new(Duration::ZERO)
        }
    }

    /// A user's first connection subscribed at `now`: `true` if agents hear
    /// it now (otherwise it is due later, or nothing changed for them).
    pub fn came_online(&mut self, name: &Name, now: Instant) -> bool {
        self.changed(name, true, now, now)
    }

    /// A user's last subscribed connection closed at `now`: `true` if
    /// agents hear it now (only with no grace); usually it is due later.
    pub fn went_offline(&mut self, name: &Name, now: Instant) -> bool {
        self.changed(name, false, now, now + self.grace)
    }

    /// The announcements due by `now`, in the order they fell due. Each is
    /// the user's truth now; one whose truth went back to what agents were
    /// told is dropped instead.
    pub fn due(&mut self, now: Instant) -> Vec<Announcement> {
        let mut announce = Vec::new();
        while let Some((at, _)) = self.due.first()
            && *at <= now
        {
            let Some((_, name)) = self.due.pop_first() else {
                break;
            };
            let Some(user) = self.users.get_mut(&name) else {
                continue;
            };
            user.due = None;
            if let Some(online) = settle(user, &name, now, now, self.paced, &mut self.due) {
                announce.push((name, online));
            }
        }
        self.sweep(now);
        announce
    }

    /// When the next announcement falls due, for the router's timer.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// The users agents have been told are online.
    pub fn announced_online(&self) -> impl Iterator<Item = &Name> {
        self.users
            .iter()
            .filter(|(_, user)| user.announced)
            .map(|(name, _)| name)
    }

    /// Records the truth and announces it now, schedules it, or cancels
    /// what was pending: agents hear at most the truth, never a flap.
    fn changed(&mut self, name: &Name, online: bool, now: Instant, earliest: Instant) -> bool {
        let user = self.users.entry(name.clone()).or_insert_with(|| User {
            online: false,
            announced: false,
            due: None,
            changes: TokenBucket::new_at(1.0 / CHANGE_INTERVAL.as_secs_f64(), CHANGES_BURST, now),
        });
        user.online = online;
        if let Some(at) = user.due.take() {
            self.due.remove(&(at, name.clone()));
        }
        let now_heard = settle(user, name, now, earliest, self.paced, &mut self.due).is_some();
        self.sweep(now);
        now_heard
    }

    /// Forgets, now and then, users who are offline, were announced so,
    /// owe nothing and could announce a full burst again.
    fn sweep(&mut self, now: Instant) {
        match self.next_sweep {
            None => self.next_sweep = Some(now + SWEEP_INTERVAL),
            Some(at) if at <= now => {
                self.users.retain(|_, user| {
                    user.online
                        || user.announced
                        || user.due.is_some()
                        || !user.changes.is_full_at(now)
                });
                self.next_sweep = Some(now + SWEEP_INTERVAL);
            }
            Some(_) => {}
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.users.len()
    }
}

/// If `user`'s truth differs from what agents were told: announces it (the
/// returned state) when `earliest` has come and, if `paced`, a token is
/// there, or schedules it for when both will be.
fn settle(
    user: &mut User,
    name: &Name,
    now: Instant,
    earliest: Instant,
    paced: bool,
    due: &mut BTreeSet<(Instant, Name)>,
) -> Option<bool> {
    if user.online == user.announced {
        return None;
    }
    if !paced && earliest <= now {
        user.announced = user.online;
        return Some(user.online);
    }
    let at = earliest.max(now + user.changes.wait_at(now));
    if at <= now && user.changes.try_take_at(now) {
        user.announced = user.online;
        return Some(user.online);
    }
    // A token that was not there by rounding: try again a moment later.
    let at = at.max(now + Duration::from_millis(1));
    user.due = Some(at);
    due.insert((at, name.clone()));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    fn name(text: &str) -> Name {
        Name::parse(text).expect("valid")
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_user_coming_online_is_announced_at_once() {
        let mut presence = Presence::new(GRACE);
        let t0 = Instant::now();
        assert!(presence.came_online(&name("ana"), t0));
        assert_eq!(presence.next_due(), None);
        assert_eq!(
            presence.announced_online().collect::<Vec<_>>(),
            [&name("ana")]
        );
    }

    #[test]
    fn a_departure_is_announced_after_the_grace() {
        let mut presence = Presence::new(GRACE);
        let t0 = Instant::now();
        presence.came_online(&name("ana"), t0);
        assert!(!presence.went_offline(&name("ana"), t0 + secs(1.0)));
        assert_eq!(presence.next_due(), Some(t0 + secs(3.0)));
        assert!(presence.due(t0 + secs(2.9)).is_empty(), "not yet");
        assert_eq!(presence.due(t0 + secs(3.0)), [(name("ana"), false)]);
        assert_eq!(presence.next_due(), None);
        assert_eq!(presence.announced_online().count(), 0);
    }

    #[test]
    fn a_return_within_the_grace_makes_no_pair() {
        let mut presence = Presence::new(GRACE);
        let t0 = Instant::now();
        presence.came_online(&name("ana"), t0);
        presence.went_offline(&name("ana"), t0 + secs(1.0));
        assert!(!presence.came_online(&name("ana"), t0 + secs(2.5)));
        assert_eq!(presence.next_due(), None, "the offline is cancelled");
        assert!(presence.due(t0 + secs(10.0)).is_empty());
        assert_eq!(presence.announced_online().count(), 1);
    }

    #[test]
    fn no_grace_announces_a_departure_at_once() {
        let mut presence = Presence::new(Duration::ZERO);
        let t0 = Instant::now();
        presence.came_online(&name("ana"), t0);
        assert!(presence.went_offline(&name("ana"), t0));
    }

    /// A user flapping slower than the grace spends its burst, then is
    /// announced at most once per interval, and each announcement is the
    /// truth at that time.
    #[test]
    fn a_user_flapping_slower_than_the_grace_is_announced_at_most_once_per_interval() {
        let mut presence = Presence::new(GRACE);
        let ana = name("ana");
        let t0 = Instant::now();
        let mut heard = Vec::new();
        // Online for 1 s, offline for 2.5 s, for a minute.
        let mut t = t0;
        while t < t0 + secs(60.0) {
            heard.extend(presence.due(t));
            if presence.came_online(&ana, t) {
                heard.push((ana.clone(), true));
            }
            t += secs(1.0);
            heard.extend(presence.due(t));
            presence.went_offline(&ana, t);
            t += secs(2.5);
        }
        // Burst of 4, then one per 10 s over ~60 s: at most 4 + 6 + 1.
        assert!(
            heard.len() <= 11,
            "{} announcements: {heard:?}",
            heard.len()
        );
        assert!(heard.len() >= 4, "real changes are still heard: {heard:?}");
        for pair in heard.windows(2) {
            assert_ne!(pair[0].1, pair[1].1, "alternating: {heard:?}");
        }
        // It stopped offline: that is heard, however the tokens stood.
        let end = t + CHANGE_INTERVAL + GRACE;
        heard.extend(presence.due(end));
        assert_eq!(heard.last(), Some(&(ana, false)));
        assert_eq!(presence.next_due(), None);
    }

    #[test]
    fn a_change_held_for_a_token_converges_to_the_truth_at_that_time() {
        let mut presence = Presence::new(GRACE);
        let ana = name("ana");
        let t0 = Instant::now();
        // Spend the burst: online, offline, online, offline.
        assert!(presence.came_online(&ana, t0));
        presence.went_offline(&ana, t0);
        assert_eq!(presence.due(t0 + GRACE), [(ana.clone(), false)]);
        assert!(presence.came_online(&ana, t0 + GRACE));
        presence.went_offline(&ana, t0 + GRACE);
        assert_eq!(presence.due(t0 + GRACE * 2), [(ana.clone(), false)]);
        // Back: no token yet, so it waits for one...
        assert!(!presence.came_online(&ana, t0 + GRACE * 2));
        let at = presence.next_due().expect("an online is owed");
        assert!(at > t0 + GRACE * 2 && at <= t0 + CHANGE_INTERVAL + secs(0.01));
        // ...and gone and back again meanwhile changes nothing owed.
        presence.went_offline(&ana, t0 + GRACE * 2 + secs(0.1));
        assert_eq!(presence.next_due(), None, "the truth is what was told");
        presence.came_online(&ana, t0 + GRACE * 2 + secs(0.2));
        assert_eq!(presence.due(at), [(ana, true)]);
    }

    /// Agents' presence: every change heard at once, however often.
    #[test]
    fn exact_presence_announces_every_change_at_once() {
        let mut presence = Presence::exact();
        let bob = name("bob");
        let t0 = Instant::now();
        for _ in 0..(CHANGES_BURST * 3) {
            assert!(presence.came_online(&bob, t0));
            assert!(presence.went_offline(&bob, t0));
        }
        assert_eq!(presence.next_due(), None, "nothing held back");
        assert_eq!(presence.announced_online().count(), 0);
    }

    #[test]
    fn users_are_independent() {
        let mut presence = Presence::new(GRACE);
        let t0 = Instant::now();
        presence.came_online(&name("ana"), t0);
        presence.came_online(&name("ben"), t0);
        presence.went_offline(&name("ana"), t0);
        presence.went_offline(&name("ben"), t0 + secs(1.0));
        assert_eq!(presence.due(t0 + GRACE), [(name("ana"), false)]);
        assert_eq!(presence.due(t0 + secs(3.0)), [(name("ben"), false)]);
    }

    #[test]
    fn users_long_gone_are_forgotten() {
        let mut presence = Presence::new(GRACE);
        let t0 = Instant::now();
        for i in 0..100 {
            let user = name(&format!("u{i}"));
            presence.came_online(&user, t0);
            presence.went_offline(&user, t0);
        }
        presence.came_online(&name("stays"), t0);
        assert_eq!(presence.due(t0 + GRACE).len(), 100);
        assert_eq!(presence.remembered(), 101);
        // Buckets refill in CHANGE_INTERVAL per token; a sweep comes every
        // SWEEP_INTERVAL.
        let later = t0 + CHANGE_INTERVAL * CHANGES_BURST + SWEEP_INTERVAL * 2;
        presence.due(later);
        presence.due(later + SWEEP_INTERVAL);
        assert_eq!(presence.remembered(), 1, "only the user still online");
    }
}
