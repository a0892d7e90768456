//! `mobius events import|send|list`.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mobius_events::{Origin, StoredEvent, record};
use mobius_log::ingest::{IngestReport, Ingestor, Status};
use mobius_store::EventQuery;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{EventsCommand, Remote, SendArgs};
use crate::client::Client;
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: EventsCommand) -> Result<ExitCode> {
    match command {
        EventsCommand::Import { files, batch, rules, remote } => {
            import(data_dir, json, &files, batch.max(1), rules.attribution_window.as_deref(), &remote).await
        }
        EventsCommand::Send(args) => send(data_dir, json, args).await,
        EventsCommand::List { after, ty, limit, remote } => list(data_dir, json, after, ty, limit, &remote).await,
    }
}

/// One chunk of records: their raw text (or, for the local store, the parsed events) and
/// where each starts.
struct Chunk {
    file: usize,
    texts: Vec<String>,
    /// Parsed on the splitting thread when importing locally, so that parsing the next chunk
    /// overlaps writing this one.
    items: Option<Vec<mobius_events::cloudevents::Item>>,
    lines: Vec<usize>,
    /// A record the splitter could not read (malformed JSON ends the file): its line and why.
    broken: Option<(usize, String)>,
    /// Bytes of the file consumed once this chunk is done (for the progress bar).
    consumed: u64,
    /// Bytes of record text in the chunk.
    bytes: usize,
}

/// A request to a server stays under its 10 MiB body limit.
const MAX_REQUEST_BYTES: usize = 8 << 20;

impl Chunk {
    fn new(file: usize, consumed: u64) -> Chunk {
        Chunk { file, texts: Vec::new(), items: None, lines: Vec::new(), broken: None, consumed, bytes: 0 }
    }
}

/// A rejected record, located.
#[derive(Debug, Serialize)]
struct Rejection {
    file: String,
    line: usize,
    error: String,
}

#[derive(Debug, Default, Serialize)]
struct ImportSummary {
    stored: usize,
    duplicates: usize,
    rejected: usize,
    rejections: Vec<Rejection>,
}

async fn import(
    data_dir: Option<&Path>,
    json: bool,
    files: &[PathBuf],
    batch: usize,
    attribution_window: Option<&str>,
    remote: &Remote,
) -> Result<ExitCode> {
    let client = Client::from(remote)?;
    let ingestor = match client {
        Some(_) => None,
        None => {
            let settings = super::settings(data_dir, attribution_window)?;
            let store = super::open_store_with(&settings, mobius_store::SqliteOptions::BULK)?;
            Some(Ingestor::new(store, settings.rules))
        }
    };

    let mut texts = Vec::with_capacity(files.len());
    for path in files {
        texts.push(read_input(path)?);
    }
    let total: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let progress = progress_bar(total, json);

    let mut summary = ImportSummary::default();
    // Splitting into records runs on its own thread so the next chunk is ready while the
    // current one is written.
    let (sender, receiver) = mpsc::sync_channel::<Result<Chunk>>(2);
    std::thread::scope(|scope| -> Result<()> {
        let texts = &texts;
        let local = ingestor.is_some();
        scope.spawn(move || {
            for (file, text) in texts.iter().enumerate() {
                if let Err(e) = split(file, text, batch, local, &sender) {
                    let _ = sender.send(Err(e.context(files[file].display().to_string())));
                    return;
                }
            }
        });
        let mut done_before: u64 = 0;
        let mut current_file = 0;
        for chunk in receiver {
            let mut chunk = chunk?;
            if chunk.file != current_file {
                done_before += texts[current_file].len() as u64;
                current_file = chunk.file;
            }
            let report = match (&ingestor, &client) {
                (Some(ingestor), _) => ingestor.ingest(chunk.items.take().unwrap_or_default())?,
                (None, Some(client)) => {
                    let body = chunk.texts.join("\n");
                    let request = client
                        .request(Method::POST, "/api/v1/events")
                        .header("content-type", "application/x-ndjson")
                        .body(body);
                    tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current().block_on(client.json_any_status(request))
                    })?
                }
                (None, None) => unreachable!("either a store or a server"),
            };
            summarise(&mut summary, &report, &files[chunk.file], &chunk.lines);
            if let Some((line, error)) = chunk.broken {
                summary.rejected += 1;
                summary.rejections.push(Rejection { file: files[chunk.file].display().to_string(), line, error });
            }
            if let Some(bar) = &progress {
                bar.set_position(done_before + chunk.consumed);
                bar.set_message(format!(
                    "{} stored, {} duplicate, {} rejected",
                    summary.stored, summary.duplicates, summary.rejected
                ));
            }
        }
        Ok(())
    })?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    if json {
        print_json(&summary)?;
    } else {
        println!(
            "Imported {} records: {} stored, {} duplicates, {} rejected",
            summary.stored + summary.duplicates + summary.rejected,
            summary.stored,
            summary.duplicates,
            summary.rejected
        );
        for r in summary.rejections.iter().take(20) {
            eprintln!("{}:{}: {}", r.file, r.line, r.error);
        }
        if summary.rejections.len() > 20 {
            eprintln!("… and {} more (use --json for all)", summary.rejections.len() - 20);
        }
    }
    Ok(if summary.rejected > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn summarise(summary: &mut ImportSummary, report: &IngestReport, file: &Path, lines: &[usize]) {
    summary.stored += report.stored;
    summary.duplicates += report.duplicates;
    summary.rejected += report.rejected;
    for result in &report.results {
        if result.status == Status::Rejected {
            summary.rejections.push(Rejection {
                file: file.display().to_string(),
                line: lines.get(result.index).copied().unwrap_or(0),
                error: result.error.clone().unwrap_or_default(),
            });
        }
    }
}

/// Splits a file into chunks of records: a JSON array, or JSON values one after another.
fn split(file: usize, text: &str, batch: usize, parse: bool, sender: &mpsc::SyncSender<Result<Chunk>>) -> Result<()> {
    let ready = |mut chunk: Chunk| {
        if parse {
            chunk.items = Some(chunk.texts.drain(..).map(|t| record::parse(&t, Origin::Api)).collect());
        }
        chunk
    };
    // Lines are counted incrementally from the previous record, never from the start.
    let mut line = 1;
    let mut counted = 0;
    let mut line_of = |offset: usize| {
        line += text.as_bytes()[counted..offset].iter().filter(|b| **b == b'\n').count();
        counted = offset;
        line
    };
    let mut chunk = Chunk::new(file, 0);
    let push = |record: &str, offset: usize, end: usize, chunk: &mut Chunk| -> bool {
        chunk.texts.push(record.to_owned());
        chunk.lines.push(offset);
        chunk.consumed = end as u64;
        chunk.bytes += record.len() + 1;
        if chunk.texts.len() >= batch || (!parse && chunk.bytes >= MAX_REQUEST_BYTES) {
            let full = std::mem::replace(chunk, Chunk::new(file, end as u64));
            return sender.send(Ok(ready(full))).is_ok();
        }
        true
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("line {} column {}: not a JSON array of events: {e}", e.line(), e.column()))?;
        for item in items {
            let offset = item.get().as_ptr() as usize - text.as_ptr() as usize;
            if !push(item.get(), line_of(offset), offset + item.get().len(), &mut chunk) {
                return Ok(());
            }
        }
    } else {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&serde_json::value::RawValue>();
        while let Some(item) = stream.next() {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    // Nothing after malformed JSON can be framed; keep what came before.
                    chunk.broken = Some((e.line(), format!("malformed JSON at column {}: {e}", e.column())));
                    chunk.consumed = text.len() as u64;
                    break;
                }
            };
            let offset = item.get().as_ptr() as usize - text.as_ptr() as usize;
            if !push(item.get(), line_of(offset), stream.byte_offset(), &mut chunk) {
                return Ok(());
            }
        }
    }
    if !chunk.texts.is_empty() || chunk.broken.is_some() {
        let _ = sender.send(Ok(ready(chunk)));
    }
    Ok(())
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn progress_bar(total: u64, json: bool) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {elapsed_precise} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

