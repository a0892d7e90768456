//! The application as a whole: its services wired by `App`, real SQLite files, real git
//! repositories and real step processes, without HTTP.

mod consistency;
mod support;
mod time;
