//! Support code shared by the end-to-end tests in `tests/` (the root package's only library target).

pub use rrlab;

pub mod browser;
pub mod live;