async fn send(data_dir: Option<&Path>, json: bool, args: SendArgs) -> Result<ExitCode> {
    let text = match &args.stdin {
        Some(dash) if dash == "-" => read_input(Path::new("-"))?,
        Some(other) => bail!("unexpected argument `{other}`: use `-` to read the event from standard input"),
        None => build_event(&args)?,
    };
    let report: IngestReport = match Client::from(&args.remote)? {
        Some(client) => {
            let request =
                client.request(Method::POST, "/api/v1/events").header("content-type", "application/json").body(text);
            client.json_any_status(request).await?
        }
        None => {
            let settings = super::settings(data_dir, args.rules.attribution_window.as_deref())?;
            let ingestor = Ingestor::new(super::open_store(&settings)?, settings.rules);
            ingestor.ingest(vec![record::parse(&text, Origin::Api)])?
        }
    };
    let result = report.results.first().context("the server returned no result")?;
    if json {
        print_json(result)?;
    } else {
        match result.status {
            Status::Stored => println!("stored {}", result.id.as_deref().unwrap_or_default()),
            Status::Duplicate => {
                println!("duplicate: {} was already in the log", result.id.as_deref().unwrap_or_default())
            }
            Status::Rejected => eprintln!("rejected: {}", result.error.as_deref().unwrap_or_default()),
        }
    }
    Ok(if result.status == Status::Rejected { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A v0.5.1 CDEvent from flags.
fn build_event(args: &SendArgs) -> Result<String> {
    let content: Value = serde_json::from_str(&args.content)
        .map_err(|e| anyhow::anyhow!("--content is not JSON (column {}): {e}", e.column()))?;
    let event = json!({
        "context": {
            "specversion": "0.5.1",
            "id": args.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            "source": args.source.clone().unwrap_or_else(|| "/mobius/cli".to_owned()),
            "type": args.ty,
            "timestamp": args.timestamp.clone().unwrap_or_else(|| jiff::Timestamp::now().to_string()),
        },
        "subject": { "id": args.subject, "content": content },
    });
    Ok(event.to_string())
}

async fn list(
    data_dir: Option<&Path>,
    json: bool,
    after: Option<i64>,
    ty: Option<String>,
    limit: u32,
    remote: &Remote,
) -> Result<ExitCode> {
    let events: Vec<StoredEvent> = match Client::from(remote)? {
        Some(client) => {
            let mut request = client.request(Method::GET, "/api/v1/events").query(&[("limit", limit.to_string())]);
            if let Some(after) = after {
                request = request.query(&[("after", after.to_string())]);
            }
            if let Some(ty) = &ty {
                request = request.query(&[("type", ty)]);
            }
            client.json(request).await?
        }
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            store.events(&EventQuery { after_seq: after, ty, limit, ..EventQuery::default() })?
        }
    };
    if json {
        print_json(&events)?;
    } else {
        for e in &events {
            println!("{:>8}  {}  {:<8} {:<48} {}", e.seq, e.timestamp, e.origin.as_str(), e.ty, e.subject);
        }
    }
    Ok(ExitCode::SUCCESS)
}
