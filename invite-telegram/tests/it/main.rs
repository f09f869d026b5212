//! Integration tests: a real grammers client, built from a decoded session string, against
//! local sockets (Telegram itself is unreachable from the test machines).

mod helpers;
mod real_client;
