//! Privacy operations: what the appliance keeps, for how long, and the evidence of it
//! (PRIVACY-PROMISES.md). Today: the retention purge of system logs and raw deliveries.

pub mod retention;
