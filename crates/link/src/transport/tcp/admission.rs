//! Who holds a place on the server: the admission table, without clock or I/O.
//!
//! Every connection the server holds is in exactly one place:
//!
//! - **handshaking**: accepted, not yet authenticated (hello, handshake, confirmation, or the
//!   last frames of a refusal). At most `handshaking_max`; a new connection that finds the pool
//!   full takes the place of the *oldest* one there, which is closed.
//! - **idle** or **busy** in its role's slots, once the handshake has proved a trusted key: at
//!   most `clinician_max` clinician and `patient_max` patient sessions. A session is *busy* from
//!   the moment the handler is given a payload until the answer has been written to the socket,
//!   and *idle* otherwise (waiting for input).
//! - **waiting** for a slot of its role: authenticated, but every slot of its role is busy. At
//!   most as many as the role has slots.
//!
//! A session that authenticates when its role's slots are all taken takes the slot of the
//! session of that role that has been idle the longest, which is closed; only an idle session is
//! ever closed to make room, never a busy one. If every slot is busy it waits, and beyond the
//! waiting bound it is refused. A connection that ends leaves its place at once.
//!
//! "Oldest" and "idle the longest" are by a counter of events, not by a clock.
//!
//! # Invariants
//! - Handshaking entries ≤ `handshaking_max`; per role, idle + busy ≤ its max and waiting ≤ its max.
//! - An entry leaves only through [`Table::leave`] (its connection ended) or by being evicted,
//!   and an evicted entry is idle or handshaking, never busy or waiting.

use crate::trust::Role;

/// Identifies one connection in the table.
pub(crate) type ConnectionId = u64;

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Not yet authenticated.
    Handshaking,
    /// Authenticated, waiting for a slot of its role.
    Waiting(Role),
    /// In a slot, waiting for input: may be evicted.
    Idle(Role),
    /// In a slot, acting on a payload or writing the answer: never evicted.
    Busy(Role),
}

/// The answer to [`Table::admit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit<T> {
    /// The connection has a slot; `evicted` is the token of the idle session it replaced.
    Admitted {
        /// The session closed to make room, if any.
        evicted: Option<T>,
    },
    /// Every slot of the role is busy: try again when something changes.
    Wait,
    /// Every slot of the role is busy and the waiting places are taken.
    Refused,
}

#[derive(Debug)]
struct Entry<T> {
    id: ConnectionId,
    place: Place,
    /// The event counter when the connection entered its place: the smallest is the oldest.
    since: u64,
    token: T,
}

/// The places of every connection a server holds. `T` is what the caller needs to tell an
/// evicted connection to close.
#[derive(Debug)]
pub(crate) struct Table<T> {
    handshaking_max: usize,
    clinician_max: usize,
    patient_max: usize,
    entries: Vec<Entry<T>>,
    counter: u64,
}

impl<T> Table<T> {
    /// An empty table; every bound is at least 1.
    pub(crate) fn new(handshaking_max: usize, clinician_max: usize, patient_max: usize) -> Self {
        Self {
            handshaking_max: handshaking_max.max(1),
            clinician_max: clinician_max.max(1),
            patient_max: patient_max.max(1),
            entries: Vec::new(),
            counter: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn role_max(&self, role: Role) -> usize {
        match role {
            Role::Clinician => self.clinician_max,
            Role::Patient => self.patient_max,
        }
    }

    fn count(&self, matches: impl Fn(Place) -> bool) -> usize {
        self.entries.iter().filter(|entry| matches(entry.place)).count()
    }

    fn position(&self, id: ConnectionId) -> Option<usize> {
        self.entries.iter().position(|entry| entry.id == id)
    }

    /// The entry in a place matching `matches` that entered it first.
    fn oldest(&self, matches: impl Fn(Place) -> bool) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| matches(entry.place))
            .min_by_key(|(_, entry)| entry.since)
            .map(|(index, _)| index)
    }

    /// A new connection enters the handshaking pool. If the pool was full, the oldest connection
    /// in it is evicted: its token is returned, and it has left the table.
    pub(crate) fn arrive(&mut self, token: T) -> (ConnectionId, Option<T>) {
        let evicted = if self.count(|place| place == Place::Handshaking) >= self.handshaking_max {
            self.oldest(|place| place == Place::Handshaking).map(|index| self.entries.swap_remove(index).token)
        } else {
            None
        };
        let id = self.tick();
        self.entries.push(Entry { id, place: Place::Handshaking, since: id, token });
        (id, evicted)
    }

