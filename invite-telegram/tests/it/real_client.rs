//! A grammers client built from an imported session fails fast and classified when Telegram
//! cannot be reached, and never retries on its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use invite_core::SystemClock;
use invite_core::domain::{AccountId, GroupRef};
use invite_core::ports::{ErrorClass, InviteStrategy, PlatformError};
use invite_telegram::api::{ChannelRef, UserRef};
use invite_telegram::{
    ApiError, CallKind, ClientParams, GrammersApi, GrammersConnector, SessionString, TelegramApi,
    TelegramConfig, TelegramStrategy, classify,
};
use tokio::io::AsyncReadExt;
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
    // Every call of the seam goes the same way; writes say that nothing left.
    let user = UserRef {
        id: 1,
        access_hash: 2,
    };
    let channel = ChannelRef {
        id: 3,
        access_hash: 4,
    };
    let refused = ApiError::Io(std::io::ErrorKind::ConnectionRefused).not_sent();
    let err = api.invite_to_channel(channel, user).await.unwrap_err();
    assert_eq!(err, refused);
    let err = api.send_message(user, "hello", 99).await.unwrap_err();
    assert_eq!(err, refused);
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
    // The peer hung up while the connection was being made, before the message was handed
    // over: nothing left, so even the write is only transient.
    let ApiError::NotSent(inner) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(**inner, ApiError::Io(_) | ApiError::BadResponse),
        "{err:?}"
    );
    assert_eq!(
        classify(&err, CallKind::Write).class(),
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

/// A peer that accepts and reads everything but never answers, recording when each byte
/// arrived and when the client closed the connection.
struct Stalling {
    port: u16,
    accepted: Arc<AtomicUsize>,
    reads: Arc<Mutex<Vec<(Instant, usize)>>>,
    closed: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stalling {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let reads = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let (a, r, c) = (
            Arc::clone(&accepted),
            Arc::clone(&reads),
            Arc::clone(&closed),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (r, c) = (Arc::clone(&r), Arc::clone(&c));
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                c.lock().unwrap().push(Instant::now());
                                return;
                            }
                            Ok(n) => r.lock().unwrap().push((Instant::now(), n)),
                        }
                    }
                });
            }
        });
        Self {
            port,
            accepted,
            reads,
            closed,
            task,
        }
    }

    fn session(&self) -> SessionString {
        SessionString::parse(&telethon_session(Ipv4Addr::LOCALHOST, self.port)).unwrap()
    }

    fn bytes_after(&self, instant: Instant) -> usize {
        self.reads
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at > instant)
            .map(|(_, n)| n)
            .sum()
    }

    /// Waits (up to 3 s) until `n` connections were closed by the client.
    async fn closed(&self, n: usize) -> bool {
        for _ in 0..300 {
            if self.closed.lock().unwrap().len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

impl Drop for Stalling {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection that hangs while being made: the caller gives up, and the client must not
/// keep it open with requests queued behind it that would all leave once it completes.
#[tokio::test]
async fn a_call_given_up_on_closes_its_connection_and_nothing_leaves_later() {
    let peer = Stalling::start().await;
    let api = GrammersApi::start(&peer.session(), 2040, &ClientParams::default());
    let gave_up = tokio::time::timeout(Duration::from_millis(300), api.get_me()).await;
    assert!(gave_up.is_err(), "the peer never answers");
    let gave_up = Instant::now();
    // The client did reach the peer (its initConnection went out) before giving up.
    assert!(!peer.reads.lock().unwrap().is_empty());
    // Later calls on this client fail at once without sending: not charged.
    let user = UserRef {
        id: 1,
        access_hash: 2,
    };
    let err = tokio::time::timeout(Duration::from_secs(1), api.send_message(user, "hi", 7))
        .await
        .expect("no queueing behind the hung connection")
        .unwrap_err();
    assert_eq!(err, ApiError::Dropped.not_sent());
    assert_eq!(
        classify(&err, CallKind::Write),
        PlatformError::Transient {
            code: "REQUEST_DROPPED".into()
        }
    );
    // The hung connection is closed by the client; nothing was written after giving up.
    assert!(peer.closed(1).await, "the connection stays open");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.bytes_after(gave_up), 0);
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 1);
    api.disconnect().await;
}

/// A write whose connection cannot be made in time fails as not sent (transient), and the
/// write itself never reaches the socket later.
#[tokio::test]
async fn a_write_whose_connection_hangs_is_not_sent_and_never_leaves() {
    let peer = Stalling::start().await;
    let params = ClientParams {
        connect_timeout: Duration::from_millis(300),
        ..ClientParams::default()
    };
    let api = GrammersApi::start(&peer.session(), 2040, &params);
    let channel = ChannelRef {
        id: 3,
        access_hash: 4,
    };
    let user = UserRef {
        id: 1,
        access_hash: 2,
    };
    let err = tokio::time::timeout(Duration::from_secs(5), api.invite_to_channel(channel, user))
        .await
        .expect("bounded by connect_timeout")
        .unwrap_err();
    let gave_up = Instant::now();
    assert_eq!(
        err,
        ApiError::Timeout(Duration::from_millis(300)).not_sent()
    );
    assert_eq!(
        classify(&err, CallKind::Write).class(),
        ErrorClass::Transient
    );
    assert!(peer.closed(1).await, "the connection stays open");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.bytes_after(gave_up), 0);
    api.disconnect().await;
}

/// Through the strategy on real grammers: a timed-out call's client is dropped and the next
/// call builds a new one (a new connection), instead of reusing a spent runner.
#[tokio::test]
async fn the_strategy_replaces_a_client_whose_call_timed_out() {
    let peer = Stalling::start().await;
    let session = telethon_session(Ipv4Addr::LOCALHOST, peer.port);
    let strategy = TelegramStrategy::new(
        TelegramConfig {
            call_timeout: Duration::from_millis(300),
            ..TelegramConfig::default()
        },
        Arc::new(secrets(&session)),
        Arc::new(GrammersConnector::new(ClientParams::default())),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let account = AccountId::parse("acc-1").unwrap();
    for round in 1..=2 {
        let err = strategy.initialize(&account).await.unwrap_err();
        assert_eq!(
            err,
            PlatformError::Transient {
                code: "CALL_TIMEOUT".into()
            }
        );
        let gave_up = Instant::now();
        assert!(
            peer.closed(round).await,
            "round {round}: connection left open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(peer.bytes_after(gave_up), 0, "round {round}");
        assert_eq!(peer.accepted.load(Ordering::SeqCst), round);
    }
    strategy.disconnect(&account).await;
}
