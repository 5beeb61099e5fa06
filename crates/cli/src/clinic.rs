//! `itb serve`, `itb db`, `itb user` and `itb audit`: the clinic's system of record from the
//! command line.

use std::io::BufRead;
use std::sync::Arc;

use clap::{Args, Subcommand};
use itb_clinic::api::AppState;
use itb_clinic::fleet::Fleet;
use itb_clinic::rules::access::Role;
use itb_clinic::store::{DEFAULT_URL, copy};
use itb_clinic::{ClinicError, ServiceClock, Store};
use itb_web::router;

use crate::CliError;
use crate::program::Outcome;

/// Where the demo keeps its record (made anew at each start).
pub const DEMO_URL: &str = "sqlite://itb-data/demo.sqlite";

/// Exit codes of the clinic's commands.
pub const EXIT_CODES: &str = "Exit codes:
  0  done as asked
  1  refused, bad input, or the database could not be reached (nothing was changed)
  2  the command line is wrong (a flag or value; see the message)
  3  itb audit verify: the audit chain is broken (the message names the first broken entry)";

/// `itb serve`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ServeArgs {
    /// Build a demo service of about 40 patients with virtual pumps (in itb-data/demo.sqlite,
    /// made anew, unless --database is given) and print its sign-ins.
    #[arg(long)]
    demo: bool,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The database: a sqlite:// URL or file, or postgres://... (default: ITB_DATABASE_URL, or
    /// itb-data/itb.sqlite).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Start the service's clock at this instant (RFC 3339), for training and tests.
    #[arg(long, value_name = "T")]
    clock_start: Option<String>,
}