    /// The connection `id` (handshaking, or waiting) has authenticated as `role`: give it a
    /// slot, by eviction of the role's longest-idle session if need be.
    pub(crate) fn admit(&mut self, id: ConnectionId, role: Role) -> Admit<T> {
        let Some(index) = self.position(id) else { return Admit::Refused };
        match self.entries[index].place {
            Place::Handshaking => {}
            Place::Waiting(waiting) if waiting == role => {}
            // Unreachable: a connection authenticates once, with one role.
            Place::Waiting(_) | Place::Idle(_) | Place::Busy(_) => return Admit::Refused,
        }
        let max = self.role_max(role);
        let evicted = if self.count(|place| place == Place::Idle(role) || place == Place::Busy(role)) < max {
            None
        } else if let Some(victim) = self.oldest(|place| place == Place::Idle(role)) {
            Some(self.entries.swap_remove(victim).token)
        } else {
            if self.entries[index].place == Place::Handshaking {
                if self.count(|place| place == Place::Waiting(role)) >= max {
                    return Admit::Refused;
                }
                let since = self.tick();
                let entry = &mut self.entries[index];
                entry.place = Place::Waiting(role);
                entry.since = since;
            }
            return Admit::Wait;
        };
        // The eviction may have moved the entry (swap_remove): find it again.
        let since = self.tick();
        if let Some(index) = self.position(id) {
            let entry = &mut self.entries[index];
            entry.place = Place::Idle(role);
            entry.since = since;
        }
        Admit::Admitted { evicted }
    }

    /// The session `id` is about to act on a payload. `false` if it was evicted (or is not in a
    /// slot): it must then not act on it.
    pub(crate) fn begin_work(&mut self, id: ConnectionId) -> bool {
        let Some(index) = self.position(id) else { return false };
        let entry = &mut self.entries[index];
        match entry.place {
            Place::Idle(role) => {
                entry.place = Place::Busy(role);
                true
            }
            Place::Handshaking | Place::Waiting(_) | Place::Busy(_) => false,
        }
    }

    /// The session `id` has written its answer: it is idle again, and may be evicted.
    pub(crate) fn end_work(&mut self, id: ConnectionId) {
        let since = self.tick();
        if let Some(index) = self.position(id)
            && let Place::Busy(role) = self.entries[index].place
        {
            let entry = &mut self.entries[index];
            entry.place = Place::Idle(role);
            entry.since = since;
        }
    }

    /// The connection `id` has ended: its place is free at once. Returns the place it had
    /// (`None` if it had been evicted).
    pub(crate) fn leave(&mut self, id: ConnectionId) -> Option<Place> {
        let index = self.position(id)?;
        Some(self.entries.swap_remove(index).place)
    }

    /// Where the connection `id` is, if it still has a place.
    #[cfg(test)]
    pub(crate) fn place(&self, id: ConnectionId) -> Option<Place> {
        self.position(id).map(|index| self.entries[index].place)
    }

