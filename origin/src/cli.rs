//! The origin's command line: serve (no arguments), `--help`, `--version`, `check-config`,
//! `migrate` and `replay --verify RECORD.json` ([`crate::verify`]). `main.rs` only hands the arguments here and runs what comes back, so every
//! answer (text and exit code) is a plain function the unit tests call.
//!
//! `--help` is rendered from [`crate::config::REFERENCE`], the same definition the settings
//! list ([`crate::config::VARIABLES`]) comes from; the tests below hold it to
//! docs/configuration.md's Origin tables (names and defaults) and each literal default to what
//! the parser assumes when the variable is unset.
//!
//! Exit codes: 0 done, 1 failed while serving, 2 bad configuration or bad usage (the same code
//! the server exits with on a bad variable, so a deployment sees one code for both).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::config::{REFERENCE, Replication, Settings};

/// What the arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No arguments: serve until SIGTERM or Ctrl-C.
    Serve,
    /// `--help`, `-h`, `help`: the usage and every variable.
    Help,
    /// `--version`, `-V`, `version`.
    Version,
    /// `check-config`: validate the environment, print a summary, exit.
    CheckConfig,
    /// `migrate [--alter-replication]`: apply the schema migrations, then exit
    /// ([`crate::store::migrate`]).
    Migrate(crate::store::migrate::Options),
    /// `replay --verify RECORD.json`: check a finished sealed game's public record (exit 0
    /// verified, 1 refused, 2 unreadable file).
    Verify(String),
}

/// Arguments the origin does not understand (answered with the usage and exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Exit code of a bad variable or bad usage.
pub const EXIT_USAGE: u8 = 2;

/// The command `args` (without the program name) ask for.
pub fn parse<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<S> = args.into_iter().collect();
    let command = match args.first().map(AsRef::as_ref) {
        None => return Ok(Command::Serve),
        Some("--help" | "-h" | "help") => Command::Help,
        Some("--version" | "-V" | "version") => Command::Version,
        Some("check-config") => Command::CheckConfig,
        Some("migrate") => {
            return crate::store::migrate::parse_options(&args[1..])
                .map(Command::Migrate)
                .map_err(UsageError);
        }
        Some("replay") => {
            return match (args.get(1).map(AsRef::as_ref), args.get(2), args.get(3)) {
                (Some("--verify"), Some(path), None) => Ok(Command::Verify(path.as_ref().into())),
                _ => Err(UsageError(
                    "usage: origin replay --verify RECORD.json".into(),
                )),
            };
        }
        Some(other) => return Err(UsageError(format!("unknown argument {other:?}"))),
    };
    match args.get(1) {
        None => Ok(command),
        Some(extra) => Err(UsageError(format!(
            "unexpected argument {:?} after {:?}",
            extra.as_ref(),
            args[0].as_ref()
        ))),
    }
}

/// What a command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
    /// The process's exit code.
    pub code: u8,
}

/// Runs a command other than [`Command::Serve`] against the variables `vars` (the process
/// environment in `main`). Serve is `main`'s own business (it needs the runtime).
pub fn run(command: Command, vars: &HashMap<String, String>) -> Outcome {
    match command {
        Command::Help => ok(help()),
        Command::Version => ok(format!("{}\n", version())),
        Command::CheckConfig => match Settings::from_map(vars) {
            Ok(settings) => ok(format!("{}\n", summary(&settings))),
            // The error names the variable; its message never holds a secret's value.
            Err(error) => Outcome {
                stdout: String::new(),
                stderr: format!(
                    "origin: configuration invalid: {error}\n(`origin --help` lists every variable)\n"
                ),
                code: EXIT_USAGE,
            },
        },
        Command::Verify(path) => match std::fs::read_to_string(&path) {
            Err(error) => Outcome {
                stdout: String::new(),
                stderr: format!("origin: cannot read {path}: {error}\n"),
                code: EXIT_USAGE,
            },
            Ok(text) => match crate::verify::verify_text(&text) {
                Ok(v) => ok(format!(
                    "verified: {} keys chain to the commitment{}, {} breaks, final tick {:?}\n",
                    v.keys,
                    if v.root_checked { " and the root" } else { "" },
                    v.breaks,
                    v.final_tick
                )),
                Err(error) => Outcome {
                    stdout: String::new(),
                    stderr: format!("origin: NOT verified: {error}\n"),
                    code: 1,
                },
            },
        },
        Command::Serve | Command::Migrate(_) => Outcome {
            stdout: String::new(),
            stderr: "origin: serving and migrating need the runtime (main runs them)\n".to_owned(),
            code: EXIT_USAGE,
        },
    }
}

