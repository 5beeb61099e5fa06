//! `itb-clinic`: the ITB service's system of record.
//!
//! Patients, pumps, prescriptions, refills, interrogations, appointments and users, kept in
//! SQLite (one file under `./itb-data/`) or PostgreSQL behind one [`store::Store`]; the service's
//! rules as pure functions over plain data ([`rules`]); the refill worklist; the JSON API
//! ([`api`]); programming pumps from the clinic through `itb-programmer` ([`programming`]); and
//! a demo service with virtual pumps ([`demo`]).
//!
//! # Invariants
//! - Every implanted pump appears on the worklist exactly once; its refill-due date is computed
//!   (by `itb-dose`'s `review::figures`, the same rule as `itb calc refill` and the pump's own
//!   status), stored and indexed, and recomputed in the transaction of every change that moves
//!   it. No date can be computed: the pump is `unknown`, never fine.
//! - Every clinical change writes its audit entry in its own transaction, chained by SHA-256 to
//!   the one before; writers are serialised so the chain never forks.
//! - Quantities are exact integers (nanolitres, nanograms); instants are UTC milliseconds;
//!   dates are the service's (Europe/London).
#![forbid(unsafe_code)]

pub mod api;
pub mod clock;
pub mod demo;
pub mod error;
pub mod fleet;
pub mod model;
pub mod programming;
pub mod rules;
pub mod store;

pub use clock::ServiceClock;
pub use error::{ClinicError, FieldError};
pub use store::Store;
