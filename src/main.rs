//! The `whacaster` command: serve, and the operator's tools (setup link, MFA reset,
//! key rotation, self-check, effective configuration).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use whacaster::clock::Clock;
use whacaster::config::{Config, LogFormat, Overrides};

#[derive(Parser)]
#[command(name = "whacaster", version, about = "Self-hosted WhatsApp Business platform")]
struct Cli {
    /// Configuration file (TOML). Also WHACASTER_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (database, key, certificates). Overrides the config file.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:443.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print a fresh one-time setup link (only while no admin exists).
    SetupUrl,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys for the REST API.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Write an encrypted backup of the database and media (the server may keep running),
    /// or with --verify prove a backup restorable without restoring it.
    Backup {
        /// Where to write it (default: <data-dir>/backups/whacaster-backup-<time>.wcbk).
        #[arg(long, conflicts_with = "verify")]
        out: Option<PathBuf>,
        /// Decrypt, authenticate and check this backup instead of making one.
        #[arg(long, value_name = "FILE")]
        verify: Option<PathBuf>,
        #[command(flatten)]
        key: BackupKeyArgs,
    },
    /// Restore a backup into an empty data directory (--data-dir), then check it.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        key: BackupKeyArgs,
    },
    /// Re-encrypt the database and the media files with a new key (stop the server first).
    Rekey,
    /// Check the database, file permissions and certificate; non-zero exit on a problem.
    Check,
    /// Print the effective configuration.
    CheckConfig,
}

/// The backup key, when not the configured one (`backup.passphrase_file`/`key_file`).
#[derive(clap::Args)]
struct BackupKeyArgs {
    /// A file whose first line is the backup passphrase.
    #[arg(long, conflicts_with = "key_file")]
    passphrase_file: Option<PathBuf>,
    /// A backup key file (64 hex characters).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

impl BackupKeyArgs {
    /// The key named on the command line, else the configured one (made only when
    /// `create`: the first backup makes `<data-dir>/backup.key`).
    fn resolve(&self, cfg: &Config, create: bool) -> Result<whacaster::privacy::backup::BackupKey, String> {
        use whacaster::privacy::backup::BackupKey;
        match (&self.passphrase_file, &self.key_file) {
            (Some(p), _) => BackupKey::read_passphrase(p),
            (None, Some(k)) => BackupKey::read_key_file(k),
            (None, None) => BackupKey::configured(cfg, create),
        }
    }
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key (printed once; only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        /// admin, supervisor or agent.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Remove a user's MFA so they can sign in with their password and enrol again.
    ResetMfa {
        #[arg(long)]
        email: String,
    },
    /// Print a one-time link with which the user sets a new password (their sessions end).
    ResetPassword {
        #[arg(long)]
        email: String,
    },
    /// Create a user with a password read from standard input (for scripted installs).
    Create {
        #[arg(long)]
        email: String,
        /// admin, supervisor or agent.
        #[arg(long)]
        role: String,
        /// The person's name; the e-mail's local part when left out.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Some(Command::Serve { listen }) => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
    };
    let cfg = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let serving = matches!(cli.command, None | Some(Command::Serve { .. }));
    init_logging(&cfg, serving);
    let config_file = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("WHACASTER_CONFIG").map(PathBuf::from));
    let command = cli.command.unwrap_or(Command::Serve { listen: None });
    if matches!(command, Command::Restore { .. }) && cli.data_dir.is_none() {
        return fail("restore needs --data-dir DIR: the empty directory to restore into");
    }
    if !matches!(command, Command::Serve { .. } | Command::CheckConfig) {
        if let Err(e) = whacaster::server::become_data_owner(&cfg.data_dir) {
            return fail(&e);
        }
    }
    let result = match command {
        Command::Serve { .. } => serve(cfg),
        Command::SetupUrl => setup_url(&cfg),
        Command::User {
            command: UserCommand::ResetMfa { email },
        } => reset_mfa(&cfg, &email),
        Command::User {
            command: UserCommand::ResetPassword { email },
        } => reset_password(&cfg, &email),
        Command::User {
            command: UserCommand::Create { email, role, name, .. },
        } => create_user(&cfg, &email, &role, name.as_deref()),
        Command::ApiKey {
            command: ApiKeyCommand::Create { name, role },
        } => create_api_key(&cfg, &name, &role),
        Command::Backup { out, verify, key } => backup(&cfg, out, verify.as_deref(), &key),
        Command::Restore { file, key } => restore(&cfg, &file, &key),
        Command::Rekey => rekey(&cfg),
        Command::Check => check(&cfg, config_file.as_deref()),
        Command::CheckConfig => {
            println!("{}", cfg.to_toml());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// The server logs to stdout (the journal under systemd); commands log to stderr so
/// their output stays clean.
fn init_logging(cfg: &Config, serving: bool) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer = if serving {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    match cfg.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(cfg: Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let running = whacaster::server::start(cfg, Clock::default()).await?;
        // actix only starts listening for signals when the server future is first polled;
        // from "ready" on, SIGTERM/SIGINT must already mean a graceful stop.
        stop_on_signals(running.handle.clone())?;
        // Type=notify: systemd hears "ready" once the listener is bound and migrations ran.
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
        println!("Whacaster {} is listening on {}", whacaster::VERSION, running.addr);
        if let Some(url) = &running.setup_url {
            println!();
            println!("Open this one-time link to set up your business (valid 24 hours):");
            println!("  {url}");
            println!("The certificate is self-signed unless configured: your browser will warn once.");
            println!();
        }
        let stopped = running.server.await.map_err(|e| format!("server stopped: {e}"));
        running.state.db.close();
        stopped
    })
}

/// SIGTERM or SIGINT: stop accepting, let requests in flight finish, then exit 0.
fn stop_on_signals(handle: actix_web::dev::ServerHandle) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("cannot listen for SIGINT: {e}"))?;
    actix_web::rt::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing requests in flight");
        handle.stop(true).await;
    });
    Ok(())
}

