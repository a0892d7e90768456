//! Service level objectives, the pure part: definitions (`spec`, `openslo`), time-bucketed SLI
//! counters (`series`), error budgets and burn rates (`budget`), multi-window multi-burn-rate
//! alerts (`alerts`) and the error-budget policy (`policy`). No I/O: the server records the
//! buckets, evaluates on a clock it passes in, and acts on the results.

pub mod alerts;
pub mod budget;
pub mod openslo;
pub mod policy;
pub mod series;
pub mod spec;
