//! The service's rules as pure functions over plain data: no database, no clock. Clinical rules
//! (doses, refill dates, gaps, withdrawal risk) live in `itb-dose`; these call them.

pub mod access;
pub mod appointments;
pub mod nhs;
pub mod refill;
pub mod replacement;
pub mod worklist;
