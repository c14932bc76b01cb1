//! The `polo` binary: parses the command line, resolves the configuration,
//! opens the store and dispatches to one subcommand. Everything else lives in
//! the library crates; this crate only wires them together.
//!
//! Exit codes: 0 on success, 1 when some records were rejected, 2 on a fatal error.

mod allocator;
mod cli;
mod commands;
mod config;
mod database;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// What a command reports back for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// The command finished, but some records were rejected.
    Rejected,
    /// The command finished, but some inputs failed outright.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_)) {
        allocator::tune_for_serving();
    }
    let config = match config::Config::resolve(&cli.global) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("polo: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(&config, &args),
        Command::User(args) => commands::user::run(&config, &args),
        Command::Import(args) => commands::import::run(&config, &args),
        Command::Export(args) => commands::export::run(&config, &args),
        Command::Delete(args) => commands::delete::run(&config, &args),
        Command::Token(args) => commands::token::run(&config, &args),
        Command::Backup(args) => commands::backup::run(&config, &args),
        Command::Restore(args) => commands::backup::restore(&config, &args),
        Command::Replicate(args) => commands::replicate::run(&config, &args),
        Command::ReplicationToken(args) => commands::replicate::tokens(&config, &args),
        Command::Epoch(args) => commands::epoch::run(&config, &args),
        Command::Photos(args) => commands::photos::run(&config, &args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(1),
        Ok(Outcome::Failed) => ExitCode::from(2),
        Err(e) => {
            eprintln!("polo: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(config: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let directives = std::env::var("POLO_LOG").unwrap_or_else(|_| config.log_level.clone());
    let mut filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    // The photo metadata parser logs every file it cannot read, with its whole buffer, at error
    // level; `polo photos` reports each such file with the reason itself. `POLO_LOG=nom_exif=…`
    // brings its own messages back.
    if !directives.contains("nom_exif") {
        filter = filter.add_directive("nom_exif=off".parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == config::LogFormat::Json {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}
