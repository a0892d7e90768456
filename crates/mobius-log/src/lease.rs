//! Leases: work that must happen once however many replicas serve one store — the alert loop,
//! SLI compaction, repository polling, schedules, commit status delivery — runs only on the
//! replica holding its lease (River's and Oban's leader rows: a row per lease with a holder
//! and an expiry, taken when free or lapsed, renewed by its holder; no advisory locks, no
//! consensus of our own).
//!
//! [`Leases::keep`] claims and renews every lease this replica wants every [`RENEW_EVERY`],
//! each for [`TTL`]; a replica that dies stops renewing, and another takes the lease within
//! `TTL` plus one renewal. [`Leases::run_while_held`] starts a task when its lease is taken and
//! tells it to stop when the lease is lost (a renewal failed, or another holder has it). With
//! SQLite there is one process, which holds every lease.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::SignedDuration;
use mobius_store::Store;
use tokio::sync::watch;

use crate::clock::Clock;

/// How long a lease lasts unless renewed.
pub const TTL: Duration = Duration::from_secs(15);
/// How often a holder renews (and a replica without it tries to take it).
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// This replica's leases. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    holder: String,
    clock: Clock,
    /// Each lease this replica wants, and whether it holds it.
    wanted: Mutex<BTreeMap<String, watch::Sender<bool>>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("holder", &self.inner.holder).finish_non_exhaustive()
    }
}

impl Leases {
    /// The leases of the replica `holder` (unique among the replicas sharing `store`).
    pub fn new(store: Arc<dyn Store>, holder: impl Into<String>, clock: Clock) -> Leases {
        Leases { inner: Arc::new(Inner { store, holder: holder.into(), clock, wanted: Mutex::default() }) }
    }

    /// This replica's id, as lease rows name it.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<bool>>> {
        // A panic while the map was held leaves it whole (every write is one insert or set).
        self.inner.wanted.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wants the lease `name` from now on; the receiver says whether this replica holds it.
    pub fn lease(&self, name: &str) -> watch::Receiver<bool> {
        self.wanted().entry(name.to_owned()).or_insert_with(|| watch::channel(false).0).subscribe()
    }

    /// Whether this replica holds `name` now (as of the last claim or renewal).
    pub fn holds(&self, name: &str) -> bool {
        self.wanted().get(name).is_some_and(|held| *held.borrow())
    }

    /// The leases this replica holds now, by name.
    pub fn held(&self) -> Vec<String> {
        self.wanted().iter().filter(|(_, held)| *held.borrow()).map(|(name, _)| name.clone()).collect()
    }

    /// Every lease this replica wants, with whether it holds it.
    pub fn wanted_leases(&self) -> Vec<(String, bool)> {
        self.wanted().iter().map(|(name, held)| (name.clone(), *held.borrow())).collect()
    }

    /// Wants the lease `name` and claims it now rather than at the next round (a deploy to an
    /// environment nobody drives need not wait for one); whether this replica holds it.
    pub async fn take(&self, name: &str) -> bool {
        self.lease(name);
        self.claim(vec![name.to_owned()]).await;
        self.holds(name)
    }

    /// Claims or renews every wanted lease once: what [`Leases::keep`] does each round.
    pub async fn renew(&self) {
        let names: Vec<String> = self.wanted().keys().cloned().collect();
        self.claim(names).await;
    }

