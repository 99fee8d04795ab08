//! `cargo xtask man` and `cargo xtask dist`: what carl ships besides its source.
//!
//! `man` writes the man pages carl generates from its own flags (`carl man`) to
//! `target/man/man1` and has `man` render each one, failing on any warning.
//!
//! `dist` builds the static musl binary the Dockerfile copies (`dist/carl`, with the CA
//! bundle beside it), installing the musl target and `musl-tools` where it can, and
//! checks that the binary is static, runs, and keeps the image under 10 MB. With
//! `--image` it also builds the image with podman and checks it: size, a non-root user,
//! and carl running inside it.

use std::path::Path;
use std::process::Command;

const MUSL: &str = "x86_64-unknown-linux-musl";
/// The image's budget (issue #11): the binary plus the CA bundle.
const IMAGE_BUDGET: u64 = 10 * 1024 * 1024;
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("{cmd:?} failed ({status})")),
    }
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn man(root: &Path) -> Result<(), String> {
    run(cargo(root).args(["build", "--quiet", "-p", "carl", "--bin", "carl"]))?;
    let target = crate::target_dir(root);
    let dir = target.join("man").join("man1");
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new(target.join("debug").join("carl"))
        .args(["man", "--dir"])
        .arg(&dir))?;
    if !found("man") {
        println!("(no `man` here: the pages were written but not rendered)");
        return Ok(());
    }
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    pages.sort();
    for page in &pages {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(page)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .map_err(|e| format!("cannot run man: {e}"))?;
        let warnings = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !warnings.trim().is_empty() || out.stdout.is_empty() {
            return Err(format!("man -l {}: {warnings}", page.display()));
        }
    }
    println!(
        "{} pages in {}, rendered by man without a warning. Read them with\n  \
         MANPATH={} man carl-reconcile",
        pages.len(),
        dir.display(),
        dir.parent().unwrap_or(&dir).display()
    );
    Ok(())
}

pub fn dist(root: &Path, args: &[String]) -> Result<(), String> {
    let image = match args {
        [] => false,
        [flag] if flag == "--image" => true,
        _ => return Err("usage: cargo xtask dist [--image]".into()),
    };
    install_musl()?;
    run(cargo(root).args([
        "build",
        "--profile",
        "dist",
        "--locked",
        "--target",
        MUSL,
        "--bin",
        "carl",
    ]))?;
    let built = crate::target_dir(root).join(MUSL).join("dist").join("carl");
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist).map_err(|e| e.to_string())?;
    let binary = dist.join("carl");
    std::fs::copy(&built, &binary).map_err(|e| format!("{}: {e}", built.display()))?;
    std::fs::copy(CA_BUNDLE, dist.join("ca-certificates.crt"))
        .map_err(|e| format!("{CA_BUNDLE}: {e} (install ca-certificates)"))?;

    let elf = std::fs::read(&binary).map_err(|e| e.to_string())?;
    if has_interpreter(&elf)? {
        return Err(format!(
            "{} asks for a dynamic loader: not static",
            binary.display()
        ));
    }
    let version = Command::new(&binary)
        .arg("--version")
        .env_clear()
        .output()
        .map_err(|e| format!("{} does not run: {e}", binary.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    if !version.starts_with("carl ") {
        return Err(format!(
            "{} --version printed {version:?}",
            binary.display()
        ));
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let total = size(&binary) + size(&dist.join("ca-certificates.crt"));
    let mb = |b: u64| b as f64 / 1024.0 / 1024.0;
    println!(
        "{}: static, runs ({}); {:.1} MB, with the CA bundle {:.1} MB (budget {:.0} MB)",
        binary.display(),
        version.lines().next().unwrap_or_default(),
        mb(size(&binary)),
        mb(total),
        mb(IMAGE_BUDGET)
    );
    if total > IMAGE_BUDGET {
        return Err("the image would be over its 10 MB budget".into());
    }
    if image {
        let tag = format!(
            "carl:{}",
            version.split_whitespace().nth(1).unwrap_or("dev")
        );
        run(Command::new("podman")
            .args(["build", "--quiet", "-t", &tag, "."])
            .current_dir(root))?;
        let out = Command::new("podman")
            .args(["image", "inspect", "--format", "{{.Size}}", &tag])
            .output()
            .map_err(|e| e.to_string())?;
        let bytes: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        println!("image {tag}: {:.1} MB", mb(bytes));
        if bytes > IMAGE_BUDGET {
            return Err("the image is over its 10 MB budget".into());
        }
        check_image(root, &tag)?;
    }
    Ok(())
}

/// The image runs carl as a non-root user, and carl runs in it. `podman run` cannot
/// start a container on every machine (not in a Firecracker VM: setrlimit is refused),
/// but a build step under chroot isolation can run the image's own binary.
fn check_image(root: &Path, tag: &str) -> Result<(), String> {
    let user = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Config.User}}", tag])
        .output()
        .map_err(|e| e.to_string())?;
    let user = String::from_utf8_lossy(&user.stdout).trim().to_owned();
    let uid = user.split(':').next().unwrap_or_default();
    if matches!(uid, "" | "0" | "root") {
        return Err(format!("image {tag} runs as root ({user:?})"));
    }
    let dir = crate::target_dir(root).join("image-check");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("Containerfile"),
        format!("FROM {tag}\nRUN [\"/usr/local/bin/carl\", \"--version\"]\n"),
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new("podman")
        .args([
            "build",
            "--no-cache",
            "--isolation=chroot",
            "--rm",
            "-t",
            "carl-image-check",
        ])
        .arg(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    let _ = Command::new("podman")
        .args(["rmi", "carl-image-check"])
        .output();
    let printed = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !printed.contains("\ncarl ") {
        return Err(format!(
            "carl does not run in image {tag}:\n{printed}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!("image {tag}: runs as {user}, and `carl --version` runs in it");
    Ok(())
}

/// The musl target and a musl C compiler (ring and mimalloc compile C). Both are
/// installed when missing and this machine allows it; otherwise the error says how.
fn install_musl() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(MUSL))
        .unwrap_or(false);
    if !installed {
        println!("installing the {MUSL} target");
        run(Command::new("rustup").args(["target", "add", MUSL])).map_err(|e| {
            format!("{e}: cannot install the musl target (rustup's host unreachable?)")
        })?;
    }
    if !found("musl-gcc") {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if !(root && found("apt-get")) {
            return Err(
                "musl-gcc is missing: install musl-tools (apt-get install musl-tools)".into(),
            );
        }
        println!("installing musl-tools");
        let apt = |args: &[&str]| {
            run(Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if apt(&[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "musl-tools",
        ])
        .is_err()
        {
            apt(&["update", "-q"])?;
            apt(&[
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "musl-tools",
            ])?;
        }
    }
    Ok(())
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header: a
/// dynamic executable names its loader there; a static or static-pie one does not.
fn has_interpreter(elf: &[u8]) -> Result<bool, String> {
    let not_elf = || "not a 64-bit little-endian ELF file".to_string();
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return Err(not_elf());
    }
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b| u64::from_le_bytes(b) as usize)
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let (Some(phoff), Some(size), Some(n)) = (phoff, phentsize, phnum) else {
        return Err(not_elf());
    };
    const PT_INTERP: u32 = 3;
    for i in 0..n {
        let at = phoff + i * size;
        let kind = elf
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(not_elf)?;
        if kind == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_has_an_interpreter() {
        // xtask itself is linked dynamically against glibc in a normal build.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(has_interpreter(&me).unwrap());
        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
        assert!(has_interpreter(&me[..0x30]).is_err());
    }
}
