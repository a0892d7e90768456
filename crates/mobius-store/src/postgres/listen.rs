//! `LISTEN` on a connection and a thread of its own (see [`crate::Store::listen`]).
//!
//! The thread connects as the pool does (the same URL, TLS and timeouts), listens, and hands
//! each notification's payload to the listener; when the connection drops (the server
//! restarted, the network broke) it connects again after a second, for as long as the
//! listener wants notifications. What was sent while it was away is lost: waiters also poll.

use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;

use super::pool::Pool;
use crate::{Listener, StoreError};

/// How long one wait for notifications lasts before the connection is looked at again.
const WAIT: Duration = Duration::from_secs(5);

/// Starts listening on `channel`; the thread ends once `wake` returns `false`.
pub(super) fn start(pool: &Pool, channel: &str, wake: Listener) -> Result<(), StoreError> {
    if !channel.chars().all(|c| c.is_ascii_lowercase() || c == '_') || channel.is_empty() {
        return Err(StoreError::Corrupt(format!("`{channel}` is not a channel name")));
    }
    let (pool, channel) = (pool.clone_config(), channel.to_owned());
    std::thread::Builder::new()
        .name(format!("listen-{channel}"))
        .spawn(move || {
            loop {
                match listen(&pool, &channel, &wake) {
                    Ok(()) => return,
                    Err(e) => tracing::debug!(channel = %channel, error = %e, "listening stopped; connecting again"),
                }
                std::thread::sleep(Duration::from_secs(1));
                // A listener that no longer wants anything says so on its next call.
                if !wake("") {
                    return;
                }
            }
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot start the listening thread: {e}")))?;
    Ok(())
}

/// Listens until the connection fails (an error) or `wake` wants no more (`Ok`).
fn listen(pool: &Pool, channel: &str, wake: &Listener) -> Result<(), StoreError> {
    let mut client = pool.connect()?;
    client.batch_execute(&format!("LISTEN {channel}"))?;
    loop {
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(WAIT);
            while let Some(notification) = waiting.next()? {
                if !wake(notification.payload()) {
                    return Ok(());
                }
            }
        }
        if client.is_closed() {
            return Err(StoreError::Corrupt("the listening connection closed".into()));
        }
        // A round trip: a connection the server dropped fails here.
        client.simple_query("")?;
    }
}
