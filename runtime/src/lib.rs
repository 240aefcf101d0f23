//! What every OMS binary (API, worker, simulator) shares at start-up:
//! reading typed settings from the environment, installing logging, and
//! waiting for the signal to stop. Nothing here knows about orders or stock,
//! so the simulator can use it without compiling Postgres or Temporal code.

pub mod config;
pub mod telemetry;
