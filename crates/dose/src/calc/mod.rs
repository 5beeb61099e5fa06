//! The calculations an ITB service needs, each a pure function of its inputs with worked
//! examples in its tests.

pub mod bridge;
pub mod gas;
pub mod refill;
pub mod refill_gap;
pub mod screening;
pub mod titrate;
pub mod travel;
