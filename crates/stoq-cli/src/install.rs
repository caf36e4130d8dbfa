//! `stoq install`: copy a plugin directory into the plugin path, with its
//! Python requirements in a virtual environment of its own.
//!
//! The plugin is assembled in a staging directory next to its destination
//! and moved into place only when everything worked, so a failed install
//! (or upgrade) leaves the plugin path as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use stoq_core::ini::Ini;

use crate::Fail;

/// What to install and where.
pub struct Install {
    pub source: PathBuf,
    pub install_dir: PathBuf,
    pub upgrade: bool,
    /// Whether `install_dir` is the default (`$STOQ_HOME/plugins`), which is
    /// created when missing; an explicit directory must exist.
    pub default_dir: bool,
}

/// Names never copied from the source directory.
const SKIP: &[&str] = &[".venv", "__pycache__", ".git"];

pub fn install(req: &Install) -> Result<String, Fail> {
    let source = &req.source;
    if !source.is_dir() {
        return Err(Fail::fatal(format!(
            "Given plugin directory does not exist: {}",
            source.display()
        )));
    }
    let names = manifest_names(source);
    if names.is_empty() {
        return Err(Fail::fatal(format!(
            "{} holds no plugin manifest (a <name>.stoq file with [Core] Name)",
            source.display()
        )));
    }
    if !req.install_dir.is_dir() {
        if req.default_dir {
            std::fs::create_dir_all(&req.install_dir).map_err(|e| {
                Fail::fatal(format!(
                    "cannot create the plugin directory {}: {e}",
                    req.install_dir.display()
                ))
            })?;
        } else {
            return Err(Fail::fatal(format!(
                "Install directory does not exist: {}",
                req.install_dir.display()
            )));
        }
    }
    let dir_name = std::fs::canonicalize(source)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()))
        .ok_or_else(|| Fail::fatal(format!("{} has no directory name", source.display())))?;
    let dest = req.install_dir.join(&dir_name);
    if dest.exists() && !req.upgrade {
        return Err(Fail::fatal(format!(
            "Plugin ({}) already exists in {}; use --upgrade to replace it",
            source.display(),
            req.install_dir.display()
        )));
    }

    let staging = tempfile::Builder::new()
        .prefix(".stoq-install-")
        .tempdir_in(&req.install_dir)
        .map_err(|e| {
            Fail::fatal(format!(
                "cannot write to {}: {e}",
                req.install_dir.display()
            ))
        })?;
    let staged = staging.path().join(&dir_name);
    copy_tree(source, &staged).map_err(|e| {
        Fail::fatal(format!(
            "copying {} failed: {e}; nothing was installed",
            source.display()
        ))
    })?;
    let requirements = staged.join("requirements.txt");
    if requirements.is_file() {
        install_requirements(&staged)?;
    }

    // Swap in: the old version moves aside until the new one is in place.
    let backup = staging.path().join(".previous");
    if dest.exists() {
        std::fs::rename(&dest, &backup)
            .map_err(|e| Fail::fatal(format!("cannot replace {}: {e}", dest.display())))?;
    }
    if let Err(e) = std::fs::rename(&staged, &dest) {
        if backup.exists() {
            let _ = std::fs::rename(&backup, &dest);
        }
        return Err(Fail::fatal(format!(
            "cannot move the plugin into {}: {e}; nothing was changed",
            dest.display()
        )));
    }
    // `staging` (with the previous version, if any) is removed on drop.
    drop(staging);
    Ok(format!(
        "Successfully installed {} ({}) into {}",
        source.display(),
        names.join(", "),
        req.install_dir.display()
    ))
}

/// Plugin names of the manifests under `dir`.
fn manifest_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut children: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for p in children {
            let skipped = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| SKIP.contains(&n));
            if p.is_dir() && !skipped {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "stoq") {
                let name = Ini::load(&p, false)
                    .ok()
                    .and_then(|ini| ini.get("Core", "Name").ok().flatten());
                if let Some(name) = name {
                    names.push(name);
                }
            }
        }
    }
    names
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| SKIP.contains(&n)) {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            // Keeps the permission bits (executable plugin programs).
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `python3 -m venv <plugin>/.venv`, then pip-install `requirements.txt`
/// into it (from the plugin's directory, so relative paths in the file
/// resolve against the plugin).
fn install_requirements(plugin: &Path) -> Result<(), Fail> {
    let python = std::env::var_os("STOQ_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let venv = plugin.join(".venv");
    eprintln!(
        "stoq install: creating {} for requirements.txt",
        Path::new(plugin.file_name().unwrap_or_default())
            .join(".venv")
            .display()
    );
    run_step(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        &format!("{} -m venv", python.display()),
    )?;
    run_step(
        Command::new(venv.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
                "requirements.txt",
            ])
            .current_dir(plugin),
        "pip install -r requirements.txt",
    )
}

fn run_step(cmd: &mut Command, what: &str) -> Result<(), Fail> {
    // pip's own output goes to our stderr: stdout carries the result line.
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Fail::fatal(format!("cannot run {what}: {e}; nothing was installed")))?;
    let _ = std::io::Write::write_all(&mut std::io::stderr(), &out.stdout);
    let _ = std::io::Write::write_all(&mut std::io::stderr(), &out.stderr);
    if out.status.success() {
        Ok(())
    } else {
        Err(Fail::fatal(format!(
            "{what} failed ({}); nothing was installed",
            out.status
        )))
    }
}
