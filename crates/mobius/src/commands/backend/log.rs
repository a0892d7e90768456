//! The event log: events in (one built here, one record as read, an import's batches), the raw
//! log out, and the measurements read from it (DORA, the value stream).

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use mobius_events::cloudevents::Item;
use mobius_events::{MAX_BATCH_ITEMS, NewEvent, Origin, StoredEvent, record};
use mobius_insights::dora::DoraReport;
use mobius_insights::flow::FlowReport;
use mobius_log::ingest::{EventResult, IngestReport};
use mobius_log::query::{self, Selection};
use mobius_store::EventQuery;
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::{Answer, Local, Remote};

/// The event log.
pub trait Log: Send + Sync {
    /// Appends one event built here (by `mobius_events::emit`).
    fn append(&self, event: NewEvent) -> Answer<'_, EventResult>;

    /// Appends one record as read (`mobius events send -`): a CDEvent, bare or in a
    /// CloudEvent, or a recorded webhook delivery. A record the log refuses is a rejected
    /// result, not an error.
    fn send(&self, record: String) -> Answer<'_, EventResult>;

    /// How `mobius events import` cuts its files into batches for this log.
    fn framing(&self) -> Framing;

    /// Appends an import's batches, cut as [`Log::framing`] says, as they come, and hands each
    /// batch's report to `done`, in order. The local store takes the whole import as one bulk
    /// load ([`mobius_store::Store::import`]), durable once this returns; a server takes a
    /// request a batch.
    fn import(&self, batches: Batches, done: Done) -> Answer<'_, ()>;

    /// The raw log, in order.
    fn events<'a>(&'a self, list: &'a EventList) -> Answer<'a, Vec<StoredEvent>>;

    /// DORA's four keys of each selected service.
    fn dora<'a>(&'a self, measure: &'a Measure) -> Answer<'a, Vec<DoraReport>>;

    /// The value stream of each selected service.
    fn flow<'a>(&'a self, measure: &'a Measure) -> Answer<'a, Vec<FlowReport>>;
}

/// How an import's files are cut into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Whether records are parsed as the files are cut ([`Batch::Parsed`]), so that parsing
    /// the next batch overlaps appending this one; else they go as text ([`Batch::Records`]).
    pub parse: bool,
    /// The most records a batch holds.
    pub max_records: usize,
    /// A batch is full once its records' text reaches this many bytes.
    pub max_bytes: usize,
}

impl Framing {
    /// The local store: small batches, parsed on the way. The store takes the whole import
    /// as one bulk load and makes its own transactions of them, so a batch is only what is in
    /// flight between the reading thread and the store: a few MiB, whatever the file's size.
    pub const LOCAL: Framing = Framing { parse: true, max_records: 1_000, max_bytes: 2 << 20 };

    /// A server: a request holds at most [`MAX_BATCH_ITEMS`] records (it refuses more with
    /// 413) and stays under its 10 MiB body limit (one record of at most 1 MiB may follow the
    /// 8 MiB mark).
    pub const SERVER: Framing = Framing { parse: false, max_records: MAX_BATCH_ITEMS, max_bytes: 8 << 20 };

    /// With at most `records` records a batch (`--batch`), and never more than this log takes.
    pub fn at_most(self, records: usize) -> Framing {
        Framing { max_records: self.max_records.min(records), ..self }
    }
}

/// An import's batches, in order.
pub type Batches = mpsc::Receiver<Batch>;

/// What hears of each batch of an import once it is in.
pub type Done = Box<dyn FnMut(IngestReport) + Send>;

/// One batch of an import.
pub enum Batch {
    /// Records as read from the file.
    Records(Vec<String>),
    /// Records parsed already, each an event or why it is not one.
    Parsed(Vec<Item>),
}

/// Which part of the raw log to list.
#[derive(Debug, Clone, Default)]
pub struct EventList {
    /// Only events after this log position.
    pub after: Option<i64>,
    /// Only events of this type.
    pub ty: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// What `mobius dora` and `mobius flow` measure, as given: the window is worked out where the
/// measuring is done.
#[derive(Debug, Clone)]
pub struct Measure {
    /// One service, else every service with facts in the environment.
    pub service: Option<String>,
    pub environment: String,
    pub since: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The band table (DORA only).
    pub bands: String,
    /// List the facts behind each number.
    pub explain: bool,
}

impl Measure {
    fn selection(&self, now: Timestamp) -> Result<Selection> {
        let window = query::window(self.since.as_deref(), self.from.as_deref(), self.to.as_deref(), now)?;
        Ok(Selection { service: self.service.clone(), environment: self.environment.clone(), window })
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("environment", self.environment.clone()), ("bands", self.bands.clone())];
        for (key, value) in [("service", &self.service), ("since", &self.since), ("from", &self.from), ("to", &self.to)]
        {
            if let Some(value) = value {
                params.push((key, value.clone()));
            }
        }
        if self.explain {
            params.push(("explain", "true".into()));
        }
        params
    }
}

/// The result of the one event of `report`.
fn only(report: IngestReport) -> Result<EventResult> {
    report.results.into_iter().next().context("the log returned no result for the event")
}

