//! A grammers client built from an imported session fails fast and classified when Telegram
//! cannot be reached, and never retries on its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use invite_core::SystemClock;
use invite_core::domain::{AccountId, GroupRef};
use invite_core::ports::{ErrorClass, InviteStrategy, PlatformError};
use invite_telegram::api::{ChannelRef, UserRef};
use invite_telegram::{
    ApiError, CallKind, ClientParams, GrammersApi, GrammersConnector, SessionString, TelegramApi,
    TelegramConfig, TelegramStrategy, classify,
};
use tokio::net::TcpListener;

use crate::helpers::{secrets, telethon_session};

/// A local port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test]
async fn a_closed_port_gives_a_transient_io_error() {
    let port = closed_port().await;
    let session = SessionString::parse(&telethon_session(Ipv4Addr::LOCALHOST, port)).unwrap();
    assert_eq!(
        session.address(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    );
    let api = GrammersApi::start(&session, 2040, &ClientParams::default());
    // That nothing is retried behind the engine's back is counted by the next test.
    let err = tokio::time::timeout(Duration::from_secs(10), api.get_me())
        .await
        .expect("no hang")
        .unwrap_err();
    assert_eq!(err, ApiError::Io(std::io::ErrorKind::ConnectionRefused));
    // Nothing left: a retry is safe, even for a write.
    for kind in [CallKind::Read, CallKind::Write] {
        assert_eq!(
            classify(&err, kind),
            PlatformError::Transient {
                code: "IO_CONNECTION_REFUSED".into()
            }
        );
    }
    // Every call of the seam goes the same way.
    let user = UserRef {
        id: 1,
        access_hash: 2,
    };
    let channel = ChannelRef {
        id: 3,
        access_hash: 4,
    };
    let err = api.invite_to_channel(channel, user).await.unwrap_err();
    assert_eq!(err, ApiError::Io(std::io::ErrorKind::ConnectionRefused));
    let err = api.send_message(user, "hello", 99).await.unwrap_err();
    assert_eq!(err, ApiError::Io(std::io::ErrorKind::ConnectionRefused));
    api.disconnect().await;
}

#[tokio::test]
async fn a_connection_dropped_by_the_peer_is_not_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            // Read what the client sends, then hang up without answering.
            let mut buf = [0u8; 512];
            let _ = socket.readable().await;
            let _ = socket.try_read(&mut buf);
            drop(socket);
        }
    });
    let session = SessionString::parse(&telethon_session(Ipv4Addr::LOCALHOST, port)).unwrap();
    let api = GrammersApi::start(&session, 2040, &ClientParams::default());
    let user = UserRef {
        id: 1,
        access_hash: 2,
    };
    let err = tokio::time::timeout(Duration::from_secs(10), api.send_message(user, "hi", 7))
        .await
        .expect("no hang")
        .unwrap_err();
    // The request may have been delivered: a write is ambiguous, a read would be retried.
    assert!(
        matches!(err, ApiError::Io(_) | ApiError::BadResponse),
        "{err:?}"
    );
    assert_eq!(
        classify(&err, CallKind::Write).class(),
        ErrorClass::Ambiguous
    );
    assert_eq!(
        classify(&err, CallKind::Read).class(),
        ErrorClass::Transient
    );
    // grammers' default policy would sleep 1 s and reconnect once after an I/O error: give
    // such a hidden retry time to show up. There must be none.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    api.disconnect().await;
    server.abort();
}

#[tokio::test]
async fn the_strategy_on_real_grammers_reports_an_unreachable_account_as_transient() {
    let port = closed_port().await;
    let strategy = TelegramStrategy::new(
        TelegramConfig {
            call_timeout: Duration::from_secs(5),
            ..TelegramConfig::default()
        },
        Arc::new(secrets(&telethon_session(Ipv4Addr::LOCALHOST, port))),
        Arc::new(GrammersConnector::new(ClientParams::default())),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let account = AccountId::parse("acc-1").unwrap();
    let err = strategy.initialize(&account).await.unwrap_err();
    assert_eq!(
        err,
        PlatformError::Transient {
            code: "IO_CONNECTION_REFUSED".into()
        }
    );
    let err = strategy
        .check_invite_rights(&account, &GroupRef::parse("@mygroup").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    strategy.disconnect(&account).await;
}
