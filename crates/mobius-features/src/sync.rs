//! Keeping every replica's sets current. A change made through one replica is written to the
//! shared store; each replica compares the stored versions with its own every second (one
//! small query, no documents) and reads the sets that moved. On PostgreSQL the writing
//! transaction also sends `NOTIFY mobius_flag_sets`, which every replica's `Store::listen`
//! thread turns into an immediate read, so a change is usually in force everywhere within
//! milliseconds; the poll stays as the fallback for a notification lost while reconnecting.

use std::sync::Arc;
use std::time::Duration;

use mobius_store::StoreError;
use mobius_store::flags::CHANNEL;

use crate::FlagSets;

/// How often the stored versions are compared with the ones held.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Past this many sets to read, one read of every set beats one read each.
const READ_ALL_PAST: usize = 8;

impl FlagSets {
    /// Reads the sets whose stored version is newer than the one held here (all of them the
    /// first time) and puts them in force, announcing each; how many changed.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let this = self.clone();
        mobius_log::blocking::spawn(move || this.refresh_now()).await
    }

    fn refresh_now(&self) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let versions = store.flag_set_versions()?;
        let stale: Vec<String> = {
            let sets = self.read();
            versions
                .into_iter()
                .filter(|(name, version)| sets.seen.get(name).is_none_or(|&seen| seen < *version as u64))
                .map(|(name, _)| name)
                .collect()
        };
        let records = if stale.len() > READ_ALL_PAST {
            store.flag_sets()?.into_iter().filter(|r| stale.contains(&r.name)).collect()
        } else {
            let mut records = Vec::with_capacity(stale.len());
            for name in &stale {
                records.extend(store.flag_set(name)?);
            }
            records
        };
        let count = records.len();
        for record in records {
            self.install(record, None);
        }
        Ok(count)
    }

    /// Keeps this replica's sets current until `stop`: a refresh every [`SYNC_EVERY`], and at
    /// once when another replica's change is announced. Every replica runs it (no lease): each
    /// serves its own evaluations.
    pub async fn sync_forever(self, stop: impl Future<Output = ()>) {
        self.listen().await;
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.refresh().await {
                tracing::warn!(error = %error, "cannot read the flag sets' versions; the sets in force stay");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(SYNC_EVERY) => {}
                () = self.inner.poke.notified() => {}
            }
        }
    }

    /// Asks the store to wake the sync on other replicas' changes (PostgreSQL); nothing on
    /// SQLite, where this process is the only writer.
    async fn listen(&self) {
        let inner = Arc::downgrade(&self.inner);
        let wake: mobius_store::Listener = Box::new(move |_payload: &str| {
            let Some(inner) = inner.upgrade() else { return false };
            inner.poke.notify_one();
            true
        });
        let store = self.inner.store.clone();
        match mobius_log::blocking::spawn(move || store.listen(CHANNEL, wake)).await {
            Ok(true) => tracing::debug!("listening for the flag sets' changes"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot listen for the flag sets' changes; polling only"),
        }
    }
}
