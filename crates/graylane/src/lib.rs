#![doc = include_str!("../../../README.md")]
//!
//! # This crate
//!
//! The facade: depend on `graylane` and turn on a feature per integration. The kernel
//! ([`graylane_core`]) is re-exported at the root; each transport adapter is re-exported as a
//! module when its feature is on.

pub use graylane_core::*;
