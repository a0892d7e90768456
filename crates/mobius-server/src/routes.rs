//! The handlers, one module per area of the application. Every handler's first argument is
//! its [`crate::auth::Caller`], so who may call is settled before anything is read.

pub mod agents;
pub mod delivery;
pub mod environments;
pub mod flag_rollouts;
pub mod flags;
pub mod gitops;
pub mod health;
pub mod log;
pub mod ofrep;
pub mod reliability;
pub mod repositories;
pub mod runs;
pub mod secrets;