    /// How many connections hold a place.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose tokens are the connections' own names.
    fn table(handshaking: usize, clinicians: usize, patients: usize) -> Table<&'static str> {
        Table::new(handshaking, clinicians, patients)
    }

    fn admitted(id: ConnectionId, table: &mut Table<&'static str>, role: Role) -> Option<&'static str> {
        match table.admit(id, role) {
            Admit::Admitted { evicted } => evicted,
            other => panic!("{id} as {role} was not admitted: {other:?}"),
        }
    }

    #[test]
    fn a_full_handshaking_pool_evicts_its_oldest_connection() {
        let mut table = table(2, 1, 1);
        let (a, none) = table.arrive("a");
        assert_eq!(none, None);
        let (b, _) = table.arrive("b");
        let (c, evicted) = table.arrive("c");
        assert_eq!(evicted, Some("a"));
        assert_eq!(table.place(a), None);
        assert_eq!(table.place(b), Some(Place::Handshaking));
        assert_eq!(table.place(c), Some(Place::Handshaking));
        // An evicted connection cannot be admitted later.
        assert_eq!(table.admit(a, Role::Clinician), Admit::Refused);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn unauthenticated_connections_never_take_a_slot() {
        let mut table = table(3, 1, 1);
        let (patient, _) = table.arrive("patient");
        assert_eq!(admitted(patient, &mut table, Role::Patient), None);
        for name in ["x", "y", "z", "w"] {
            table.arrive(name);
        }
        let (clinician, evicted) = table.arrive("clinician");
        assert_eq!(evicted, Some("y"));
        assert_eq!(admitted(clinician, &mut table, Role::Clinician), None);
        assert_eq!(table.place(patient), Some(Place::Idle(Role::Patient)));
    }

    #[test]
    fn a_newcomer_takes_the_slot_of_the_longest_idle_session_of_its_role_only() {
        let mut table = table(4, 2, 1);
        let (first, _) = table.arrive("first");
        let (second, _) = table.arrive("second");
        let (patient, _) = table.arrive("patient");
        admitted(first, &mut table, Role::Clinician);
        admitted(second, &mut table, Role::Clinician);
        admitted(patient, &mut table, Role::Patient);
        // `first` works after `second` went idle: `second` has been idle the longest.
        assert!(table.begin_work(first));
        table.end_work(first);
        let (third, _) = table.arrive("third");
        assert_eq!(admitted(third, &mut table, Role::Clinician), Some("second"));
        assert_eq!(table.place(second), None);
        assert!(!table.begin_work(second), "an evicted session never acts");
        assert_eq!(table.place(patient), Some(Place::Idle(Role::Patient)), "a clinician never evicts a patient");
        // A second PTM session replaces the idle first one, and no clinician.
        let (ptm, _) = table.arrive("ptm");
        assert_eq!(admitted(ptm, &mut table, Role::Patient), Some("patient"));
        assert_eq!(table.place(first), Some(Place::Idle(Role::Clinician)));
        assert_eq!(table.place(third), Some(Place::Idle(Role::Clinician)));
    }

    #[test]
    fn a_busy_session_is_never_evicted_the_newcomer_waits_then_takes_it_when_idle() {
        let mut table = table(4, 1, 1);
        let (holder, _) = table.arrive("holder");
        admitted(holder, &mut table, Role::Clinician);
        assert!(table.begin_work(holder));
        let (newcomer, _) = table.arrive("newcomer");
        assert_eq!(table.admit(newcomer, Role::Clinician), Admit::Wait);
        assert_eq!(table.place(newcomer), Some(Place::Waiting(Role::Clinician)));
        // Waiting places are bounded by the role's slots.
        let (another, _) = table.arrive("another");
        assert_eq!(table.admit(another, Role::Clinician), Admit::Refused);
        // Still busy: still waiting; then the holder answers and is idle.
        assert_eq!(table.admit(newcomer, Role::Clinician), Admit::Wait);
        assert_eq!(table.place(holder), Some(Place::Busy(Role::Clinician)));
        table.end_work(holder);
        assert_eq!(admitted(newcomer, &mut table, Role::Clinician), Some("holder"));
        // A flood cannot evict a waiting connection either.
        let mut table = table_with_waiter();
        for name in ["f1", "f2", "f3", "f4", "f5"] {
            let (_, evicted) = table.arrive(name);
            assert_ne!(evicted, Some("waiter"));
        }
    }

    fn table_with_waiter() -> Table<&'static str> {
        let mut table = table(2, 1, 1);
        let (holder, _) = table.arrive("holder");
        admitted(holder, &mut table, Role::Clinician);
        assert!(table.begin_work(holder));
        let (waiter, _) = table.arrive("waiter");
        assert_eq!(table.admit(waiter, Role::Clinician), Admit::Wait);
        table
    }

    #[test]
    fn a_finished_session_frees_its_slot_at_once() {
        let mut table = table(4, 1, 1);
        let (holder, _) = table.arrive("holder");
        admitted(holder, &mut table, Role::Clinician);
        assert!(table.begin_work(holder));
        let (newcomer, _) = table.arrive("newcomer");
        assert_eq!(table.admit(newcomer, Role::Clinician), Admit::Wait);
        assert_eq!(table.leave(holder), Some(Place::Busy(Role::Clinician)));
        assert_eq!(admitted(newcomer, &mut table, Role::Clinician), None, "a free slot, nobody evicted");
        assert_eq!(table.leave(newcomer), Some(Place::Idle(Role::Clinician)));
        assert_eq!(table.leave(newcomer), None);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn bounds_below_one_count_as_one() {
        let mut table = table(0, 0, 0);
        let (a, _) = table.arrive("a");
        let (b, evicted) = table.arrive("b");
        assert_eq!(evicted, Some("a"));
        assert_eq!(table.place(a), None);
        assert_eq!(admitted(b, &mut table, Role::Patient), None);
    }
}
