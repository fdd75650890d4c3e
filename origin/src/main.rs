//! The origin binary: the command line ([`origin::cli`]: `--help`, `--version`,
//! `check-config`, `migrate`), else settings from the environment, then serve until SIGTERM or
//! Ctrl-C.
//! Everything between lives in [`origin::Application`], which the tests build the same way.

use std::io::Write;
use std::process::ExitCode;

use origin::Application;
use origin::cli::{self, Command};
use origin::config::Settings;
use origin::startup::shutdown_signal;

fn main() -> ExitCode {
    let outcome = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Serve) => return serve(None),
        Ok(Command::Migrate(options)) => return serve(Some(options)),
        Ok(command) => cli::run(command, &std::env::vars().collect()),
        Err(error) => cli::usage_error(&error),
    };
    // A closed pipe (`origin --help | head`) is not worth a panic.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}

#[tokio::main]
async fn serve(migrate: Option<origin::store::migrate::Options>) -> ExitCode {
    let settings = Settings::from_env();
    // Spans are exported only by the server (`OTEL_EXPORTER_OTLP_ENDPOINT` set), never by
    // `origin migrate`.
    let export = match (&settings, &migrate) {
        (Ok(s), None) => s.tracing.as_ref().map(|t| (t, s.region.as_str())),
        _ => None,
    };
    let telemetry = origin::telemetry::init(export);
    let settings = match settings {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("origin: {error}");
            tracing::error!(variable = error.variable, %error, "invalid configuration");
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    // `origin migrate`: apply the pending schema migrations, then exit (store::migrate).
    if let Some(options) = migrate {
        return origin::store::migrate::command(&settings, options).await;
    }
    let served = async {
        let application = Application::build(settings).await?;
        application.run_until_stopped(shutdown_signal()).await
    };
    let outcome = served.await;
    // The last batch of spans (the drain's requests, the relay's last pass) goes out now.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    if let Err(error) = outcome {
        eprintln!("origin: {error}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
