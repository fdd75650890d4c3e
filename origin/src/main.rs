//! The origin binary: settings from the environment, then serve until SIGTERM or Ctrl-C
//! (or, as `origin migrate`, apply the schema migrations and exit).
//! Everything between lives in [`origin::Application`], which the tests build the same way.

use std::process::ExitCode;

use origin::Application;
use origin::config::Settings;
use origin::startup::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    origin::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("origin: {error}");
            tracing::error!(variable = error.variable, %error, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    // `origin migrate`: apply the pending schema migrations, then exit (store::migrate).
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return origin::store::migrate::command(&settings).await;
    }
    let served = async {
        let application = Application::build(settings).await?;
        application.run_until_stopped(shutdown_signal()).await
    };
    if let Err(error) = served.await {
        eprintln!("origin: {error}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
