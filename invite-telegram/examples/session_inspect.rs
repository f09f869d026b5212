//! Prints what a Telethon or Pyrogram session string holds, without its key:
//!
//! ```sh
//! cargo run -p invite-telegram --example session_inspect < session.txt
//! ```
//!
//! Output: the format, data centre, address, user id (Pyrogram) and api id (Pyrogram v2), and
//! the key's `auth_key_id` as a fingerprint. The string is read from standard input so it never
//! lands in the shell history.

use std::io::Read;

use anyhow::Context;
use invite_telegram::SessionString;

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the session string from standard input")?;
    let session = SessionString::parse(&input).context("decoding the session string")?;
    let address = match session.carried_address() {
        Some(addr) => addr.to_string(),
        None => format!(
            "{} (grammers' address of the data centre)",
            session.address()
        ),
    };
    println!("format:      {}", session.format());
    println!("dc:          {}", session.dc_id());
    println!("address:     {address}");
    println!(
        "user id:     {}",
        session
            .user_id()
            .map_or_else(|| "(not in this format)".to_owned(), |id| id.to_string())
    );
    if let Some(api_id) = session.api_id() {
        println!("api id:      {api_id}");
    }
    println!("key id:      {}", session.key_fingerprint());
    Ok(())
}
