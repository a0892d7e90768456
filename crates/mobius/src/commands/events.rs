//! `mobius events import|send|list`, through the event log's interface ([`Log`]): the local
//! data directory, or `--server`.

use std::io::{IsTerminal, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mobius_events::emit::{self, AnyEvent, EmitError};
use mobius_events::record::ReadError;
use mobius_events::{Origin, record};
use mobius_log::ingest::{EventResult, IngestReport, Status};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::backend::log::{Batch, EventList, Framing};
use super::backend::{Backend, Log};
use crate::cli::{EventsCommand, SendArgs};
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: EventsCommand) -> Result<ExitCode> {
    match command {
        EventsCommand::Import { files, batch, rules, remote } => {
            let log = Backend::choose(data_dir, &remote, rules.attribution_window.as_deref())?.bulk(batch).log();
            import(log.as_ref(), json, &files, batch).await
        }
        EventsCommand::Send(args) => {
            let log = Backend::choose(data_dir, &args.remote, args.rules.attribution_window.as_deref())?.log();
            send(log.as_ref(), json, &args).await
        }
        EventsCommand::List { after, ty, limit, remote } => {
            let log = Backend::choose(data_dir, &remote, None)?.log();
            let events = log.events(&EventList { after, ty, limit }).await?;
            if json {
                print_json(&events)?;
            } else {
                for e in &events {
                    println!("{:>8}  {}  {:<8} {:<48} {}", e.seq, e.timestamp, e.origin.as_str(), e.ty, e.subject);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One chunk of records: their text (or, when the log parses as files are cut, the parsed
/// events) and where each starts.
#[derive(Debug)]
struct Chunk {
    file: usize,
    texts: Vec<String>,
    /// Parsed on the splitting thread when the log asks for it, so that parsing the next chunk
    /// overlaps appending this one.
    items: Option<Vec<mobius_events::cloudevents::Item>>,
    lines: Vec<usize>,
    /// A record the splitter could not read (malformed JSON, or text that is not UTF-8, ends
    /// the file): its line and why.
    broken: Option<(usize, String)>,
    /// Bytes of the file consumed once this chunk is done (for the progress bar).
    consumed: u64,
    /// Bytes of record text in the chunk.
    bytes: usize,
}

impl Chunk {
    fn new(file: usize, consumed: u64) -> Chunk {
        Chunk { file, texts: Vec::new(), items: None, lines: Vec::new(), broken: None, consumed, bytes: 0 }
    }

    /// The chunk as the log takes it, and what the import needs to know of it once it is in.
    fn into_parts(self) -> (Batch, Placed) {
        let batch = match self.items {
            Some(items) => Batch::Parsed(items),
            None => Batch::Records(self.texts),
        };
        (batch, Placed { file: self.file, lines: self.lines, broken: self.broken, consumed: self.consumed })
    }
}

/// Where a chunk's records are in their file.
#[derive(Debug)]
struct Placed {
    file: usize,
    lines: Vec<usize>,
    broken: Option<(usize, String)>,
    consumed: u64,
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

async fn import(log: &dyn Log, json: bool, files: &[PathBuf], batch: Option<usize>) -> Result<ExitCode> {
    // Every file is opened before anything is imported; each is read as it is imported.
    let inputs = files.iter().map(|path| Input::open(path)).collect::<Result<Vec<_>>>()?;
    let lengths: Vec<u64> = inputs.iter().map(Input::len).collect();
    let progress = progress_bar(lengths.iter().sum(), json);
    let framing = batch.map_or(log.framing(), |records| log.framing().at_most(records.max(1)));
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();

    let summary = Arc::new(Mutex::new(ImportSummary::default()));
    // Splitting into records runs on its own thread so the next chunk is ready while the
    // current one is appended. A chunk's place goes ahead of it on a channel of its own, for
    // `done` to find when the log reports the chunk.
    let (sender, receiver) = mpsc::channel::<Batch>(2);
    let (place, placed) = std::sync::mpsc::channel::<Placed>();
    let splitter = {
        let names = names.clone();
        std::thread::spawn(move || -> Result<()> {
            for (file, input) in inputs.into_iter().enumerate() {
                let records = input.records().with_context(|| names[file].clone())?;
                split(file, records, framing, |chunk| {
                    let (batch, placed) = chunk.into_parts();
                    place.send(placed).is_ok() && sender.blocking_send(batch).is_ok()
                })
                .with_context(|| names[file].clone())?;
            }
            Ok(())
        })
    };
    let done = {
        let (summary, progress, names) = (summary.clone(), progress.clone(), names.clone());
        let mut done_before: u64 = 0;
        let mut current_file = 0;
        Box::new(move |report: IngestReport| {
            let Ok(chunk) = placed.recv() else { return };
            let mut summary = summary.lock().unwrap_or_else(|e| e.into_inner());
            summarise(&mut summary, &report, &names[chunk.file], &chunk.lines);
            if let Some((line, error)) = &chunk.broken {
                summary.rejected += 1;
                summary.rejections.push(Rejection {
                    file: names[chunk.file].clone(),
                    line: *line,
                    error: error.clone(),
                });
            }
            if chunk.file != current_file {
                done_before += lengths[current_file..chunk.file].iter().sum::<u64>();
                current_file = chunk.file;
            }
            if let Some(bar) = &progress {
                let consumed = if chunk.broken.is_some() { lengths[chunk.file] } else { chunk.consumed };
                bar.set_position(done_before + consumed);
                bar.set_message(format!(
                    "{} stored, {} duplicate, {} rejected",
                    summary.stored, summary.duplicates, summary.rejected
                ));
            }
        })
    };
    let imported = log.import(receiver, done).await;
    let split = splitter.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    // A file that failed part way has its records before the failure imported.
    imported?;
    split?;

    let summary = std::mem::take(&mut *summary.lock().unwrap_or_else(|e| e.into_inner()));
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

fn summarise(summary: &mut ImportSummary, report: &IngestReport, file: &str, lines: &[usize]) {
    summary.stored += report.stored;
    summary.duplicates += report.duplicates;
    summary.rejected += report.rejected;
    for result in &report.results {
        if result.status == Status::Rejected {
            summary.rejections.push(Rejection {
                file: file.to_owned(),
                line: lines.get(result.index).copied().unwrap_or(0),
                error: result.error.clone().unwrap_or_default(),
            });
        }
    }
}

/// A file to import, opened: a file, or standard input (`-`).
enum Input {
    File(std::fs::File),
    Stdin,
}

impl Input {
    fn open(path: &Path) -> Result<Input> {
        if path == Path::new("-") {
            return Ok(Input::Stdin);
        }
        let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Input::File(file))
    }

    /// Its size, if known.
    fn len(&self) -> u64 {
        match self {
            Input::File(file) => file.metadata().map_or(0, |m| m.len()),
            Input::Stdin => 0,
        }
    }

    /// Its records' text, to be framed as it is read. A JSON array is refused whole when it is
    /// malformed, before any of it is used: a file is read twice for that, and standard input
    /// holding an array is held in memory. Records one after another are read once.
    fn records(self) -> Result<Box<dyn Read + Send>> {
        let check = |array: &mut dyn Read| {
            record::check_array(array).map(drop).map_err(|e| {
                anyhow::anyhow!("line {} column {}: not a JSON array of events: {e}", e.line(), e.column())
            })
        };
        match self {
            Input::File(mut file) => {
                let (array, head) = record::starts_array(&mut file).context("cannot read")?;
                if !array {
                    return Ok(Box::new(std::io::Cursor::new(head).chain(file)));
                }
                check(&mut std::io::Cursor::new(head).chain(&mut file))?;
                file.rewind().context("cannot read")?;
                Ok(Box::new(file))
            }
            Input::Stdin => {
                let mut stdin = std::io::stdin();
                let (array, mut head) = record::starts_array(&mut stdin).context("cannot read standard input")?;
                if !array {
                    return Ok(Box::new(std::io::Cursor::new(head).chain(stdin)));
                }
                stdin.read_to_end(&mut head).context("cannot read standard input")?;
                check(&mut head.as_slice())?;
                Ok(Box::new(std::io::Cursor::new(head)))
            }
        }
    }
}

/// Cuts a body into chunks of records as `framing` says, reading it as it goes, handing each
/// chunk to `ready` until it answers `false`. Malformed JSON or text that is not UTF-8 ends the
/// body, noted in the last chunk; a failed read is an error.
fn split(file: usize, body: impl Read, framing: Framing, mut ready: impl FnMut(Chunk) -> bool) -> Result<()> {
    let finish = |mut chunk: Chunk| {
        if framing.parse {
            chunk.items = Some(chunk.texts.drain(..).map(|t| record::parse(&t, Origin::Api)).collect());
        }
        chunk
    };
    let mut chunk = Chunk::new(file, 0);
    for frame in record::read_frames(body) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(ReadError::Io(e)) => return Err(anyhow::Error::new(e).context("cannot read")),
            Err(e) => {
                // Nothing after it can be framed; keep what came before.
                let why = match &e {
                    ReadError::Json { column, .. } => format!("malformed JSON at column {column}: {e}"),
                    _ => e.to_string(),
                };
                chunk.broken = Some((e.line(), why));
                break;
            }
        };
        chunk.bytes += frame.text.len() + 1;
        chunk.texts.push(frame.text);
        chunk.lines.push(frame.line);
        chunk.consumed = frame.end;
        if chunk.texts.len() >= framing.max_records || chunk.bytes >= framing.max_bytes {
            let full = std::mem::replace(&mut chunk, Chunk::new(file, frame.end));
            if !ready(finish(full)) {
                return Ok(());
            }
        }
    }
    if !chunk.texts.is_empty() || chunk.broken.is_some() {
        ready(finish(chunk));
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

async fn send(log: &dyn Log, json: bool, args: &SendArgs) -> Result<ExitCode> {
    let result = match &args.stdin {
        Some(dash) if dash == "-" => log.send(read_input(Path::new("-"))?).await?,
        Some(other) => bail!("unexpected argument `{other}`: use `-` to read the event from standard input"),
        None => match build_event(args)? {
            Ok(event) => log.append(event).await?,
            // Refused as the log would refuse it: nothing is sent.
            Err(why) => EventResult { index: 0, status: Status::Rejected, id: None, source: None, error: Some(why) },
        },
    };
    if json {
        print_json(&result)?;
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

/// The event the flags describe, or why the log would refuse it.
fn build_event(args: &SendArgs) -> Result<Result<mobius_events::NewEvent, String>> {
    let content: Value = serde_json::from_str(&args.content)
        .map_err(|e| anyhow::anyhow!("--content is not JSON (column {}): {e}", e.column()))?;
    let timestamp = args.timestamp.clone().unwrap_or_else(|| jiff::Timestamp::now().to_string());
    let event = AnyEvent {
        ty: args.ty.as_deref().unwrap_or_default(),
        id: args.id.as_deref(),
        source: args.source.as_deref().unwrap_or(emit::reliability::CLI_SOURCE),
        timestamp: &timestamp,
        subject: args.subject.as_deref().unwrap_or_default(),
        content: &content,
    };
    Ok(match emit::any(&event, Origin::Api) {
        Ok(event) => Ok(event),
        Err(EmitError::Invalid { source, .. }) => Err(source.to_string()),
        Err(other) => Err(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use mobius_events::MAX_BATCH_ITEMS;

    use super::*;

    /// The chunks `text` is cut into.
    fn chunks(text: &str, framing: Framing) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        split(0, text.as_bytes(), framing, |chunk| {
            chunks.push(chunk);
            true
        })
        .unwrap();
        chunks
    }

    fn sizes(text: &str, framing: Framing) -> Vec<usize> {
        chunks(text, framing).iter().map(|c| c.lines.len()).collect()
    }

    #[test]
    fn a_server_gets_at_most_its_batch_limit_of_records_a_request() {
        let text = "{}\n".repeat(MAX_BATCH_ITEMS + 5);
        assert_eq!(sizes(&text, Framing::SERVER.at_most(20_000)), [MAX_BATCH_ITEMS, 5]);
        assert_eq!(sizes(&text, Framing::SERVER.at_most(4_000)), [4_000, 4_000, 2_005], "--batch still counts");
        let local = sizes(&text, Framing::LOCAL.at_most(20_000));
        assert_eq!(
            local,
            [vec![1_000; 10], vec![5]].concat(),
            "the local store's batches are small: what is in flight"
        );
    }

    #[test]
    fn a_server_gets_at_most_about_8_mib_a_request() {
        // Records of 100 000 bytes: the chunk is full at the first record past 8 MiB.
        let record = format!("\"{}\"", "x".repeat(99_998));
        let text = format!("{record}\n").repeat(1_000);
        let cut = chunks(&text, Framing::SERVER.at_most(20_000));
        assert_eq!(cut.iter().map(|c| c.lines.len()).collect::<Vec<_>>(), [vec![84; 11], vec![76]].concat());
        assert!(cut.iter().all(|c| c.texts.join("\n").len() < 10 << 20), "under the server's 10 MiB body limit");
        // The local store's batches stop at 2 MiB: the first record past it ends one.
        assert_eq!(sizes(&text, Framing::LOCAL.at_most(20_000)), [vec![21; 47], vec![13]].concat());
    }

    #[test]
    fn chunks_are_parsed_where_the_log_asks_and_keep_their_lines() {
        let text = "{\"a\": 1}\n\n[2]\n{\"broken\": \n";
        let local = chunks(text, Framing::LOCAL.at_most(20_000));
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].lines, [1, 3]);
        assert!(local[0].texts.is_empty() && local[0].items.as_ref().is_some_and(|items| items.len() == 2));
        assert_eq!(local[0].broken.as_ref().map(|(line, _)| *line), Some(5));
        let remote = chunks(text, Framing::SERVER.at_most(1));
        let texts: Vec<Vec<String>> = remote.iter().map(|c| c.texts.clone()).collect();
        assert_eq!(texts, [vec!["{\"a\": 1}"], vec!["[2]"], vec![]], "the malformed end comes last, alone");
        assert!(remote.iter().all(|c| c.items.is_none()));
        assert_eq!(remote[2].broken.as_ref().map(|(line, _)| *line), Some(5));
    }
}