fn setup_url(cfg: &Config) -> Result<(), String> {
    let (db, _, _) = whacaster::server::open_store(cfg, false)?;
    let now = Clock::default().unix();
    let token = whacaster::setup::issue_setup_token(&db, now).map_err(|e| e.to_string());
    db.close();
    match token? {
        Some(token) => {
            println!("{}", whacaster::setup::setup_url(&cfg.base_url(), &token));
            Ok(())
        }
        None => Err("setup is already done: sign in, or reset a user's MFA with `whacaster user reset-mfa`".into()),
    }
}

fn reset_mfa(cfg: &Config, email: &str) -> Result<(), String> {
    let (db, _, _) = whacaster::server::open_store(cfg, false)?;
    let now = Clock::default().unix();
    let email = email.to_string();
    let user = db.write_blocking(move |c| Ok(whacaster::auth::service::reset_mfa_by_email(c, &email, now)?));
    db.close();
    let user = user.map_err(|e| match whacaster::AppError::from(e) {
        whacaster::AppError::NotFound => "no user with that e-mail address".to_string(),
        other => other.to_string(),
    })?;
    println!(
        "MFA removed for {} ({}); their sessions have ended. They enrol again at next sign-in.",
        user.name, user.email
    );
    Ok(())
}

fn reset_password(cfg: &Config, email: &str) -> Result<(), String> {
    let (db, _, _) = whacaster::server::open_store(cfg, false)?;
    let now = Clock::default().unix();
    let email = email.to_string();
    let done = db.write_blocking(move |c| Ok(whacaster::auth::service::reset_password_by_email(c, &email, now)?));
    db.close();
    let (user, token) = done.map_err(|e| match whacaster::AppError::from(e) {
        whacaster::AppError::NotFound => "no user with that e-mail address".to_string(),
        whacaster::AppError::BadRequest(_) => "that user is deactivated: an admin activates them first".to_string(),
        other => other.to_string(),
    })?;
    eprintln!(
        "A one-time link for {} ({}) to set a new password, valid 7 days; their sessions have ended:",
        user.name, user.email
    );
    println!("{}/invite/{token}", cfg.base_url());
    Ok(())
}

