//! The `attache` binary: parse the command line, call the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = attache::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // XML from the network is turned into trees by recursive code in the
    // XMPP library, one stack frame per nesting level; a hostile peer can
    // nest as deep as the server's stanza limit allows (Prosody: 256 KiB,
    // about 37,000 levels). The runtime therefore runs on a thread whose
    // stack is large enough for that: reserved, not used — untouched pages
    // cost no memory.
    match std::thread::Builder::new()
        .name("attache".into())
        .stack_size(STACK_BYTES)
        .spawn(move || serve(cli))
    {
        Ok(thread) => thread.join().unwrap_or(ExitCode::FAILURE),
        // A machine that cannot reserve it still runs, on the main stack.
        Err(_) => serve(cli_again()),
    }
}

/// The stack of the thread the runtime runs on.
const STACK_BYTES: usize = 512 * 1024 * 1024;

fn cli_again() -> attache::cli::Cli {
    attache::cli::Cli::parse()
}

fn serve(cli: attache::cli::Cli) -> ExitCode {
    // The CLI does one thing at a time: a single-threaded runtime starts fastest.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(attache::cli::run(cli)) {
        // The reader has what it wanted (`attache agenda | head -1`).
        Ok(()) | Err(attache::error::CliError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // Like clap's own argument errors: 2 for a request that cannot be read.
            match e {
                attache::error::CliError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