/// The answer to arguments [`parse`] refused.
pub fn usage_error(error: &UsageError) -> Outcome {
    Outcome {
        stdout: String::new(),
        stderr: format!("origin: {}\n\n{USAGE}", error.0),
        code: EXIT_USAGE,
    }
}

fn ok(stdout: String) -> Outcome {
    Outcome {
        stdout,
        stderr: String::new(),
        code: 0,
    }
}

/// `origin <version>`.
pub fn version() -> String {
    format!("origin {}", env!("CARGO_PKG_VERSION"))
}

const USAGE: &str = "\
Usage: origin [COMMAND]

Commands:
  (none)          serve HTTP until SIGTERM or Ctrl-C
  check-config    validate the environment without starting: exit 0 and a one-line summary,
                  or exit 2 naming the bad variable
  migrate [--alter-replication]
                  apply the pending schema migrations to CASSANDRA_KEYSPACE, then exit
                  (--alter-replication: also change the keyspace to CASSANDRA_REPLICATION)
  replay --verify RECORD.json
                  check a finished sealed-v1 game's public record (view, keys, final state,
                  optional ticks): exit 0 verified, 1 not (docs/sealed.md)
  --help, -h      this text and every variable
  --version, -V   the version
";

/// The usage and every variable the origin reads, with its default and meaning.
pub fn help() -> String {
    let mut text = format!(
        "{}: the seedsync regional origin (game sessions on Apache Cassandra)\n\n{USAGE}\n\
         Configuration is environment variables only; unset or empty means the default.\n\
         Exit codes: 0 ok, 1 failed while serving, 2 bad configuration or usage.\n",
        version()
    );
    for section in REFERENCE {
        let _ = write!(text, "\n{}:\n", section.title);
        for variable in section.variables {
            let _ = writeln!(
                text,
                "  {} (default: {})\n      {}",
                variable.name,
                plain(variable.default),
                variable.meaning
            );
        }
    }
    text.push_str("\nFull reference: docs/configuration.md; deploying: docs/deploy.md\n");
    text
}

/// A docs cell as plain text (no Markdown backticks).
fn plain(markdown: &str) -> String {
    markdown.replace('`', "")
}

/// The one line `check-config` prints: region, keyspace and which optional features are on.
/// No secret and no credential-bearing URL (the NATS URL may hold a password) appears in it.
pub fn summary(settings: &Settings) -> String {
    let on_off = |on: bool| if on { "on" } else { "off" };
    let cassandra = &settings.cassandra;
    let features = [
        ("events", settings.events.is_some()),
        ("exit-notices", settings.notify.is_some()),
        ("registry-signing", settings.registry.keys.is_some()),
        ("admin-routes", settings.registry.admin_token.is_some()),
        ("cassandra-auth", cassandra.credentials.is_some()),
        (
            "rate-limits",
            settings.limits.start.is_some() || settings.limits.read.is_some(),
        ),
        ("test-delay", settings.registry.artificial_delay.is_some()),
    ]
    .iter()
    .map(|(name, on)| format!("{name} {}", on_off(*on)))
    .collect::<Vec<_>>()
    .join(", ");
    let owner_key = match settings.auth.source {
        owner_token::env::KeySource::Configured => "configured",
        owner_token::env::KeySource::Ephemeral => "ephemeral",
    };
    let mode = match settings.auth.mode {
        owner_token::env::Mode::Development => "development",
        owner_token::env::Mode::Production => "production",
    };
    format!(
        "origin: configuration ok: region {}, keyspace {} ({}) on {}, listen {}:{}, public {}, \
         mode {mode}, owner-token key {owner_key}; {features}",
        settings.region.as_str(),
        cassandra.keyspace,
        replication(&cassandra.replication),
        cassandra.hosts.join(","),
        settings.host,
        settings.port,
        settings.registry.public_url,
    )
}

