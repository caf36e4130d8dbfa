//! The `stoq` command.
//!
//! Exit codes: 0 success (even when the results hold error records), 1 a
//! fatal error (bad configuration, a plugin that cannot be loaded, an
//! invalid `$STOQ_HOME`), 2 a usage error (unknown flag, bad flag value, no
//! or empty input, unreadable file), 3 the scan ran but a connector failed
//! to save the results (they are then printed on stdout so nothing is lost;
//! in run mode: some responses were not saved), 4 `stoq run`: some provider
//! items could not be scanned (logged), 130 a second signal aborted `stoq run`.

mod install;
mod logging;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::Value;
use stoq_core::RunStats;
use stoq_core::{Map, PayloadMeta, PluginClass, RequestMeta, StoqError};
use stoq_engine::{LogSyntax, RunControl, Stoq, StoqConfig};

type Opts = indexmap::IndexMap<String, Vec<(String, String)>>;

const EXIT_FATAL: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CONNECTOR: u8 = 3;
const EXIT_ITEMS_FAILED: u8 = 4;

fn about() -> String {
    format!(
        "stoQ :: v{} :: an automated analysis framework",
        stoq_core::VERSION
    )
}

#[derive(Parser, Debug)]
#[command(name = "stoq", version, about = about(), propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan one file (or standard input) and print the results as JSON.
    ///
    /// List flags take one or more names (space or comma separated); put the
    /// file first, or after `--`, so it is not taken for a plugin name:
    /// `stoq scan bad.exe -s hash` or `stoq scan -s hash -- bad.exe`.
    Scan(Box<ScanArgs>),
    /// Run providers until they are exhausted (or forever, for monitors),
    /// scanning everything they deliver.
    ///
    /// SIGINT/SIGTERM stop the intake, finish the scans in progress and
    /// save them; a second signal aborts at once.
    Run(Box<RunArgs>),
    /// List the available plugins with their classes, version and description.
    List(ListArgs),
    /// Install a plugin directory into the plugin path.
    ///
    /// A `requirements.txt` in the plugin is installed into a virtual
    /// environment of the plugin's own (`<plugin>/.venv`), which the plugin
    /// then runs with. Nothing changes unless every step succeeds.
    Install(InstallArgs),
}

