//! Privacy operations: what the appliance keeps, for how long, and the evidence of it
//! (PRIVACY-PROMISES.md).

pub mod account;
pub mod backup;
pub mod evidence;
pub mod retention;
pub mod routes;