/// The replication as `CASSANDRA_REPLICATION` writes it.
fn replication(replication: &Replication) -> String {
    match replication {
        Replication::Simple(rf) => format!("SimpleStrategy:{rf}"),
        Replication::NetworkTopology(dcs) => dcs
            .iter()
            .map(|(dc, rf)| format!("{dc}:{rf}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::config::VARIABLES;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// docs/configuration.md's Origin section: each variable named in a table row's first
    /// cell, with that row's default cell.
    fn documented() -> BTreeMap<String, String> {
        let doc = include_str!("../../docs/configuration.md");
        let start = doc.find("\n## Origin\n").expect("an Origin section");
        let section = &doc[start + 1..];
        let section = &section[..section[1..]
            .find("\n## ")
            .map_or(section.len(), |end| end + 1)];
        let mut rows = BTreeMap::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (names, default) = (cells[1], cells[2]);
            for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
                let previous = rows.insert(name.to_owned(), default.to_owned());
                assert!(
                    previous.is_none(),
                    "{name} has two rows in the Origin section"
                );
            }
        }
        rows
    }

    #[test]
    fn help_and_docs_list_the_same_variables_with_the_same_defaults() {
        let docs = documented();
        let defined: BTreeSet<&str> = VARIABLES.iter().copied().collect();
        assert_eq!(
            defined.len(),
            VARIABLES.len(),
            "a variable is defined twice"
        );
        let in_docs: BTreeSet<&str> = docs.keys().map(String::as_str).collect();
        let undocumented: Vec<_> = defined.difference(&in_docs).collect();
        let unknown: Vec<_> = in_docs.difference(&defined).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "config::REFERENCE and docs/configuration.md's Origin section differ: \
             not in the docs {undocumented:?}, not in REFERENCE {unknown:?}"
        );
        for variable in REFERENCE.iter().flat_map(|s| s.variables) {
            assert_eq!(
                docs[variable.name], variable.default,
                "{}: the docs' default cell differs from config::REFERENCE",
                variable.name
            );
        }
    }

    #[test]
    fn every_literal_default_is_what_the_parser_assumes() {
        // A fixed owner-token secret on both sides: the ephemeral one is random per call.
        let base = [(
            "OWNER_TOKEN_SECRET",
            "a-fixed-test-secret-of-more-than-32-bytes",
        )];
        let unset = format!("{:?}", Settings::from_map(&vars(&base)).unwrap());
        let mut checked = 0;
        for variable in REFERENCE.iter().flat_map(|s| s.variables) {
            // PUBLIC_URL's default is derived from HOST and PORT, not a value to set.
            let Some(rest) = variable.default.strip_prefix('`') else {
                continue;
            };
            if variable.name == "PUBLIC_URL" {
                continue;
            }
            let literal = &rest[..rest.find('`').expect("closing backtick")];
            let mut set = vars(&base);
            set.insert(variable.name.to_owned(), literal.to_owned());
            let explicit = Settings::from_map(&set)
                .unwrap_or_else(|e| panic!("{}={literal}: {e}", variable.name));
            assert_eq!(
                format!("{explicit:?}"),
                unset,
                "{}={literal} is not what the origin assumes when it is unset",
                variable.name
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} literal defaults checked");
    }

    #[test]
    fn help_lists_every_variable_with_its_default() {
        let text = help();
        for variable in REFERENCE.iter().flat_map(|s| s.variables) {
            let line = format!("  {} (default: {})", variable.name, plain(variable.default));
            assert!(text.contains(&line), "{line:?} not in the help");
        }
        assert!(text.contains("check-config"));
        assert!(!text.contains('`'));
    }

    #[test]
    fn arguments_parse_to_commands() {
        let none: [&str; 0] = [];
        assert_eq!(parse(none), Ok(Command::Serve));
        for (args, command) in [
            (&["--help"][..], Command::Help),
            (&["-h"], Command::Help),
            (&["help"], Command::Help),
            (&["--version"], Command::Version),
            (&["-V"], Command::Version),
            (&["check-config"], Command::CheckConfig),
            (&["migrate"], Command::Migrate(Default::default())),
            (
                &["migrate", "--alter-replication"],
                Command::Migrate(crate::store::migrate::Options {
                    alter_replication: true,
                }),
            ),
        ] {
            assert_eq!(parse(args), Ok(command), "{args:?}");
        }
        for args in [
            &["--serve"][..],
            &["serve"],
            &["check-config", "x"],
            &["migrate", "--force"],
            &["-x"],
        ] {
            let error = parse(args).unwrap_err();
            let outcome = usage_error(&error);
            assert_eq!(outcome.code, EXIT_USAGE, "{args:?}");
            assert!(outcome.stderr.contains("Usage: origin"), "{args:?}");
            assert!(outcome.stdout.is_empty());
        }
    }

    #[test]
    fn check_config_summarises_a_good_environment() {
        let outcome = run(Command::CheckConfig, &HashMap::new());
        assert_eq!(outcome.code, 0, "{outcome:?}");
        let line = outcome.stdout.trim_end();
        assert!(!line.contains('\n'), "one line: {line}");
        for part in [
            "region eu",
            "keyspace seedsync (SimpleStrategy:1)",
            "events off",
            "owner-token key ephemeral",
        ] {
            assert!(line.contains(part), "{part:?} not in {line}");
        }
        let outcome = run(
            Command::CheckConfig,
            &vars(&[
                ("REGION", "asia"),
                ("CASSANDRA_KEYSPACE", "games"),
                ("CASSANDRA_REPLICATION", "eu:3,us:3"),
                ("NATS_URL", "nats://user:nats-password@b:4222"),
                ("EDGE_NOTIFY_URL", "http://edge.internal:8787"),
                ("EDGE_NOTIFY_SECRET", "notify-secret-value-0123456789"),
                ("ADMIN_TOKEN", "admin-token-value"),
            ]),
        );
        assert_eq!(outcome.code, 0, "{outcome:?}");
        for part in [
            "region asia",
            "keyspace games (eu:3,us:3)",
            "events on",
            "exit-notices on",
            "admin-routes on",
            "registry-signing off",
        ] {
            assert!(outcome.stdout.contains(part), "{part:?} not in {outcome:?}");
        }
        for secret in ["nats-password", "notify-secret-value", "admin-token-value"] {
            assert!(
                !outcome.stdout.contains(secret),
                "{secret} printed: {outcome:?}"
            );
        }
    }

    #[test]
    fn check_config_names_the_bad_variable_and_never_a_secret() {
        for (pairs, variable, secret) in [
            (&[("PORT", "80a")][..], "PORT", None),
            (
                &[("OWNER_TOKEN_SECRET", "short-owner-secret")],
                "OWNER_TOKEN_SECRET",
                Some("short-owner-secret"),
            ),
            (&[("SEEDSYNC_ENV", "production")], "REGISTRY_SECRET", None),
            (
                &[
                    ("EDGE_NOTIFY_URL", "http://edge:8787"),
                    ("EDGE_NOTIFY_SECRET", "tiny-notify"),
                ],
                "EDGE_NOTIFY_SECRET",
                Some("tiny-notify"),
            ),
            (
                &[("CASSANDRA_PASSWORD", "cassandra-password-value")],
                "CASSANDRA_USERNAME",
                Some("cassandra-password-value"),
            ),
        ] {
            let outcome = run(Command::CheckConfig, &vars(pairs));
            assert_eq!(outcome.code, EXIT_USAGE, "{pairs:?}: {outcome:?}");
            assert!(outcome.stdout.is_empty());
            assert!(
                outcome.stderr.contains(&format!("invalid {variable}")),
                "{pairs:?}: {outcome:?}"
            );
            if let Some(secret) = secret {
                assert!(
                    !outcome.stderr.contains(secret),
                    "{secret} printed: {outcome:?}"
                );
            }
        }
    }

    #[test]
    fn version_names_the_crate_version() {
        let outcome = run(Command::Version, &HashMap::new());
        assert_eq!(
            outcome.stdout,
            format!("origin {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(outcome.code, 0);
    }
}