#[derive(Args, Debug)]
struct InstallArgs {
    /// The plugin directory (holding its `<name>.stoq` manifest).
    plugin_path: PathBuf,
    /// Where to install (default `$STOQ_HOME/plugins`).
    #[arg(
        long = "install-dir",
        visible_alias = "install_dir",
        value_name = "DIR"
    )]
    install_dir: Option<PathBuf>,
    /// Replace an installed plugin of the same directory name.
    #[arg(long)]
    upgrade: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Provider plugins.
    #[arg(short = 'P', long = "providers", num_args = 1.., value_name = "PLUGIN", action = clap::ArgAction::Append)]
    providers: Vec<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct ScanArgs {
    /// File to scan; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Plugin directories (replace `plugin_dir_list`).
    #[arg(long = "plugin-dir", num_args = 1.., value_name = "DIR")]
    plugin_dir: Vec<PathBuf>,
    /// Config file (default `$STOQ_HOME/stoq.cfg`).
    #[arg(long = "config-file", value_name = "FILE")]
    config_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Workers to run on the initial payload.
    #[arg(short = 's', long = "start-dispatch", num_args = 1.., value_name = "WORKER", action = clap::ArgAction::Append)]
    start_dispatch: Vec<String>,
    /// Workers to run on every payload.
    #[arg(short = 'a', long = "always-dispatch", num_args = 1.., value_name = "WORKER", action = clap::ArgAction::Append)]
    always_dispatch: Vec<String>,
    /// Dispatcher plugins.
    #[arg(short = 'R', long = "dispatchers", num_args = 1.., value_name = "PLUGIN", action = clap::ArgAction::Append)]
    dispatchers: Vec<String>,
    /// Connector plugins (default: scan prints the results itself; run uses `stdout`).
    #[arg(short = 'C', long = "connectors", num_args = 1.., value_name = "PLUGIN", action = clap::ArgAction::Append)]
    connectors: Vec<String>,
    /// Decorator plugins.
    #[arg(short = 'D', long = "decorators", num_args = 1.., value_name = "PLUGIN", action = clap::ArgAction::Append)]
    decorators: Vec<String>,
    /// Destination archiver plugins.
    #[arg(short = 'A', long = "dest-archivers", num_args = 1.., value_name = "PLUGIN", action = clap::ArgAction::Append)]
    dest_archivers: Vec<String>,
    /// Source archiver plugins.
    #[arg(short = 'S', long = "source-archivers", num_args = 1.., value_name = "PLUGIN", action = clap::ArgAction::Append)]
    source_archivers: Vec<String>,
    /// Maximum number of worker rounds (default: `[core] max_recursion`, else 10).
    #[arg(long = "max-recursion", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_recursion: Option<u32>,
    /// Plugin options, `plugin:option=value` (highest precedence).
    #[arg(long = "plugin-opts", num_args = 1.., value_name = "PLUGIN:OPTION=VALUE", action = clap::ArgAction::Append)]
    plugin_opts: Vec<String>,
    /// `source` of the request metadata.
    #[arg(long = "request-source", value_name = "SOURCE")]
    request_source: Option<String>,
    /// `extra_data` of the request metadata, `key=value` (`true`/`false` become booleans).
    #[arg(long = "request-extra", num_args = 1.., value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    request_extra: Vec<String>,
    /// Plugin directories (replace `plugin_dir_list`).
    #[arg(long = "plugin-dir", num_args = 1.., value_name = "DIR", action = clap::ArgAction::Append)]
    plugin_dir: Vec<PathBuf>,
    /// Config file (default `$STOQ_HOME/stoq.cfg`).
    #[arg(long = "config-file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Log level on stderr and in the log file.
    #[arg(long = "log-level", value_name = "LEVEL", value_parser = ["debug", "info", "warning", "error", "critical"], ignore_case = true)]
    log_level: Option<String>,
}

/// A failure that ends the command with a message and an exit code.
struct Fail {
    code: u8,
    message: String,
}

