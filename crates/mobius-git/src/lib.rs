//! mobius-git
