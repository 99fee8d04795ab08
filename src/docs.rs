//! What carl prints about itself: shell completions and man pages, both generated
//! from the clap definition in `cli.rs` so they never disagree with `--help`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::{EXIT_ERROR, EXIT_OK};

/// `carl completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "carl", &mut out);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            anstream::eprintln!("error: cannot write the completions: {e}");
            EXIT_ERROR
        }
    }
}

/// `carl man --dir DIR`: `carl.1` and one page per command (`carl-reconcile.1`, ...),
/// as `man` finds them under a `man1/` directory.
pub fn man(dir: &Path) -> u8 {
    match write_man(dir) {
        Ok(pages) => {
            for page in pages {
                println!("{}", dir.join(page).display());
            }
            EXIT_OK
        }
        Err(e) => {
            anstream::eprintln!(
                "error: cannot write the man pages to {}: {e}",
                dir.display()
            );
            EXIT_ERROR
        }
    }
}

fn write_man(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();
    // Building propagates the global flags to each command, so every page lists them.
    cmd.build();
    let mut pages = Vec::new();
    let mut write = |name: String, cmd: clap::Command| -> std::io::Result<()> {
        let mut roff = Vec::new();
        clap_mangen::Man::new(cmd.name(name.clone())).render(&mut roff)?;
        let file = format!("{name}.1");
        std::fs::write(dir.join(&file), roff)?;
        pages.push(file);
        Ok(())
    };
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write(format!("carl-{}", sub.get_name()), sub.clone())?;
    }
    write("carl".into(), cmd)?;
    Ok(pages)
}