impl Fail {
    fn usage(message: impl Into<String>) -> Self {
        Fail {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    fn fatal(message: impl Into<String>) -> Self {
        Fail {
            code: EXIT_FATAL,
            message: message.into(),
        }
    }
}

impl From<StoqError> for Fail {
    fn from(e: StoqError) -> Self {
        Fail::fatal(e.to_string())
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stoq: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let result = match cli.command {
        Command::Scan(args) => {
            let sub = matches.subcommand_matches("scan");
            runtime.block_on(scan(*args, sub))
        }
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::List(args) => list(args),
        Command::Install(args) => install(args),
    };
    // Do not wait for plugin work abandoned after a timeout.
    runtime.shutdown_background();
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("stoq: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `$STOQ_HOME`, or `~/.stoq`. An explicitly set `$STOQ_HOME` must exist; the
/// default may be missing (then stoQ runs on defaults).
fn stoq_home() -> Result<(PathBuf, bool), Fail> {
    if let Some(home) = std::env::var_os("STOQ_HOME") {
        let p = PathBuf::from(home);
        return match p.canonicalize() {
            Ok(p) if p.is_dir() => Ok((p, true)),
            Ok(_) => Err(Fail::fatal(format!(
                "$STOQ_HOME is invalid, exiting: {} is not a directory",
                p.display()
            ))),
            Err(e) => Err(Fail::fatal(format!(
                "$STOQ_HOME is invalid, exiting: {}: {e}",
                p.display()
            ))),
        };
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let p = home.join(".stoq");
    let exists = p.is_dir();
    Ok((p, exists))
}

/// Load the config file: an explicit `--config-file` must exist; the default
/// one may be missing.
fn load_config(
    explicit: Option<&Path>,
    home: &Path,
) -> Result<(Option<StoqConfig>, PathBuf), Fail> {
    match explicit {
        Some(path) => {
            if !path.is_file() {
                return Err(Fail::usage(format!(
                    "--config-file: {} does not exist or is not a file",
                    path.display()
                )));
            }
            Ok((Some(StoqConfig::load(path)?), path.to_path_buf()))
        }
        None => {
            let path = home.join("stoq.cfg");
            if path.is_file() {
                Ok((Some(StoqConfig::load(&path)?), path))
            } else {
                Ok((None, path))
            }
        }
    }
}

fn setup_logging(
    cli_level: Option<&str>,
    config: Option<&StoqConfig>,
    home: &Path,
    home_exists: bool,
) -> Result<(), Fail> {
    let core = config.map(|c| c.core.clone()).unwrap_or_default();
    let level_name = cli_level
        .map(str::to_string)
        .or(core.log_level.clone())
        .unwrap_or_else(|| "info".into());
    let level = logging::parse_level(&level_name).ok_or_else(|| {
        let file = config
            .map(|c| c.path.display().to_string())
            .unwrap_or_default();
        Fail::fatal(format!(
            "{file}: [core] log_level = {level_name:?}: not a log level \
             (debug, info, warning, error, critical)"
        ))
    })?;
    let log_dir = match &core.log_dir {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        // The default log directory lives in $STOQ_HOME; never create
        // $STOQ_HOME just to log there.
        None if home_exists => Some(home.join("logs")),
        None => None,
    };
    let file = match log_dir {
        Some(dir) => Some(
            logging::RotatingFile::open(
                &dir,
                core.log_maxbytes.unwrap_or(1_500_000),
                core.log_backup_count.unwrap_or(5),
            )
            .map_err(|e| {
                Fail::fatal(format!(
                    "cannot open the log file in {}: {e}",
                    dir.display()
                ))
            })?,
        ),
        None => None,
    };
    logging::init(logging::LogSettings {
        level,
        json: core.log_syntax == Some(LogSyntax::Json),
        file,
    });
    Ok(())
}

/// Split list-flag values on commas too, so `-s hash,peinfo` works.
fn flatten(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_plugin_opts(items: &[String]) -> Result<Opts, Fail> {
    let mut out = Opts::new();
    for item in items {
        let bad = || {
            Fail::usage(format!(
                "--plugin-opts: {item:?} is not of the form plugin:option=value"
            ))
        };
        let (plugin, rest) = item.split_once(':').ok_or_else(bad)?;
        let (key, value) = rest.split_once('=').ok_or_else(bad)?;
        let (plugin, key) = (plugin.trim(), key.trim());
        if plugin.is_empty() || key.is_empty() {
            return Err(bad());
        }
        out.entry(plugin.to_string())
            .or_default()
            .push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

fn parse_request_extra(items: &[String]) -> Result<Map, Fail> {
    let mut extra = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Fail::usage(format!(
                "--request-extra: {item:?} is not of the form key=value"
            ))
        })?;
        let value = match v.to_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(v.to_string()),
        };
        extra.insert(k.trim().to_string(), value);
    }
    Ok(extra)
}

/// With no FILE, `stoq scan -s hash bad.exe` would take `bad.exe` for a
/// plugin name (as the reference does, which then waits on stdin). When the
/// last list-flag value on the command line names an existing file and no
/// plugin, take it as the file.
fn take_trailing_file(
    args: &mut ScanArgs,
    matches: Option<&ArgMatches>,
    stoq_knows: impl Fn(&str) -> bool,
) {
    if args.file.is_some() {
        return;
    }
    let Some(m) = matches else { return };
    let ids = [
        "start_dispatch",
        "always_dispatch",
        "dispatchers",
        "connectors",
        "decorators",
        "dest_archivers",
        "source_archivers",
    ];
    let mut last: Option<(usize, &str)> = None;
    for id in ids {
        if let Some(i) = m.indices_of(id).and_then(|mut idx| idx.next_back()) {
            if last.is_none_or(|(j, _)| i > j) {
                last = Some((i, id));
            }
        }
    }
    let Some((_, id)) = last else { return };
    let list = match id {
        "start_dispatch" => &mut args.common.start_dispatch,
        "always_dispatch" => &mut args.common.always_dispatch,
        "dispatchers" => &mut args.common.dispatchers,
        "connectors" => &mut args.common.connectors,
        "decorators" => &mut args.common.decorators,
        "dest_archivers" => &mut args.common.dest_archivers,
        _ => &mut args.common.source_archivers,
    };
    if list.len() < 2 {
        return;
    }
    let candidate = list.last().cloned().unwrap_or_default();
    if !stoq_knows(&candidate) && Path::new(&candidate).is_file() {
        list.pop();
        args.file = Some(PathBuf::from(candidate));
    }
}

/// Everything `scan` and `run` share: `$STOQ_HOME`, stoq.cfg, logging,
/// plugin options, role flags, request metadata.
fn prepare(
    c: &CommonArgs,
    run_mode: bool,
) -> Result<(stoq_engine::StoqBuilder, RequestMeta), Fail> {
    let (home, home_exists) = stoq_home()?;
    let (config, config_path) = load_config(c.config_file.as_deref(), &home)?;
    setup_logging(c.log_level.as_deref(), config.as_ref(), &home, home_exists)?;
    if config.is_none() {
        tracing::info!(
            "{} does not exist, using stoQ defaults",
            config_path.display()
        );
    }
    let plugin_opts = parse_plugin_opts(&c.plugin_opts)?;
    let request_extra = parse_request_extra(&c.request_extra)?;

    let mut builder = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(&home)
        .plugin_opts(plugin_opts);
    // Run mode delivers results only through connectors: without any,
    // print them rather than drop them.
    let no_connectors = c.connectors.is_empty()
        && config
            .as_ref()
            .is_none_or(|cfg| cfg.core.connectors.as_ref().is_none_or(|v| v.is_empty()));
    if run_mode && no_connectors {
        builder = builder.connectors(["stdout"]);
    }
    if let Some(cfg) = config {
        builder = builder.config(cfg);
    }
    if !c.plugin_dir.is_empty() {
        builder = builder.plugin_dirs(c.plugin_dir.clone());
    }
    let request_meta = RequestMeta {
        archive_payloads: true,
        source: c.request_source.clone(),
        extra_data: request_extra,
    };
    Ok((builder, request_meta))
}

/// Apply the role flags to the builder.
fn apply_roles(
    mut builder: stoq_engine::StoqBuilder,
    c: &CommonArgs,
    providers: &[String],
) -> stoq_engine::StoqBuilder {
    type Setter = fn(stoq_engine::StoqBuilder, Vec<String>) -> stoq_engine::StoqBuilder;
    let lists: [(&[String], Setter); 7] = [
        (providers, |b, v| b.providers(v)),
        (&c.always_dispatch, |b, v| b.always_dispatch(v)),
        (&c.dispatchers, |b, v| b.dispatchers(v)),
        (&c.connectors, |b, v| b.connectors(v)),
        (&c.decorators, |b, v| b.decorators(v)),
        (&c.dest_archivers, |b, v| b.dest_archivers(v)),
        (&c.source_archivers, |b, v| b.source_archivers(v)),
    ];
    for (values, set) in lists {
        if !values.is_empty() {
            builder = set(builder, flatten(values));
        }
    }
    if let Some(n) = c.max_recursion {
        builder = builder.max_recursion(n as usize);
    }
    builder
}

async fn scan(mut args: ScanArgs, matches: Option<&ArgMatches>) -> Result<u8, Fail> {
    let (builder, request_meta) = prepare(&args.common, false)?;
    // Resolve a trailing file swallowed by a list flag before the role
    // flags are applied, so the file name is never loaded as a plugin.
    let known = builder.plugin_names()?;
    take_trailing_file(&mut args, matches, |n| known.iter().any(|k| k == n));
    let c = &args.common;
    let builder = apply_roles(builder, c, &[]);
    // Read the input before loading plugins: a bad path should not wait on
    // plugin start-up.
    let (content, filename) = read_input(args.file.as_deref())?;
    let stoq = builder.build().map_err(|e| name_flag(e, c, &[]))?;

    let mut payload_meta = PayloadMeta::default();
    payload_meta.extra_data.insert(
        "filename".into(),
        filename.map(Value::String).unwrap_or(Value::Null),
    );
    let start = flatten(&c.start_dispatch);
    let response = stoq
        .scan(content, Some(payload_meta), Some(request_meta), &start)
        .await;

    let connectors = stoq.role_names(PluginClass::Connector);
    if connectors.is_empty() {
        print_json(&stoq_core::to_json_pretty(&response))?;
        return Ok(0);
    }
    if response.failed_connectors.is_empty() {
        return Ok(0);
    }
    // Never lose results: when no connector that writes to stdout
    // succeeded, print them here.
    let stdout_ok = connectors
        .iter()
        .any(|c| c == "stdout" && !response.failed_connectors.contains(c));
    eprintln!(
        "stoq: connector(s) failed to save the results: {}",
        response.failed_connectors.join(", ")
    );
    if !stdout_ok {
        let text = stoq_core::to_json_pretty(&response);
        if let Err(f) = print_json(&text) {
            // Last resort: stderr still works more often than not.
            eprintln!("stoq: {}; the results follow on stderr", f.message);
            eprintln!("{text}");
        }
    }
    Ok(EXIT_CONNECTOR)
}

async fn run(args: RunArgs) -> Result<u8, Fail> {
    let c = &args.common;
    let (builder, request_meta) = prepare(c, true)?;
    let stoq = apply_roles(builder, c, &args.providers)
        .build()
        .map_err(|e| name_flag(e, c, &args.providers))?;
    if stoq.role_names(PluginClass::Provider).is_empty() {
        return Err(Fail::fatal(
            "No activated provider plugins: name one with -P/--providers or [core] providers",
        ));
    }
    let control = RunControl::new();
    let ctl = control.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!(
            "Signal received: stopping intake, finishing the scans in progress (signal again to abort)"
        );
        ctl.shutdown();
        wait_for_signal().await;
        eprintln!("stoq: second signal, aborting");
        std::process::exit(130);
    });
    let started = Instant::now();
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(control.stats().clone(), started)));
    let start = flatten(&c.start_dispatch);
    let summary = stoq
        .run_with(Some(request_meta), &start, control.clone())
        .await?;
    if let Some(p) = progress {
        p.abort();
        eprint!("\r\x1b[2K");
    }
    let stats = control.stats();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "run {}: {} items ({} scanned, {} failed, {} unsaved, {} abandoned), {} payloads, {} error records, {} bytes in {:.1}s ({:.1} items/s)",
        if summary.interrupted { "stopped" } else { "finished" },
        summary.items,
        summary.scanned,
        summary.failed_items,
        summary.unsaved,
        summary.abandoned,
        RunStats::get(&stats.payloads),
        RunStats::get(&stats.errors),
        RunStats::get(&stats.bytes),
        secs,
        summary.items as f64 / secs.max(1e-9),
    );
    Ok(if summary.provider_errors > 0 {
        EXIT_FATAL
    } else if summary.unsaved > 0 {
        EXIT_CONNECTOR
    } else if summary.failed_items > 0 {
        EXIT_ITEMS_FAILED
    } else {
        0
    })
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A live progress line on stderr (terminals only).
async fn show_progress(stats: std::sync::Arc<RunStats>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let done = RunStats::get(&stats.done);
        let expected = RunStats::get(&stats.expected);
        let total = if expected > 0 {
            format!("/{expected}")
        } else {
            String::new()
        };
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r\x1b[2K{done}{total} items, {} payloads, {} errors, {} failed, {rate:.1} items/s",
            RunStats::get(&stats.payloads),
            RunStats::get(&stats.errors),
            RunStats::get(&stats.failed),
        );
    }
}

