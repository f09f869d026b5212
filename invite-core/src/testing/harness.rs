//! How a suite meets the thing under test: a factory opens a fresh [`Subject`] for every case
//! (an empty database, a new queue), the case runs, the factory's teardown follows even when
//! the case fails, and the failure names its case.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

/// Opens another handle on the data of a [`Subject`].
type Another<T> = Arc<dyn Fn() -> BoxFuture<'static, Arc<T>> + Send + Sync>;

/// One implementation of a port under test, and a way to open another handle on the same
/// data — with its own connections where the implementation has them, as a second process
/// would. The cases that race several processes use it.
///
/// It dereferences to the port: `subject.claim_target(…)`.
pub struct Subject<T: ?Sized> {
    port: Arc<T>,
    another: Another<T>,
}

impl<T: ?Sized> Clone for Subject<T> {
    fn clone(&self) -> Self {
        Self {
            port: self.port.clone(),
            another: self.another.clone(),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Subject<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject").finish_non_exhaustive()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Subject<T> {
    /// An implementation whose data lives in one process: another handle is the same one.
    pub fn shared(port: Arc<T>) -> Self {
        let same = port.clone();
        Self::new(port, move || {
            let same = same.clone();
            async move { same }.boxed()
        })
    }

    /// An implementation that can open another handle on the same data (a new pool on the
    /// same database, a new channel on the same broker).
    pub fn new<F>(port: Arc<T>, another: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Arc<T>> + Send + Sync + 'static,
    {
        Self {
            port,
            another: Arc::new(another),
        }
    }

    /// The port itself.
    pub fn port(&self) -> &Arc<T> {
        &self.port
    }

    /// Another handle on the same data.
    pub async fn another(&self) -> Subject<T> {
        Subject {
            port: (self.another)().await,
            another: self.another.clone(),
        }
    }
}

impl<T: ?Sized> Deref for Subject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.port
    }
}

/// What a factory returns for one case: the subject and what to do after the case (drop the
/// test database, delete the queue).
pub struct Opened<T: ?Sized> {
    /// The implementation under test.
    pub subject: Subject<T>,
    /// Run after the case, whether it passed or not.
    pub teardown: BoxFuture<'static, ()>,
}

impl<T: ?Sized> fmt::Debug for Opened<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened").finish_non_exhaustive()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Opened<T> {
    /// A subject with nothing to tear down.
    pub fn new(subject: Subject<T>) -> Self {
        Self {
            subject,
            teardown: async {}.boxed(),
        }
    }

    /// A subject of one process (see [`Subject::shared`]) with nothing to tear down.
    pub fn shared(port: Arc<T>) -> Self {
        Self::new(Subject::shared(port))
    }

    /// Runs `teardown` after the case.
    pub fn with_teardown(mut self, teardown: impl Future<Output = ()> + Send + 'static) -> Self {
        self.teardown = teardown.boxed();
        self
    }
}

/// One case of a suite.
pub(crate) type Case<T> = PlainCase<Subject<T>>;

/// One case of a suite whose subject is `S` itself.
pub(crate) type PlainCase<S> = (&'static str, fn(S) -> BoxFuture<'static, ()>);

/// `cases![module::name, …]`: the cases of a suite, each with its name.
macro_rules! cases {
    ($($group:ident :: $name:ident),* $(,)?) => {
        &[$((stringify!($name), |s| ::futures::FutureExt::boxed($group::$name(s)))),*]
    };
}
pub(crate) use cases;

/// Runs every case on a subject of its own from `open`. A factory answering `None` (a service
/// that is not there) skips the suite, saying so on stderr; a failing case panics with the
/// suite's and the case's name after its teardown ran.
pub(crate) async fn run_cases<T, F, Fut>(suite: &str, open: F, cases: &[Case<T>])
where
    T: ?Sized,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<T>>>,
{
    for (name, case) in cases {
        let Some(Opened { subject, teardown }) = open().await else {
            eprintln!("{suite}: the implementation is not available; skipped");
            return;
        };
        let outcome = AssertUnwindSafe(case(subject)).catch_unwind().await;
        teardown.await;
        if let Err(panic) = outcome {
            eprintln!("{suite}: case `{name}` failed");
            std::panic::resume_unwind(panic);
        }
    }
}

/// [`run_cases`] for subjects that need no teardown (or tear down on drop).
pub(crate) async fn run_plain<S, F, Fut>(suite: &str, open: F, cases: &[PlainCase<S>])
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
{
    for (name, case) in cases {
        let Some(subject) = open().await else {
            eprintln!("{suite}: the implementation is not available; skipped");
            return;
        };
        if let Err(panic) = AssertUnwindSafe(case(subject)).catch_unwind().await {
            eprintln!("{suite}: case `{name}` failed");
            std::panic::resume_unwind(panic);
        }
    }
}
