//! `mobius events import|send|list`, through the event log's interface ([`Log`]): the local
//! data directory, or `--server`.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mobius_events::emit::{self, AnyEvent, EmitError};
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
            let log = Backend::choose(data_dir, &remote, rules.attribution_window.as_deref())?.bulk().log();
            import(log.as_ref(), json, &files, batch.max(1)).await
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
    /// A record the splitter could not read (malformed JSON ends the file): its line and why.
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

    /// The chunk as the log takes it.
    fn batch(&mut self) -> Batch {
        match self.items.take() {
            Some(items) => Batch::Parsed(items),
            None => Batch::Records(std::mem::take(&mut self.texts)),
        }
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

async fn import(log: &dyn Log, json: bool, files: &[PathBuf], batch: usize) -> Result<ExitCode> {
    let mut texts = Vec::with_capacity(files.len());
    for path in files {
        texts.push(read_input(path)?);
    }
    let lengths: Vec<u64> = texts.iter().map(|t| t.len() as u64).collect();
    let progress = progress_bar(lengths.iter().sum(), json);
    let framing = log.framing().at_most(batch);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();

    let mut summary = ImportSummary::default();
    // Splitting into records runs on its own thread so the next chunk is ready while the
    // current one is appended.
    let (sender, mut receiver) = mpsc::channel::<Result<Chunk>>(2);
    let splitter = {
        let names = names.clone();
        std::thread::spawn(move || {
            for (file, text) in texts.iter().enumerate() {
                let split = split(file, text, framing, |chunk| sender.blocking_send(Ok(chunk)).is_ok());
                if let Err(e) = split {
                    let _ = sender.blocking_send(Err(e.context(names[file].clone())));
                    return;
                }
            }
        })
    };
    let mut done_before: u64 = 0;
    let mut current_file = 0;
    while let Some(chunk) = receiver.recv().await {
        let mut chunk = chunk?;
        if chunk.file != current_file {
            done_before += lengths[current_file..chunk.file].iter().sum::<u64>();
            current_file = chunk.file;
        }
        if !chunk.lines.is_empty() {
            let report = log.import(chunk.batch()).await?;
            summarise(&mut summary, &report, &names[chunk.file], &chunk.lines);
        }
        if let Some((line, error)) = chunk.broken {
            summary.rejected += 1;
            summary.rejections.push(Rejection { file: names[chunk.file].clone(), line, error });
        }
        if let Some(bar) = &progress {
            bar.set_position(done_before + chunk.consumed);
            bar.set_message(format!(
                "{} stored, {} duplicate, {} rejected",
                summary.stored, summary.duplicates, summary.rejected
            ));
        }
    }
    if let Err(panic) = splitter.join() {
        std::panic::resume_unwind(panic);
    }
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

/// Cuts a file into chunks of records as `framing` says, handing each to `ready` until it
/// answers `false`. A file that is not a JSON array of events is an error; malformed JSON in a
/// stream of records ends the file, noted in the last chunk.
fn split(file: usize, text: &str, framing: Framing, mut ready: impl FnMut(Chunk) -> bool) -> Result<()> {
    let finish = |mut chunk: Chunk| {
        if framing.parse {
            chunk.items = Some(chunk.texts.drain(..).map(|t| record::parse(&t, Origin::Api)).collect());
        }
        chunk
    };
    let frames = record::frames(text)
        .map_err(|e| anyhow::anyhow!("line {} column {}: not a JSON array of events: {e}", e.line(), e.column()))?;
    let mut chunk = Chunk::new(file, 0);
    for frame in frames {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                // Nothing after malformed JSON can be framed; keep what came before.
                chunk.broken = Some((e.line(), format!("malformed JSON at column {}: {e}", e.column())));
                chunk.consumed = text.len() as u64;
                break;
            }
        };
        chunk.texts.push(frame.text.to_owned());
        chunk.lines.push(frame.line);
        chunk.consumed = frame.end as u64;
        chunk.bytes += frame.text.len() + 1;
        if chunk.texts.len() >= framing.max_records || chunk.bytes >= framing.max_bytes {
            let full = std::mem::replace(&mut chunk, Chunk::new(file, frame.end as u64));
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
        split(0, text, framing, |chunk| {
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
        assert_eq!(sizes(&text, Framing::LOCAL.at_most(20_000)), [MAX_BATCH_ITEMS + 5], "the local store takes more");
    }

    #[test]
    fn a_server_gets_at_most_about_8_mib_a_request() {
        // Records of 100 000 bytes: the chunk is full at the first record past 8 MiB.
        let record = format!("\"{}\"", "x".repeat(99_998));
        let text = format!("{record}\n").repeat(1_000);
        let cut = chunks(&text, Framing::SERVER.at_most(20_000));
        assert_eq!(cut.iter().map(|c| c.lines.len()).collect::<Vec<_>>(), [vec![84; 11], vec![76]].concat());
        assert!(cut.iter().all(|c| c.texts.join("\n").len() < 10 << 20), "under the server's 10 MiB body limit");
        assert_eq!(sizes(&text, Framing::LOCAL.at_most(20_000)), [1_000]);
    }

    #[test]
    fn chunks_are_parsed_where_the_log_asks_and_keep_their_lines() {
        let text = "{\"a\": 1}\n\n[2]\n{\"broken\": \n";
        let local = chunks(text, Framing::LOCAL.at_most(20_000));
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].lines, [1, 3]);
        assert!(local[0].texts.is_empty() && local[0].items.as_ref().is_some_and(|items| items.len() == 2));
        assert_eq!(local[0].broken.as_ref().map(|(line, _)| *line), Some(5));
        assert_eq!(local[0].consumed, text.len() as u64);
        let remote = chunks(text, Framing::SERVER.at_most(1));
        let texts: Vec<Vec<String>> = remote.iter().map(|c| c.texts.clone()).collect();
        assert_eq!(texts, [vec!["{\"a\": 1}"], vec!["[2]"], vec![]], "the malformed end comes last, alone");
        assert!(remote.iter().all(|c| c.items.is_none()));
        assert_eq!(remote[2].broken.as_ref().map(|(line, _)| *line), Some(5));
    }
}