/// Prefix a plugin-loading error with the flag that named the plugin.
fn name_flag(e: StoqError, c: &CommonArgs, providers: &[String]) -> Fail {
    let plugin = match &e {
        StoqError::PluginNotFound(n) => n.clone(),
        StoqError::PluginLoad { name, .. } | StoqError::WrongClass { name, .. } => name.clone(),
        _ => return Fail::from(e),
    };
    let flags: [(&str, &[String]); 7] = [
        ("-P/--providers", providers),
        ("-a/--always-dispatch", &c.always_dispatch),
        ("-R/--dispatchers", &c.dispatchers),
        ("-C/--connectors", &c.connectors),
        ("-D/--decorators", &c.decorators),
        ("-A/--dest-archivers", &c.dest_archivers),
        ("-S/--source-archivers", &c.source_archivers),
    ];
    match flags.iter().find(|(_, v)| flatten(v).contains(&plugin)) {
        Some((flag, _)) => Fail::fatal(format!("{flag}: {e}")),
        None => Fail::fatal(format!("{e} (named in the [core] section of stoq.cfg)")),
    }
}

fn print_json(text: &str) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
        .map_err(|e| Fail::fatal(format!("cannot write to stdout: {e}")))
}

/// The content to scan and its file name (`None` for stdin).
fn read_input(file: Option<&Path>) -> Result<(Vec<u8>, Option<String>), Fail> {
    let from_stdin = file.is_none_or(|f| f.as_os_str() == "-");
    let (content, name) = if from_stdin {
        let mut stdin = std::io::stdin().lock();
        if stdin.is_terminal() {
            return Err(Fail::usage(
                "No content to scan was provided: give a FILE or pipe data on standard input",
            ));
        }
        let mut buf = Vec::new();
        stdin
            .read_to_end(&mut buf)
            .map_err(|e| Fail::usage(format!("cannot read standard input: {e}")))?;
        (buf, None)
    } else {
        let path = file.unwrap_or(Path::new("-"));
        // One read into a buffer of the file's size; the buffer then moves
        // into the payload without another copy.
        let buf = std::fs::read(path)
            .map_err(|e| Fail::usage(format!("cannot read {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        (buf, Some(name))
    };
    if content.is_empty() {
        return Err(Fail::usage("The provided content to scan was empty"));
    }
    Ok((content, name))
}

fn install(args: InstallArgs) -> Result<u8, Fail> {
    let default_dir = args.install_dir.is_none();
    let install_dir = match args.install_dir {
        Some(d) => d,
        None => stoq_home()?.0.join("plugins"),
    };
    let line = install::install(&install::Install {
        source: args.plugin_path,
        install_dir,
        upgrade: args.upgrade,
        default_dir,
    })?;
    println!("{line}");
    Ok(0)
}

fn list(args: ListArgs) -> Result<u8, Fail> {
    let (home, home_exists) = stoq_home()?;
    let (config, _) = load_config(args.config_file.as_deref(), &home)?;
    setup_logging(None, config.as_ref(), &home, home_exists)?;
    let none: [&str; 0] = [];
    let mut builder = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(&home)
        // Listing loads nothing: no roles from stoq.cfg.
        .providers(none)
        .source_archivers(none)
        .dest_archivers(none)
        .connectors(none)
        .dispatchers(none)
        .decorators(none)
        .always_dispatch(none);
    if let Some(cfg) = config {
        builder = builder.config(cfg);
    }
    if !args.plugin_dir.is_empty() {
        builder = builder.plugin_dirs(args.plugin_dir);
    }
    let stoq = builder.build()?;
    let mut text = String::new();
    let head = about();
    text.push_str(&head);
    text.push('\n');
    text.push_str(&"-".repeat(head.chars().count()));
    text.push('\n');
    for p in stoq.list_plugins() {
        let classes: Vec<&str> = p.classes.iter().map(|c| c.as_str()).collect();
        text.push_str(&format!(
            "{:<20} v{:<10}{}\n",
            p.name, p.version, p.description
        ));
        text.push_str(&format!("\t\t\t\t- {}\n", classes.join(", ")));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Fail::fatal(format!("cannot write to stdout: {e}")))?;
    Ok(0)
}