/// `itb db`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the migrations the database lacks.
    Migrate {
        /// The database (default: ITB_DATABASE_URL, or itb-data/itb.sqlite).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Copy the whole record into a new SQLite file, checked row by row and by the audit chain.
    Backup {
        /// The backup file to create (must not exist).
        file: String,
        /// The database (default: ITB_DATABASE_URL, or itb-data/itb.sqlite).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Restore a backup file into an empty database.
    Restore {
        /// The backup file.
        file: String,
        /// The database to restore into, which must hold no record.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Copy the whole record from one database to another (SQLite to PostgreSQL, say), then
    /// check that every row and the audit chain arrived.
    Copy {
        /// From.
        #[arg(long, value_name = "URL")]
        from: String,
        /// To (must hold no record).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// `itb user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        /// The sign-in name.
        #[arg(long)]
        username: String,
        /// nurse_specialist, consultant, neurosurgeon, physiotherapist, pharmacist, admin or patient.
        #[arg(long)]
        role: String,
        /// For a patient: their record's id.
        #[arg(long, value_name = "ID")]
        patient_id: Option<i64>,
        /// The database (default: ITB_DATABASE_URL, or itb-data/itb.sqlite).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
}

/// `itb audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every link of the audit chain; name the first broken or missing entry.
    Verify {
        /// The database (default: ITB_DATABASE_URL, or itb-data/itb.sqlite).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
}

fn database(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("ITB_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| CliError(format!("cannot start: {e}")))
}

fn clinic_error(e: ClinicError) -> CliError {
    CliError(e.to_string())
}

async fn open(url: &str) -> Result<Store, CliError> {
    Store::open(url).await.map_err(clinic_error)
}

fn sqlite_file(url: &str) -> Option<String> {
    if Store::backend_of(url) != itb_clinic::store::Backend::Sqlite {
        return None;
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    Some(path.split('?').next().unwrap_or(path).to_owned())
}

fn remove_sqlite(path: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

/// `itb serve`.
pub fn serve(args: ServeArgs) -> Result<Outcome, CliError> {
    let clock = match &args.clock_start {
        Some(text) => ServiceClock::starting_at(text.parse().map_err(|_| {
            CliError::flag(
                "--clock-start",
                format!("'{text}' is not an instant; write it as RFC 3339, such as 2026-11-25T09:00:00Z"),
            )
        })?),
        None => ServiceClock::System,
    };
    let listen: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        CliError::flag(
            "--listen",
            format!("'{}' is not an address; write it as host:port, such as 127.0.0.1:8080", args.listen),
        )
    })?;
    let url = match (&args.database, args.demo) {
        (Some(url), _) => url.clone(),
        (None, true) => {
            if let Some(path) = sqlite_file(DEMO_URL) {
                remove_sqlite(&path);
            }
            DEMO_URL.to_owned()
        }
        (None, false) => database(None),
    };
    runtime()?.block_on(async move {
        let store = open(&url).await?;
        let fleet = Arc::new(Fleet::new(clock.clone()));
        let mut state = AppState::new(store.clone(), clock.clone());
        let users = store.user_count().await.map_err(clinic_error)?;
        if args.demo && users > 0 {
            return Err(CliError(format!(
                "--demo builds its service in an empty database, and {} already holds a record; leave out --database to use {DEMO_URL} (made anew)",
                store.describe()
            )));
        }
        if !args.demo && users == 0 {
            println!("itb serve: no users yet: add the first with printf '%s\\n' \"$PASSWORD\" | itb user add --username NAME --role admin --database {}", store.describe());
        }
        if args.demo {
            let built = itb_clinic::demo::build(&store, clock.now(), Some(&fleet)).await.map_err(clinic_error)?;
            state = state.with_fleet(Arc::clone(&fleet));
            println!("itb serve: demo service of {} patients, {} pumps with virtual pumps, in {}", built.patients, built.pumps, store.describe());
            println!("Demo sign-ins (username / password):");
            for sign_in in itb_clinic::demo::SIGN_INS {
                println!("  {:<12} {:<26} {}", sign_in.username, sign_in.password, sign_in.role.describe());
            }
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::flag("--listen", format!("cannot listen on {listen}: {e}; choose another port")))?;
        let bound = listener.local_addr().map_err(|e| CliError(e.to_string()))?;
        println!("itb serve listening on http://{bound} (database {}; sign in at http://{bound}/sign-in; the API is under /api/v1/, its OpenAPI document at /api/v1/openapi.json)", store.describe());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| CliError(format!("the server stopped: {e}")))?;
        store.close().await;
        Ok(Outcome { text: "itb serve: stopped\n".to_owned(), code: 0 })
    })
}

/// `itb db ...`.
pub fn db(command: DbCommand) -> Result<Outcome, CliError> {
    runtime()?.block_on(async move {
        let text = match command {
            DbCommand::Migrate { database: flag } => {
                let url = database(flag);
                let store = open(&url).await?;
                store.close().await;
                format!("itb db migrate: {} is up to date\n", store.describe())
            }
            DbCommand::Backup { file, database: flag } => {
                if std::path::Path::new(&file).exists() {
                    return Err(CliError(format!("{file} exists: give a new file name for the backup")));
                }
                let from = open(&database(flag)).await?;
                let to = open(&format!("sqlite://{file}")).await?;
                let report = copy::copy(&from, &to).await;
                to.close().await;
                let report = report.map_err(|e| {
                    remove_sqlite(&file);
                    clinic_error(e)
                })?;
                format!(
                    "itb db backup: {} rows and {} audit entries copied to {file} and checked\n",
                    rows(&report),
                    report.audit_entries
                )
            }
            DbCommand::Restore { file, database: flag } => {
                if !std::path::Path::new(&file).exists() {
                    return Err(CliError(format!("{file} does not exist: give the backup file")));
                }
                let from = open(&format!("sqlite://{file}")).await?;
                let to = open(&database(flag)).await?;
                let report = copy::copy(&from, &to).await.map_err(clinic_error)?;
                format!(
                    "itb db restore: {} rows and {} audit entries restored into {} and checked\n",
                    rows(&report),
                    report.audit_entries,
                    to.describe()
                )
            }
            DbCommand::Copy { from, to } => {
                let source = open(&from).await?;
                let target = open(&to).await?;
                let report = copy::copy(&source, &target).await.map_err(clinic_error)?;
                let mut text = format!("itb db copy: {} -> {}\n", source.describe(), target.describe());
                for (table, n) in &report.tables {
                    text.push_str(&format!("  {table:<20} {n} rows, all arrived\n"));
                }
                text.push_str(&format!("  audit chain: {} entries verified in the target\n", report.audit_entries));
                text
            }
        };
        Ok(Outcome { text, code: 0 })
    })
}

fn rows(report: &copy::CopyReport) -> i64 {
    report.tables.iter().map(|(_, n)| n).sum()
}

/// `itb user ...`.
pub fn user(command: UserCommand) -> Result<Outcome, CliError> {
    let UserCommand::Add { username, role, patient_id, database: flag } = command;
    let role: Role = role.parse().map_err(|e: String| CliError::flag("--role", e))?;
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| CliError(format!("cannot read the password from standard input: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(CliError(
            "give the password on standard input (one line), e.g. printf '%s\\n' \"$PASSWORD\" | itb user add ..."
                .to_owned(),
        ));
    }
    runtime()?.block_on(async move {
        let store = open(&database(flag)).await?;
        let user = store
            .add_user("console", username.trim(), role, &password, patient_id, jiff::Timestamp::now())
            .await
            .map_err(clinic_error)?;
        store.close().await;
        Ok(Outcome {
            text: format!("itb user add: {} added as {} (id {})\n", user.username, role.describe(), user.id),
            code: 0,
        })
    })
}

/// `itb audit ...`.
pub fn audit(command: AuditCommand) -> Result<Outcome, CliError> {
    let AuditCommand::Verify { database: flag } = command;
    runtime()?.block_on(async move {
        let store = open(&database(flag)).await?;
        let verification = store.verify_audit().await.map_err(clinic_error)?;
        store.close().await;
        Ok(if verification.valid {
            Outcome {
                text: format!(
                    "itb audit verify: the audit chain is whole: {} entries, every link checked\n",
                    verification.entries
                ),
                code: 0,
            }
        } else {
            Outcome {
                text: format!(
                    "itb audit verify: the audit chain is BROKEN at entry {}: {} ({} entries before it verify)\n",
                    verification.first_broken.unwrap_or(0),
                    verification.problem.unwrap_or_default(),
                    verification.entries
                ),
                code: 3,
            }
        })
    })
}