/// `user create --password-stdin`: the password never appears in the process list or
/// the shell history; it is held to the same policy as in the browser.
fn create_user(cfg: &Config, email: &str, role: &str, name: Option<&str>) -> Result<(), String> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = zeroize::Zeroizing::new(password.trim_end_matches(['\n', '\r']).to_string());
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
    let (db, _, _) = whacaster::server::open_store(cfg, false)?;
    let hasher = whacaster::auth::password::Hasher::new(&cfg.argon2)?;
    let new = whacaster::auth::service::NewUser::new(email, &name, role, "password", &password);
    let now = Clock::default().unix();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(whacaster::auth::service::create_user(
            &db,
            &hasher,
            &whacaster::audit::Actor::cli(),
            new,
            now,
        ));
    db.close();
    match outcome.map_err(|e| e.to_string())? {
        whacaster::auth::service::NewUserOutcome::Created(id)
        | whacaster::auth::service::NewUserOutcome::Invited { id, .. } => {
            println!("created user {id} ({email}, {role})");
            Ok(())
        }
        whacaster::auth::service::NewUserOutcome::Invalid(errors) => Err(errors
            .0
            .iter()
            .map(|(field, key)| format!("--{}: {}", field, whacaster::i18n::t(whacaster::i18n::Locale::En, key)))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

fn create_api_key(cfg: &Config, name: &str, role: &str) -> Result<(), String> {
    let role = whacaster::auth::Role::parse(role).ok_or("--role must be admin, supervisor or agent")?;
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("--name must be 1 to 100 characters".into());
    }
    let (db, _, _) = whacaster::server::open_store(cfg, false)?;
    let now = Clock::default().unix();
    let created = db.write_blocking(move |c| {
        let actor = whacaster::audit::Actor::cli();
        let (id, token) = whacaster::api::keys::create(c, &name, role, &actor.label, now)?;
        whacaster::audit::record(
            c,
            &actor,
            "api_key.create",
            &format!("api_key:{id} {name}"),
            &format!("role={}", role.as_str()),
            now,
        )?;
        Ok(token)
    });
    db.close();
    let token = created.map_err(|e| e.to_string())?;
    println!("{token}");
    eprintln!("This key is shown only now; store it safely. Revoke it under Administration → API keys.");
    Ok(())
}

fn rekey(cfg: &Config) -> Result<(), String> {
    if !cfg.db_path().exists() {
        return Err(format!("no database at {}", cfg.db_path().display()));
    }
    let (old, source) = whacaster::crypto::load_db_key(&cfg.data_dir, true, false)?;
    let whacaster::crypto::KeySource::DataDir(key_path) = source.clone() else {
        return Err(format!(
            "the key comes from the {source}; rekey rotates only the data-dir key file. \
             Write a new key with `head -c32 /dev/urandom | xxd -p -c64`, re-encrypt with \
             WHACASTER_DB_KEY_FILE pointing at a copy in the data dir, then update the credential"
        ));
    };
    let new = whacaster::crypto::DbKey::generate();
    // Media first: sealed again under the new key beside the old files (`.new`), so a
    // failure leaves everything as it was; swapped in once the database uses the new key.
    // A server start finishes an interrupted swap the same way (`finish_reseal`).
    let media_dir = cfg.data_dir.join("media");
    whacaster::whatsapp::media::finish_reseal(&media_dir, &old.media_key())?;
    let staged = whacaster::whatsapp::media::stage_reseal(&media_dir, &old.media_key(), &new.media_key())?;
    if let Err(e) = whacaster::store::rekey(&cfg.db_path(), &old, &new, &key_path) {
        drop(whacaster::whatsapp::media::finish_reseal(&media_dir, &old.media_key()));
        return Err(e);
    }
    let resealed = whacaster::whatsapp::media::finish_reseal(&media_dir, &new.media_key())?;
    if resealed != staged {
        return Err(format!(
            "the database uses the new key, but only {resealed} of {staged} media files were swapped: run `whacaster serve` once, it finishes the swap"
        ));
    }
    let (db, _, _) = whacaster::server::open_store(cfg, false)?;
    let now = Clock::default().unix();
    let recorded = db
        .write_blocking(move |c| {
            Ok(whacaster::audit::record(
                c,
                &whacaster::audit::Actor::cli(),
                "store.rekey",
                "database",
                "",
                now,
            )?)
        })
        .map_err(|e| e.to_string());
    db.close();
    recorded?;
    println!(
        "The database and {staged} media files are now encrypted with a new key in {}.",
        key_path.display()
    );
    println!("Update any offline copy of the key: the old key no longer opens the database.");
    Ok(())
}

fn backup(
    cfg: &Config,
    out: Option<PathBuf>,
    verify: Option<&std::path::Path>,
    key: &BackupKeyArgs,
) -> Result<(), String> {
    use whacaster::privacy::backup;
    if let Some(file) = verify {
        let key = key.resolve(cfg, false)?;
        let v = backup::verify(file, &key, &std::env::temp_dir()).map_err(|e| format!("{}: {e}", file.display()))?;
        println!(
            "{} is restorable: made {}, schema {}, database {} bytes, {} media files; every byte authenticated, database integrity ok",
            file.display(),
            whacaster::clock::format_unix(v.created_at, None),
            v.schema,
            v.db_bytes,
            v.media_files
        );
        return Ok(());
    }
    let key = key.resolve(cfg, true)?;
    let (db, _, db_key) = whacaster::server::open_store(cfg, false)?;
    let handles = backup::Backups {
        db: db.clone(),
        config: std::sync::Arc::new(cfg.clone()),
        media_key: db_key.media_key(),
    };
    drop(db_key);
    let made = backup::back_up_now(&handles, &key, out, backup::Origin::Cli, Clock::default().unix());
    db.close();
    let (summary, record) = made?;
    if !record.verified {
        return Err(format!(
            "{} was written but does not verify: {}",
            record.file, record.detail
        ));
    }
    println!(
        "{} written and verified: {} bytes, database {} bytes, {} media files.",
        record.file, summary.size, summary.db_bytes, summary.media_files
    );
    println!("{}", key.keep_note());
    Ok(())
}

fn restore(cfg: &Config, file: &std::path::Path, key: &BackupKeyArgs) -> Result<(), String> {
    use whacaster::privacy::backup;
    let key = key.resolve(cfg, false)?;
    let r =
        backup::restore(file, &key, &cfg.data_dir, &cfg.db_path()).map_err(|e| format!("{}: {e}", file.display()))?;
    // Opening applies any newer schema and proves the key; the restore is audited.
    let (db, source, _) = whacaster::server::open_store(cfg, false)?;
    let now = Clock::default().unix();
    let what = file.display().to_string();
    let recorded = db
        .write_blocking(move |c| {
            Ok(whacaster::audit::record(
                c,
                &whacaster::audit::Actor::cli(),
                "backup.restore",
                &what,
                "",
                now,
            )?)
        })
        .map_err(|e| e.to_string());
    db.close();
    recorded?;
    println!(
        "Restored {} into {}: made {}, schema {}, {} media files; integrity ok.",
        file.display(),
        cfg.data_dir.display(),
        whacaster::clock::format_unix(r.created_at, None),
        r.schema,
        r.media_files
    );
    println!("The restored database is encrypted with the {source}: keep a copy of it away from this machine.");
    Ok(())
}

fn check(cfg: &Config, config_file: Option<&std::path::Path>) -> Result<(), String> {
    let findings = whacaster::check::run(cfg, config_file, Clock::default().unix());
    for f in &findings {
        println!("{f}");
    }
    if whacaster::check::has_problem(&findings) {
        Err("check found problems (see above)".into())
    } else {
        Ok(())
    }
}
