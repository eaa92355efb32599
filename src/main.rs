//! The `rehearse` binary: parse flags, run, map the outcome to an exit code. All the work
//! happens in the library.

mod cli;

use std::process::ExitCode;

/// The replay allocates and frees small buffers for every event (rows, values, changes,
/// protocol messages): glibc's malloc took a third of rehearse's own CPU in profiles, and
/// mimalloc makes `check` of the 100,000-event store about a quarter faster for 7 MiB more
/// peak memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`rehearse … | head`) is not an error worth a message.
        Err(rehearse::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::from(rehearse::exit::PASS)
        }
        Err(e) => {
            // An error may quote the input (an event name): it must not drive the terminal.
            eprintln!(
                "rehearse: error: {}",
                rehearse::text::for_terminal(&e.to_string())
            );
            ExitCode::from(rehearse::exit::USAGE_OR_INPUT)
        }
    }
}
