//! `host-eval`: the clifhe command line (see `host-eval --help` and host-eval/README.md).

use clap::Parser;
use host_eval::cli::{run, Cli};

fn main() {
    // Clap prints usage errors itself and exits with 2 (0 for --help/--version).
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    if let Err(e) = run(cli, &mut out, &mut err) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
