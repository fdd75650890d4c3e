//! `replay`: prints a game's timeline, one JSON object per step, for debugging and audits.
//!
//! `replay --seed N --tick-ms 100 [--algorithm mix32-v1|lcg32|interval-v0] [--break-every 50]
//! --from A --to B` prints steps A..=B. Bad arguments print a message and exit with code 2.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use shared_engine::{Algorithm, Counter, DEFAULT_BREAK_EVERY, Params};

const USAGE: &str = "usage: replay --seed N --tick-ms MS [--algorithm mix32-v1|lcg32|interval-v0] \
[--break-every N] --from STEP --to STEP";

struct Args {
    params: Params,
    from: u64,
    to: u64,
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid non-negative integer in range"))
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut seed, mut tick_ms, mut from, mut to) = (None, None, None, None);
    let mut break_every = DEFAULT_BREAK_EVERY;
    let mut algorithm = Algorithm::default();
    while let Some(flag) = raw.next() {
        match flag.as_str() {
            "--seed" => seed = Some(parse_number::<u32>(&flag, raw.next())?),
            "--tick-ms" => tick_ms = Some(parse_number::<u32>(&flag, raw.next())?),
            "--break-every" => break_every = parse_number::<u32>(&flag, raw.next())?,
            "--from" => from = Some(parse_number::<u64>(&flag, raw.next())?),
            "--to" => to = Some(parse_number::<u64>(&flag, raw.next())?),
            "--algorithm" => {
                let name = raw.next().ok_or("--algorithm needs a value")?;
                algorithm = Algorithm::parse(&name).map_err(|e| format!("--algorithm: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let seed = seed.ok_or("--seed is required")?;
    let tick_ms = tick_ms.ok_or("--tick-ms is required")?;
    let from = from.ok_or("--from is required")?;
    let to = to.ok_or("--to is required")?;
    if from > to {
        return Err(format!(
            "--from ({from}) must not be greater than --to ({to})"
        ));
    }
    let params = Params::new(seed, 0, tick_ms, break_every, algorithm).map_err(|e| {
        // The engine names fields in the wire's camelCase; the CLI uses flags.
        e.to_string()
            .replace("tickMs", "--tick-ms")
            .replace("breakEvery", "--break-every")
    })?;
    Ok(Args { params, from, to })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("replay: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut counter = Counter::at_step(args.params, args.from);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut step = args.from;
    loop {
        let tick = counter.advance_to(step);
        let written = writeln!(
            out,
            r#"{{"step":{},"value":{},"round":{},"broken":{}}}"#,
            tick.step, tick.value, tick.round, tick.broken
        );
        if written.is_err() {
            // A closed pipe (e.g. `| head`) is a normal way to stop reading.
            return ExitCode::SUCCESS;
        }
        if step == args.to {
            break;
        }
        step += 1;
    }
    if out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    ExitCode::SUCCESS
}
