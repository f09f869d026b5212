//! The command line of `invite-http`: with no command it serves the API; `accounts` manages
//! the Telegram accounts campaigns run on, against the configured database (the same
//! `DATABASE_URL`, `INVITE_SECRET_KEY` / key file, `TELEGRAM_API_ID` / `TELEGRAM_API_HASH` as
//! the server), through the same use case as `POST /api/v1/invite/accounts`.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use invite_core::clock::SystemClock;
use invite_core::domain::{AccountId, Platform, UserId};

use invite_telegram::{GrammersConnector, Prompt};

use crate::accounts::{AddAccount, Login, RegisteredAccountView, session_from_file};
use crate::config::Config;

/// Invite Service: invite and direct-message campaigns under the platforms' limits.
///
/// With no command, serves the REST API with the engine in-process (embedded mode).
/// Configuration comes from the environment: DATABASE_URL (default sqlite://invite.db),
/// BIND_ADDR (default 127.0.0.1:8003), INVITE_JWT_SECRET, INVITE_SECRET_KEY, TELEGRAM_API_ID,
/// TELEGRAM_API_HASH, LOG_FORMAT, INVITE_SANDBOX_*, VAULT_*, PARSING_SERVICE_URL,
/// ACCOUNT_MANAGER_URL, INTEGRATION_SERVICE_URL, INVITE_SERVICE_JWT_SECRET.
#[derive(Debug, Parser)]
#[command(name = "invite-http", version)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API with the engine in-process (the default).
    Serve,
    /// Manage the Telegram accounts campaigns run on.
    Accounts {
        /// What to do with accounts.
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Serve the reference Account Manager (docs/account-manager.md) over the embedded
    /// limits and the configured store (DATABASE_URL), checking service tokens signed with
    /// INVITE_SERVICE_JWT_SECRET.
    AccountManager {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8010")]
        bind: std::net::SocketAddr,
        /// Seconds an allocation holds its account without a release (a caller whose
        /// release was lost does not lock it for good); longer than any action.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
        hold_ttl_seconds: u64,
    },
}

