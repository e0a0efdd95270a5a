//! `host-eval`: the clifhe command line (see `host-eval --help` and host-eval/README.md).

use clap::Parser;
use host_eval::cli::{run, Cli};

fn main() {
    // Before any thread exists: freed polynomials stay in the process instead of being faulted
    // back in (clifhe_std::runtime; about 1 s of a 21.5 s bootstrap at N=2^16). A process
    // decision, so the binary makes it, not the library.
    clifhe_std::runtime::tune_allocator();
    // Clap prints usage errors itself and exits with 2 (0 for --help/--version).
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    if let Err(e) = run(cli, &mut out, &mut err) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