impl Local {
    /// Appends `items` in one transaction.
    async fn ingest(&self, items: Vec<Item>) -> Result<IngestReport> {
        let log = self.app().await?.log.clone();
        Ok(mobius_log::blocking::spawn(move || log.ingest(items)).await?)
    }
}

impl Log for Local {
    fn append(&self, event: NewEvent) -> Answer<'_, EventResult> {
        Box::pin(async move { only(self.ingest(vec![Ok(event)]).await?) })
    }

    fn send(&self, record: String) -> Answer<'_, EventResult> {
        Box::pin(async move { only(self.ingest(vec![record::parse(&record, Origin::Api)]).await?) })
    }

    fn framing(&self) -> Framing {
        Framing::LOCAL
    }

    fn import(&self, mut batches: Batches, done: Done) -> Answer<'_, ()> {
        Box::pin(async move {
            let log = self.app().await?.log.clone();
            let items = move || {
                batches.blocking_recv().map(|batch| match batch {
                    Batch::Parsed(items) => items,
                    Batch::Records(records) => records.iter().map(|r| record::parse(r, Origin::Api)).collect(),
                })
            };
            // One bulk load on one thread of the blocking pool, from the first batch to the
            // last.
            Ok(mobius_log::blocking::spawn(move || log.import(std::iter::from_fn(items), done)).await?)
        })
    }

    fn events<'a>(&'a self, list: &'a EventList) -> Answer<'a, Vec<StoredEvent>> {
        let query =
            EventQuery { after_seq: list.after, ty: list.ty.clone(), limit: list.limit, ..EventQuery::default() };
        Box::pin(self.with_store(move |store| Ok(store.events(&query)?)))
    }

    fn dora<'a>(&'a self, measure: &'a Measure) -> Answer<'a, Vec<DoraReport>> {
        Box::pin(async move {
            let selection = measure.selection(Timestamp::now())?;
            let (bands, explain) = (measure.bands.clone(), measure.explain);
            self.with_store(move |store| Ok(query::dora(store, &selection, &bands, explain)?)).await
        })
    }

    fn flow<'a>(&'a self, measure: &'a Measure) -> Answer<'a, Vec<FlowReport>> {
        Box::pin(async move {
            let selection = measure.selection(Timestamp::now())?;
            let explain = measure.explain;
            self.with_store(move |store| Ok(query::flow(store, &selection, explain)?)).await
        })
    }
}

impl Remote {
    /// `POST /api/v1/events` with one record; a rejected record is a result (the server
    /// answers 400 with the report).
    async fn post_event(&self, record: String) -> Result<EventResult> {
        let client = &self.client;
        let request = client.request(Method::POST, "/api/v1/events").header("content-type", "application/json");
        only(client.json_any_status(request.body(record)).await?)
    }

    /// `GET /api/v1/dora` or `/flow`: one object for a service, else every page of the list.
    async fn measure<T: DeserializeOwned>(&self, path: &str, measure: &Measure) -> Result<Vec<T>> {
        let request = self.client.request(Method::GET, path).query(&measure.params());
        if measure.service.is_none() {
            return self.client.all(request, None).await;
        }
        let one: Option<T> = self.client.json(request).await?;
        Ok(one.into_iter().collect())
    }
}

impl Log for Remote {
    fn append(&self, event: NewEvent) -> Answer<'_, EventResult> {
        Box::pin(self.post_event(event.raw))
    }

    fn send(&self, record: String) -> Answer<'_, EventResult> {
        Box::pin(self.post_event(record))
    }

    fn framing(&self) -> Framing {
        Framing::SERVER
    }

    fn import(&self, mut batches: Batches, mut done: Done) -> Answer<'_, ()> {
        Box::pin(async move {
            while let Some(batch) = batches.recv().await {
                let Batch::Records(records) = batch else { bail!("a server takes an import's records as text") };
                let report = if records.is_empty() {
                    IngestReport::default()
                } else {
                    let request = self
                        .client
                        .request(Method::POST, "/api/v1/events")
                        .header("content-type", "application/x-ndjson")
                        .body(records.join("\n"));
                    self.client.json_any_status(request).await?
                };
                done(report);
            }
            Ok(())
        })
    }

    fn events<'a>(&'a self, list: &'a EventList) -> Answer<'a, Vec<StoredEvent>> {
        Box::pin(async move {
            let mut params = vec![("limit", list.limit.to_string())];
            params.extend(list.after.map(|after| ("after", after.to_string())));
            params.extend(list.ty.clone().map(|ty| ("type", ty)));
            let request = self.client.request(Method::GET, "/api/v1/events").query(&params);
            self.client.all(request, Some(list.limit as usize)).await
        })
    }

    fn dora<'a>(&'a self, measure: &'a Measure) -> Answer<'a, Vec<DoraReport>> {
        Box::pin(self.measure("/api/v1/dora", measure))
    }

    fn flow<'a>(&'a self, measure: &'a Measure) -> Answer<'a, Vec<FlowReport>> {
        Box::pin(self.measure("/api/v1/flow", measure))
    }
}
