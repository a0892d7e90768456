//! mobius-store
