//! `tail`: follows the game event stream (see `events::tail` for the arguments).
//!
//! `cargo run -p events --bin tail -- --nats nats://127.0.0.1:4222`

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use events::rate::{LagWindow, StartsPerMinute};
use events::tail::{Args, Totals, event_line, summary_line, wanted};
use events::{Consumer, EventsError};
use kernel::clock::now_ms;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), std::env::var("NATS_URL").ok()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tail: {e}");
            if matches!(e, EventsError::Connect { .. }) {
                eprintln!(
                    "tail: is the broker running? `scripts/nats.sh start` (or `make up`) starts one"
                );
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), EventsError> {
    let client = events::connect(&args.nats, "seedsync-tail", true).await?;
    let mut consumer = Consumer::new(client, args.start, args.filters()).await?;
    eprintln!(
        "tail: following {} on {}{}",
        events::stream::STREAM,
        args.nats,
        match args.filters().as_slice() {
            [] => String::new(),
            f => format!(" ({})", f.join(", ")),
        }
    );
    let mut starts = StartsPerMinute::new();
    let mut lags = LagWindow::default();
    let mut totals = Totals::default();
    // An interval that never fires when summaries are off.
    let every = args.every.unwrap_or(Duration::from_secs(365 * 86_400));
    let mut summary = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let deadline = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let stdout = std::io::stdout();
    loop {
        tokio::select! {
            received = consumer.next() => match received {
                Ok(r) => {
                    if !wanted(&args, &r.event) {
                        continue;
                    }
                    if r.first_time {
                        totals.events += 1;
                        starts.record(&r.event);
                        lags.record(r.lag_ms());
                    } else {
                        totals.duplicates += 1;
                    }
                    if r.first_time || args.show_duplicates {
                        let mut out = stdout.lock();
                        // A closed pipe (`tail | head`) ends the program quietly.
                        if writeln!(out, "{}", event_line(&r, args.json)).and_then(|()| out.flush()).is_err() {
                            return Ok(());
                        }
                    }
                    if args.count.is_some_and(|n| totals.events >= n) {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("tail: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = summary.tick() => {
                totals.invalid = consumer.invalid();
                eprintln!("{}", summary_line(&starts.per_region(now_ms()), lags.take(), totals));
            }
            () = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    totals.invalid = consumer.invalid();
    if args.every.is_some() {
        eprintln!(
            "{}",
            summary_line(&starts.per_region(now_ms()), lags.take(), totals)
        );
    }
    Ok(())
}
