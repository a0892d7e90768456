//! mobius-insights