/// Serves the reference Account Manager until SIGTERM or Ctrl-C; the exit code says how it
/// went.
pub async fn account_manager(
    config: &Config,
    bind: std::net::SocketAddr,
    hold_ttl: std::time::Duration,
) -> ExitCode {
    match serve_account_manager(config, bind, hold_ttl).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("invite-http account-manager: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_account_manager(
    config: &Config,
    bind: std::net::SocketAddr,
    hold_ttl: std::time::Duration,
) -> Result<(), String> {
    let Some((_, secret)) = &config.platform.service else {
        return Err(
            "INVITE_SERVICE_JWT_SECRET: required, the HS256 secret the callers' \
                    service tokens are signed with"
                .to_owned(),
        );
    };
    let clock = Arc::new(SystemClock);
    let backends = crate::runtime::connect_backends(config, clock.clone())
        .await
        .map_err(|e| e.to_string())?;
    let manager = invite_core::limits::LocalAccountManager::new(
        backends.ledger.clone(),
        clock.clone(),
        config.sandbox.seed,
    )
    .with_policy(
        Platform::Sandbox,
        crate::runtime::sandbox_policy(&config.sandbox),
    );
    let router = invite_platform::account_manager::server::router_with_hold_ttl(
        Arc::new(manager),
        secret.clone(),
        clock,
        hold_ttl,
    );
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("--bind: cannot listen on {bind}: {e}"))?;
    let store = backends.store_kind;
    tracing::info!(%bind, store, "reference Account Manager listening on http://{bind}");
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(crate::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"));
    if let Some(pool) = &backends.pool {
        pool.close().await;
    }
    served
}

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Add an account: a session string read from standard input (never from the command
    /// line, where it would stay in the shell's history), or a .session file.
    Add {
        /// The owner: the `user_id` of the API's tokens.
        #[arg(long)]
        user: i64,
        /// A Telethon or Pyrogram .session file (SQLite) instead of a string on stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The application's api_id (default: TELEGRAM_API_ID).
        #[arg(long)]
        api_id: Option<i32>,
        /// A name for the account.
        #[arg(long)]
        label: Option<String>,
        /// Store without connecting to Telegram (status `unverified`).
        #[arg(long)]
        no_verify: bool,
    },
    /// List a user's accounts and their status.
    List {
        /// The owner.
        #[arg(long)]
        user: i64,
    },
    /// Sign in with a phone number, for an account that has no session string yet: asks the
    /// phone number, then the login code Telegram sends and the 2FA password if the account
    /// has one (neither echoed on a terminal; one per line from standard input otherwise),
    /// and stores the new session like `add` does.
    Login {
        /// The owner: the `user_id` of the API's tokens.
        #[arg(long)]
        user: i64,
        /// The application's api_id (default: TELEGRAM_API_ID; the api_hash comes from
        /// TELEGRAM_API_HASH).
        #[arg(long)]
        api_id: Option<i32>,
        /// A name for the account.
        #[arg(long)]
        label: Option<String>,
    },
    /// Remove an account and its sealed secrets.
    Remove {
        /// The owner.
        #[arg(long)]
        user: i64,
        /// The account id (`tg-…`).
        id: String,
    },
}

/// Runs an `accounts` command; the exit code says how it went.
pub async fn accounts(config: &Config, command: AccountsCommand) -> ExitCode {
    let (use_case, backends) =
        match crate::runtime::standalone_accounts(config, Arc::new(SystemClock)).await {
            Ok(parts) => parts,
            Err(e) => {
                eprintln!("invite-http: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = run(&use_case, command).await;
    if let Some(pool) = &backends.pool {
        pool.close().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("invite-http: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(use_case: &crate::accounts::Accounts, command: AccountsCommand) -> Result<(), String> {
    match command {
        AccountsCommand::Add {
            user,
            file,
            api_id,
            label,
            no_verify,
        } => {
            let session = match file {
                Some(path) => {
                    let bytes =
                        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    session_from_file(&bytes, api_id)
                        .await
                        .map_err(|e| e.to_string())?
                }
                None => read_session()?,
            };
            let input = AddAccount {
                platform: Platform::Telegram.to_string(),
                session,
                api_id,
                api_hash: None,
                label,
                device: Default::default(),
            };
            let account = use_case
                .add(UserId::new(user), input, !no_verify)
                .await
                .map_err(|e| e.to_string())?;
            print_table(&[use_case.view(&account)]);
            Ok(())
        }
        AccountsCommand::Login {
            user,
            api_id,
            label,
        } => {
            let connector = GrammersConnector::default();
            let stdin = std::io::stdin();
            let terminal = stdin.is_terminal();
            let mut prompt = LinePrompt::new(std::io::BufReader::new(stdin), terminal);
            let account = use_case
                .login(
                    UserId::new(user),
                    &connector,
                    &mut prompt,
                    Login {
                        api_id,
                        api_hash: None,
                        label,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            print_table(&[use_case.view(&account)]);
            Ok(())
        }
        AccountsCommand::List { user } => {
            let accounts = use_case
                .list(UserId::new(user), None)
                .await
                .map_err(|e| e.to_string())?;
            let views: Vec<RegisteredAccountView> =
                accounts.iter().map(|a| use_case.view(a)).collect();
            print_table(&views);
            Ok(())
        }
        AccountsCommand::Remove { user, id } => {
            let id = AccountId::parse(id).map_err(|e| e.to_string())?;
            use_case
                .remove(UserId::new(user), &id)
                .await
                .map_err(|e| e.to_string())?;
            println!("removed {id}");
            Ok(())
        }
    }
}

/// The sign-in's questions on standard input: on a terminal each is asked on standard error,
/// and the code and the password are read without echo (from the terminal itself); otherwise
/// each answer is the next line of the input (scripts, tests).
pub struct LinePrompt<R> {
    input: R,
    terminal: bool,
}

impl<R> std::fmt::Debug for LinePrompt<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinePrompt")
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

impl<R: std::io::BufRead + Send> LinePrompt<R> {
    /// Answers read from `input`; `terminal` when it is one.
    pub fn new(input: R, terminal: bool) -> Self {
        Self { input, terminal }
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim().to_owned())
    }

    fn hidden(&mut self, question: &str) -> std::io::Result<String> {
        if self.terminal {
            rpassword::prompt_password(question)
        } else {
            self.line()
        }
    }
}

impl<R: std::io::BufRead + Send> Prompt for LinePrompt<R> {
    fn phone(&mut self) -> std::io::Result<String> {
        if self.terminal {
            eprint!("Phone number of the account, in international form (+44 7700 900123): ");
        }
        self.line()
    }

    fn code(&mut self, retry: bool) -> std::io::Result<String> {
        self.hidden(if retry {
            "That code was wrong. The login code again (not shown): "
        } else {
            "The login code Telegram sent to the account's app or by SMS (not shown): "
        })
    }

    fn password(&mut self, hint: Option<&str>, retry: bool) -> std::io::Result<String> {
        let hint = hint.map(|h| format!(" (hint: {h})")).unwrap_or_default();
        let question = if retry {
            format!("That password was wrong. The 2FA password{hint} again (not shown): ")
        } else {
            format!("The account's 2FA password{hint} (not shown): ")
        };
        self.hidden(&question)
    }
}

/// One session string from standard input (a prompt when it is a terminal).
fn read_session() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the Telethon or Pyrogram session string, then Enter:");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading standard input: {e}"))?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err("no session string on standard input (or give --file)".to_owned());
    }
    Ok(line)
}

fn print_table(accounts: &[RegisteredAccountView]) {
    println!(
        "{:<20} {:<13} {:<12} {:<16} {:<20} LABEL",
        "ID", "STATUS", "TELEGRAM ID", "USERNAME", "LAST USED"
    );
    for a in accounts {
        println!(
            "{:<20} {:<13} {:<12} {:<16} {:<20} {}",
            a.id,
            a.status,
            a.telegram_user_id
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            a.username
                .as_deref()
                .map_or_else(|| "-".to_owned(), |u| format!("@{u}")),
            a.last_used_at.map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M").to_string()
            ),
            a.label.as_deref().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn help_is_printed_not_served() {
        Cli::command().debug_assert();
        let e = Cli::try_parse_from(["invite-http", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(e.to_string().contains("accounts"));
        let e = Cli::try_parse_from(["invite-http", "accounts", "add", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(e.to_string().contains("--no-verify"));
        let cli = Cli::try_parse_from(["invite-http"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["invite-http", "accounts", "remove", "--user", "7", "tg-1"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Accounts {
                command: AccountsCommand::Remove { user: 7, .. }
            })
        ));
        let e = Cli::try_parse_from(["invite-http", "accounts", "login", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(e.to_string().contains("2FA password"), "{e}");
        let cli = Cli::try_parse_from(["invite-http", "accounts", "login", "--user", "7"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Accounts {
                command: AccountsCommand::Login { user: 7, .. }
            })
        ));
    }

    #[test]
    fn a_prompt_off_a_terminal_reads_one_answer_per_line() {
        let input = std::io::Cursor::new("+44 7700 900123\n 40917 \nhunter2\n");
        let mut prompt = LinePrompt::new(input, false);
        assert_eq!(prompt.phone().unwrap(), "+44 7700 900123");
        assert_eq!(prompt.code(false).unwrap(), "40917");
        assert_eq!(prompt.password(Some("h"), false).unwrap(), "hunter2");
        let e = prompt.code(true).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
