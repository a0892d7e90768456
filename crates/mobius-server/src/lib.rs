//! mobius-server
