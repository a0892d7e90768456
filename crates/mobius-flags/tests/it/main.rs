//! Integration tests: the public API over whole flag documents.

mod corpus;
mod evaluate;
mod header;
mod load;
mod properties;
mod testbed;
