//! Reading a Telethon or Pyrogram `.session` file (SQLite) into the session string of the same
//! library, so that a file is imported exactly like a pasted string.
//!
//! Telethon's table `sessions` has `dc_id, server_address, port, auth_key, takeout_id`;
//! Pyrogram's has `dc_id, [api_id,] test_mode, auth_key, date, user_id, is_bot`. The upload is
//! written to a private temporary file, opened read-only and immutable, and removed at once.

use std::net::IpAddr;

use invite_store::sqlx::sqlite::SqliteConnectOptions;
use invite_store::sqlx::{Connection, Row, SqliteConnection};

/// Why a file was not read. Never carries the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionFileError {
    /// Not an SQLite database.
    #[error("not a Telethon or Pyrogram .session file (SQLite)")]
    NotSqlite,
    /// An SQLite database without a usable `sessions` row.
    #[error("the file has no Telethon or Pyrogram session: {0}")]
    NoSession(&'static str),
    /// The row does not make a valid session.
    #[error("the session in the file is not usable: {0}")]
    Invalid(String),
    /// The temporary file could not be written.
    #[error("the file could not be read: {0}")]
    Io(String),
}

/// The session string of a Telethon or Pyrogram `.session` file. `api_id` fills in for an old
/// Pyrogram file that does not store it.
pub async fn session_from_file(
    bytes: &[u8],
    api_id: Option<i32>,
) -> Result<String, SessionFileError> {
    if !bytes.starts_with(b"SQLite format 3\0") {
        return Err(SessionFileError::NotSqlite);
    }
    let path = std::env::temp_dir().join(format!(
        "invite-session-{}.sqlite",
        invite_core::engine::unique_worker_id("upload")
    ));
    write_private(&path, bytes).map_err(|e| SessionFileError::Io(e.kind().to_string()))?;
    let result = read(&path, api_id).await;
    let _ = std::fs::remove_file(&path);
    result
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

async fn read(path: &std::path::Path, api_id: Option<i32>) -> Result<String, SessionFileError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|_| SessionFileError::NotSqlite)?;
    let columns: Vec<String> =
        invite_store::sqlx::query("SELECT name FROM pragma_table_info('sessions')")
            .fetch_all(&mut conn)
            .await
            .map_err(|_| SessionFileError::NotSqlite)?
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .collect();
    let has = |c: &str| columns.iter().any(|x| x == c);
    let result = if has("server_address") && has("port") {
        telethon(&mut conn).await
    } else if has("test_mode") && has("user_id") {
        pyrogram(&mut conn, has("api_id"), api_id).await
    } else {
        Err(SessionFileError::NoSession(
            "no `sessions` table of either library",
        ))
    };
    let _ = conn.close().await;
    result
}

async fn telethon(conn: &mut SqliteConnection) -> Result<String, SessionFileError> {
    let row = invite_store::sqlx::query(
        "SELECT dc_id, server_address, port, auth_key FROM sessions \
         WHERE auth_key IS NOT NULL LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|_| SessionFileError::NoSession("unreadable `sessions` table"))?
    .ok_or(SessionFileError::NoSession(
        "no signed-in session in the file",
    ))?;
    let field = |_| SessionFileError::NoSession("a field of the session is missing");
    let dc: i64 = row.try_get(0).map_err(field)?;
    let address: String = row.try_get(1).map_err(field)?;
    let port: i64 = row.try_get(2).map_err(field)?;
    let key: Vec<u8> = row.try_get(3).map_err(field)?;
    let ip: IpAddr = address
        .parse()
        .map_err(|_| SessionFileError::Invalid("server address is not an IP address".to_owned()))?;
    let dc =
        u8::try_from(dc).map_err(|_| SessionFileError::Invalid("bad data centre".to_owned()))?;
    let port = u16::try_from(port).map_err(|_| SessionFileError::Invalid("bad port".to_owned()))?;
    invite_telegram::session::telethon_string(dc, ip, port, &key)
        .map_err(|e| SessionFileError::Invalid(e.to_string()))
}

async fn pyrogram(
    conn: &mut SqliteConnection,
    has_api_id: bool,
    api_id: Option<i32>,
) -> Result<String, SessionFileError> {
    let sql = if has_api_id {
        "SELECT dc_id, test_mode, auth_key, user_id, is_bot, api_id FROM sessions LIMIT 1"
    } else {
        "SELECT dc_id, test_mode, auth_key, user_id, is_bot, NULL FROM sessions LIMIT 1"
    };
    let row = invite_store::sqlx::query(sql)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|_| SessionFileError::NoSession("unreadable `sessions` table"))?
        .ok_or(SessionFileError::NoSession(
            "no signed-in session in the file",
        ))?;
    let field = |_| SessionFileError::NoSession("a field of the session is missing");
    let dc: i64 = row.try_get(0).map_err(field)?;
    let test_mode: Option<i64> = row.try_get(1).map_err(field)?;
    let key: Option<Vec<u8>> = row.try_get(2).map_err(field)?;
    let user_id: Option<i64> = row.try_get(3).map_err(field)?;
    let is_bot: Option<i64> = row.try_get(4).map_err(field)?;
    let stored_api_id: Option<i64> = row.try_get(5).map_err(field)?;
    let key = key.ok_or(SessionFileError::NoSession(
        "no signed-in session in the file",
    ))?;
    let api = stored_api_id
        .or(api_id.map(i64::from))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let dc =
        u8::try_from(dc).map_err(|_| SessionFileError::Invalid("bad data centre".to_owned()))?;
    invite_telegram::session::pyrogram_string(
        dc,
        api,
        test_mode.unwrap_or(0) != 0,
        &key,
        user_id.unwrap_or(0) as u64,
        is_bot.unwrap_or(0) != 0,
    )
    .map_err(|e| SessionFileError::Invalid(e.to_string()))
}