    /// Claims or renews each of `names`, and tells their watchers whether they are held.
    async fn claim(&self, names: Vec<String>) {
        let (store, holder, clock) = (self.inner.store.clone(), self.inner.holder.clone(), self.inner.clock);
        let claimed = crate::blocking::spawn(move || {
            let now = clock.now();
            let expires =
                now.saturating_add(SignedDuration::try_from(TTL).unwrap_or(SignedDuration::MAX)).unwrap_or(now);
            names
                .into_iter()
                .map(|name| {
                    let held = store.claim_lease(&name, &holder, now, expires);
                    (name, held)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let wanted = self.wanted();
        for (name, held) in claimed {
            let held = match held {
                Ok(held) => held,
                // Not knowing is not holding: the work stops here rather than run twice.
                Err(error) => {
                    tracing::warn!(lease = %name, error = %error, "cannot renew a lease; giving its work up");
                    false
                }
            };
            if let Some(sender) = wanted.get(&name) {
                sender.send_if_modified(|was| {
                    let changed = *was != held;
                    if changed {
                        tracing::info!(lease = %name, held, "lease {}", if held { "taken" } else { "lost" });
                    }
                    *was = held;
                    changed
                });
            }
        }
    }

    /// Claims and renews every wanted lease every [`RENEW_EVERY`] until `shutdown`; then gives
    /// them up at once, so another replica need not wait for them to lapse.
    pub async fn keep(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.renew().await;
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(RENEW_EVERY) => {}
            }
        }
        let names: Vec<String> = self.wanted().keys().cloned().collect();
        for (_, held) in self.wanted().iter() {
            held.send_replace(false);
        }
        let (store, holder) = (self.inner.store.clone(), self.inner.holder.clone());
        let released = crate::blocking::spawn(move || {
            names.iter().try_for_each(|name| store.release_lease(name, &holder).map(|_| ()))
        })
        .await;
        if let Err(error) = released {
            tracing::warn!(error = %error, "cannot give the leases up; they lapse on their own");
        }
    }

    /// Runs `task` while this replica holds `name`, until `shutdown`: the task starts when
    /// the lease is taken and its argument (a future) resolves when the lease is lost or on
    /// `shutdown`; it starts again if the lease is taken again.
    pub async fn run_while_held<F, Fut>(&self, name: &str, shutdown: impl Future<Output = ()>, mut task: F)
    where
        F: FnMut(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut held = self.lease(name);
        // Shutdown as a value every incarnation of the task can watch.
        let (stop, stopping) = watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let work = async {
            let mut stopped = stopping.clone();
            loop {
                // Until the lease is this replica's, or the replica stops.
                tokio::select! {
                    taken = held.wait_for(|h| *h) => if taken.is_err() { return },
                    _ = stopped.wait_for(|s| *s) => return,
                }
                let (mut lost, mut stopped) = (held.clone(), stopping.clone());
                let until = Box::pin(async move {
                    tokio::select! {
                        _ = lost.wait_for(|h| !*h) => {}
                        _ = stopped.wait_for(|s| *s) => {}
                    }
                });
                // Run to its end: told to stop, the task finishes what it was doing.
                task(until).await;
                if *stopping.borrow() {
                    return;
                }
            }
        };
        tokio::join!(shutdown, work);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mobius_store::SqliteStore;

    use super::*;

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        (dir, store)
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_that_stops_renewing_hands_its_work_over_within_the_ttl() {
        let (_dir, store) = store();
        let clock = Clock::tokio("2026-12-06T18:00:00Z".parse().unwrap());
        let (a, b) = (Leases::new(store.clone(), "a", clock), Leases::new(store.clone(), "b", clock));
        let (held_a, held_b) = (a.lease("alerts"), b.lease("alerts"));
        a.renew().await;
        b.renew().await;
        assert!(*held_a.borrow() && !*held_b.borrow(), "the first claimer holds it");
        assert_eq!(a.held(), ["alerts"]);

        // b keeps trying; a renews twice, then dies (stops renewing without giving it up).
        for _ in 0..2 {
            tokio::time::advance(RENEW_EVERY).await;
            a.renew().await;
            b.renew().await;
            assert!(!*held_b.borrow(), "a renewed it");
        }
        let mut waited = Duration::ZERO;
        while !*held_b.borrow() {
            tokio::time::advance(RENEW_EVERY).await;
            waited += RENEW_EVERY;
            b.renew().await;
            assert!(waited <= TTL + RENEW_EVERY, "b took it within the TTL and one renewal");
        }
        assert!(waited >= TTL - RENEW_EVERY, "not before a's lease lapsed: {waited:?}");
        a.renew().await;
        assert!(!*held_a.borrow(), "a, back, finds it b's and stops its work");
        assert_eq!(store.leases().unwrap()[0].holder, "b");
    }

    #[tokio::test(start_paused = true)]
    async fn taking_a_lease_claims_it_at_once_unless_another_replica_holds_it() {
        let (_dir, store) = store();
        let clock = Clock::tokio("2026-12-06T18:00:00Z".parse().unwrap());
        let (a, b) = (Leases::new(store.clone(), "a", clock), Leases::new(store.clone(), "b", clock));
        let held_b = b.lease("environment:shop/production");
        assert!(a.take("environment:shop/production").await, "free: taken without waiting for a round");
        assert_eq!(a.held(), ["environment:shop/production"]);
        assert!(!b.take("environment:shop/production").await, "a holds it");
        assert!(!*held_b.borrow());
        a.renew().await;
        assert_eq!(a.held(), ["environment:shop/production"], "wanted from then on: renewed with the others");
    }

    #[tokio::test(start_paused = true)]
    async fn work_runs_only_while_its_lease_is_held_and_stops_with_the_replica() {
        let (_dir, store) = store();
        let clock = Clock::tokio("2026-12-06T18:00:00Z".parse().unwrap());
        let leases = Leases::new(store.clone(), "a", clock);
        let (started, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop_keeping, kept) = tokio::sync::oneshot::channel::<()>();
        let (stop_work, worked) = tokio::sync::oneshot::channel::<()>();
        let keeper = tokio::spawn(leases.clone().keep(async move {
            let _ = kept.await;
        }));
        let (s, e) = (started.clone(), ended.clone());
        let work = tokio::spawn({
            let leases = leases.clone();
            async move {
                leases
                    .run_while_held(
                        "polling",
                        async move {
                            let _ = worked.await;
                        },
                        move |until| {
                            let (s, e) = (s.clone(), e.clone());
                            async move {
                                s.fetch_add(1, Ordering::SeqCst);
                                until.await;
                                e.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                    )
                    .await;
            }
        });
        tokio::time::sleep(RENEW_EVERY * 2).await;
        assert_eq!((started.load(Ordering::SeqCst), ended.load(Ordering::SeqCst)), (1, 0), "running while held");

        // Someone else takes the lease (this replica's row lapsed and another claimed it).
        let far = clock.now() + SignedDuration::from_hours(1);
        store.release_lease("polling", "a").unwrap();
        assert!(store.claim_lease("polling", "z", clock.now(), far).unwrap());
        tokio::time::sleep(RENEW_EVERY * 2).await;
        assert_eq!((started.load(Ordering::SeqCst), ended.load(Ordering::SeqCst)), (1, 1), "stopped when lost");
        assert!(leases.held().is_empty());

        // z gives it back: the work starts again; the replica's shutdown ends it.
        store.release_lease("polling", "z").unwrap();
        tokio::time::sleep(RENEW_EVERY * 2).await;
        assert_eq!(started.load(Ordering::SeqCst), 2, "started again once taken again");
        stop_work.send(()).unwrap();
        work.await.unwrap();
        assert_eq!(ended.load(Ordering::SeqCst), 2, "told to stop on shutdown");
        stop_keeping.send(()).unwrap();
        keeper.await.unwrap();
        assert!(store.leases().unwrap().is_empty(), "given up at shutdown, not left to lapse");
    }
}
