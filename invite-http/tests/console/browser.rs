//! Chromium through chromedriver: finding them, starting the driver on a free port, a headless
//! session, and small waiting helpers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a page may take to show what is awaited.
pub const WAIT: Duration = Duration::from_secs(30);

fn services_required() -> bool {
    std::env::var("INVITE_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The first of `names` found on `PATH` (or under `/usr/bin`).
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// A chromedriver process, stopped when dropped.
pub struct Driver {
    child: Child,
    port: u16,
    chromium: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver; `None` (after a skip line) when chromedriver or Chromium is not
    /// installed and `INVITE_REQUIRE_SERVICES` is not `1`.
    pub async fn start() -> Option<Driver> {
        let named = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_file())
        };
        let driver = named("CHROMEDRIVER").or_else(|| which(&["chromedriver"]));
        let chromium =
            named("CHROMIUM").or_else(|| which(&["chromium", "chromium-browser", "google-chrome"]));
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            assert!(
                !services_required(),
                "chromedriver and chromium are required (INVITE_REQUIRE_SERVICES=1): apt-get install chromium chromium-driver"
            );
            eprintln!(
                "skipped: chromedriver or chromium not found (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver.display()));
        let me = Driver {
            child,
            port,
            chromium,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(me)
    }

    /// A new headless browser whose downloads go to `downloads`.
    pub async fn session(&self, downloads: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,1000",
                    "--lang=en-US",
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session")
    }
}

/// The element `css` once it is on the page.
pub async fn wait_for(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

/// The element `css`, which must be on the page now.
pub async fn find(c: &Client, css: &str) -> Element {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} is not on the page: {e}"))
}

/// Clicks `css`, which must be on the page now.
pub async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.unwrap();
}

/// Types `keys` into `css` once it is on the page.
pub async fn type_into(c: &Client, css: &str, keys: &str) {
    wait_for(c, css).await.send_keys(keys).await.unwrap();
}

/// Picks the option of value `value` in the `<select>` `css` once it is on the page.
pub async fn choose(c: &Client, css: &str, value: &str) {
    wait_for(c, css).await.select_by_value(value).await.unwrap();
}

/// Every element `css` now.
pub async fn all(c: &Client, css: &str) -> Vec<Element> {
    c.find_all(Locator::Css(css)).await.unwrap()
}

/// The text of `css` (which must be on the page).
pub async fn text(c: &Client, css: &str) -> String {
    wait_for(c, css).await.text().await.unwrap()
}

/// Waits until `script` (a function body returning a boolean) is true.
pub async fn until(c: &Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if c.execute(script, vec![]).await.unwrap() == json!(true) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never true: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a PNG of the window as `dir/name.png`, scrolled so that `css` is at the top.
pub async fn screenshot(c: &Client, dir: &Path, name: &str, css: &str) -> PathBuf {
    c.execute(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'start'})",
        vec![json!(css)],
    )
    .await
    .unwrap();
    let png = c.screenshot().await.unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}
